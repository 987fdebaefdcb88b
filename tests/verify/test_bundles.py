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
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.support.fake_sigstore import FakeSigstore, Identity
from tests.support.trust_roots import KEY_PARTS, with_window_ended
from webhook.errors import VerificationFailed
from webhook.policy.material import TrustedRootMaterial
from webhook.policy.model import TrustRoot
from webhook.reasons import Reason
from webhook.verify import certificates
from webhook.verify.bundles import verify_keyless_bundle
from webhook.verify.trust import RootMaterial, _unique_issuers, issuer_key, load_root

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


class _ChainCount:
    """Counts the chains webhook.verify.certificates builds itself (sigstore's own are not counted)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = certificates._verify_chain

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(certificates, "_verify_chain", counted)


def test_a_bundle_the_verifier_chained_is_not_chained_again(
    tmp_path: Path, sigstore: tuple[FakeSigstore, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, _ = sigstore
    root = _root(tmp_path, instance.trusted_root(), "fresh")
    assert len(root.issuers) == len(root.authorities[0].certificates)  # each CA certificate is known
    chains = _ChainCount(monkeypatch)
    verify_keyless_bundle(_bundle(sigstore, "dsse"), root=root, now=datetime.now(UTC))
    assert chains.calls == 0  # the Verifier's chain ends at the one CA bearing the issuer's name


def test_a_retired_ca_is_still_refused_in_the_verifiers_words(
    tmp_path: Path, sigstore: tuple[FakeSigstore, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance, _ = sigstore
    root = _root(tmp_path, with_window_ended(instance.trusted_root(), "fulcio-ca"), "retired")
    chains = _ChainCount(monkeypatch)
    with pytest.raises(VerificationFailed, match="does not chain to trust root 'retired'"):
        verify_keyless_bundle(_bundle(sigstore, "dsse"), root=root, now=datetime.now(UTC))
    assert chains.calls == 1  # the known CA was not valid then: the chain is built to say why


def test_cas_sharing_a_name_are_never_told_apart_by_it(
    tmp_path: Path, sigstore: tuple[FakeSigstore, Identity], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same CA listed twice, once retired: which of the two the Verifier chained to is not known
    # from the name, so the chain is built again against the CAs valid then.
    instance, _ = sigstore
    document = instance.trusted_root()
    retired = with_window_ended(document, "fulcio-ca")["certificateAuthorities"][0]
    document = {**document, "certificateAuthorities": [retired, *document["certificateAuthorities"]]}
    root = _root(tmp_path, document, "twice")
    assert root.issuers == {}
    chains = _ChainCount(monkeypatch)
    verify_keyless_bundle(_bundle(sigstore, "dsse"), root=root, now=datetime.now(UTC))
    assert chains.calls == 1


def test_names_differing_only_in_case_or_spaces_share_a_key() -> None:
    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    assert issuer_key(name("Sigstore  Intermediate")) == issuer_key(name("sigstore intermediate"))
    assert issuer_key(name("sigstore-intermediate")) != issuer_key(name("sigstore intermediate"))


def test_no_issuer_is_known_unless_the_verifier_anchors_on_exactly_the_roots_cas(
    tmp_path: Path, sigstore: tuple[FakeSigstore, Identity]
) -> None:
    instance, _ = sigstore
    root = _root(tmp_path, instance.trusted_root(), "fresh")
    certs = list(root.authorities[0].certificates)

    class Anchors:
        def __init__(self, anchors: list[x509.Certificate]) -> None:
            self._fulcio_certificate_chain = anchors

    assert _unique_issuers(root.authorities, Anchors(certs)) == dict(root.issuers)  # type: ignore[arg-type]
    assert _unique_issuers(root.authorities, Anchors(certs[:1])) == {}  # type: ignore[arg-type]
    other = FakeSigstore.create(tmp_path / "other", name="other")
    extra = _root(tmp_path, other.trusted_root(), "other").authorities[0].certificates
    assert _unique_issuers(root.authorities, Anchors([*certs, *extra])) == {}  # type: ignore[arg-type]
