"""Keyless Sigstore bundles against their pinned trusted root's ``validFor`` windows (webhook.verify.bundles).

sigstore-python's ``Verifier`` uses every Rekor key, CA and CT key of the root, retired ones too; the
bundle path checks the windows afterwards, as the legacy path does. The end-to-end case is
tests/test_app_verify_expired_keys.py; these are the message-signature and DSSE bundles one by one, and
a log entry that names a log the root has no key for.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_sigstore import FakeSigstore, Identity
from tests.support.trust_roots import KEY_PARTS, with_window_ended
from webhook.errors import VerificationFailed
from webhook.policy.material import TrustedRootMaterial
from webhook.policy.model import TrustRoot
from webhook.reasons import Reason
from webhook.verify.bundles import verify_keyless_bundle
from webhook.verify.trust import RootMaterial, load_root

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]

DIGEST = "sha256:" + hashlib.sha256(b"an image manifest").hexdigest()
STATEMENT = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": [{"name": "app", "digest": {"sha256": DIGEST.removeprefix("sha256:")}}],
    "predicateType": "https://sigstore.dev/cosign/sign/v1",
    "predicate": {},
}


def _root(tmp_path: Path, document: dict[str, Any], name: str) -> RootMaterial:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(document))
    return load_root(TrustRoot(name, TrustedRootMaterial.read(path)))


def _changed(root: dict[str, Any], part: str) -> dict[str, Any]:
    if part in KEY_PARTS:
        return with_window_ended(root, part)
    changed = copy.deepcopy(root)  # the Rekor key listed under another log id
    changed["tlogs"][0]["logId"]["keyId"] = base64.b64encode(b"\x01" * 32).decode()
    return changed


@pytest.fixture(scope="module")
def sigstore(tmp_path_factory: pytest.TempPathFactory) -> tuple[FakeSigstore, Identity]:
    instance = FakeSigstore.create(tmp_path_factory.mktemp("bundles"), name="windows")
    return instance, instance.issue_cert(subject="dev@example.com", issuer="https://accounts.example.com")


def _bundle(sigstore: tuple[FakeSigstore, Identity], kind: str) -> bytes:
    instance, identity = sigstore
    if kind == "dsse":
        return instance.bundle_dsse(identity, STATEMENT)
    return instance.bundle_message(identity, b"an image manifest")


@pytest.mark.parametrize("kind", ["dsse", "message"])
@pytest.mark.parametrize("part", [*KEY_PARTS, "unknown-log-id"])
def test_a_bundle_the_root_vouches_for_only_with_a_retired_key_is_refused(
    tmp_path: Path, sigstore: tuple[FakeSigstore, Identity], kind: str, part: str
) -> None:
    instance, _ = sigstore
    content = _bundle(sigstore, kind)
    now = datetime.now(UTC)
    fresh = _root(tmp_path, instance.trusted_root(), "fresh")
    signed = verify_keyless_bundle(content, root=fresh, digest=DIGEST, now=now)
    assert signed.certificate is not None  # the bundle itself is sound

    changed = _root(tmp_path, _changed(instance.trusted_root(), part), part)
    with pytest.raises(VerificationFailed) as failed:
        verify_keyless_bundle(content, root=changed, digest=DIGEST, now=now, origin="the bundle")
    assert failed.value.code == Reason.SIGNATURE_INVALID
    assert failed.value.user_message.startswith("the bundle: ")
