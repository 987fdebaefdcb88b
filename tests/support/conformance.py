"""The third-party Sigstore conformance cases (tests/verify/data/conformance), admitted as a cluster would.

Each case of ``cases.json`` becomes what a cluster holds: the case's bundle stored as cosign v3 stores a
signature or attestation (an OCI 1.1 referrer of the digest it is about, listed in the ``sha256-<hex>``
fallback index, in a real registry; :meth:`SigningWorld.push_bundle`); a policy that trusts the case's
trusted root (and key) with one rule requiring the case's signer; and a Pod pinned to that digest. It is
admitted by :class:`webhook.dryrun.DryRun`, the server's own path minus HTTP: the policy loaded and its
adapters built as ``serve`` builds them, /mutate then /validate, discovery through ``RegistryClient`` and
``ImageVerifier``.

The rule asks for what the bundle is: an image signature (a message signature, or cosign's
``https://sigstore.dev/cosign/sign/v1`` statement) or an attestation of the predicate type the bundle's
DSSE statement claims. The image digest is the sha256 of the case's artifact, or the case's digest, or
else the digest the bundle names (what a message signature signs, the statement's subject); a case about
a digest of another algorithm cannot name an image (imagegate admits sha256 digests only), so its Pod
is admitted without anything pushed. Key signers keep the policy default ``requireTlog: true``.

    case = cases()[0]
    admission = admit(case, registry=plain_registry, directory=tmp_path)
    admission.allowed, admission.codes, admission.patch
"""

from __future__ import annotations

__all__ = ["DATA", "POLICY_REFUSED", "Admission", "admit", "cases"]

import base64
import binascii
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.markers import require
from tests.support.oci import Pushed
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.signing_world import SigningWorld
from webhook.dryrun import DryRun
from webhook.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "verify" / "data" / "conformance"
# Not a reason code: serve refuses the policy (its trust material), so nothing would be admitted.
POLICY_REFUSED = "policy-refused"
_COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
# A denial line: `container "app" image "...": [code] message; [code] message`.
_CODE = re.compile(r"(?:: |; )\[([a-z][a-z0-9-]*)\] ")


@dataclass(frozen=True)
class Admission:
    """How admission ended: allowed, or refused with these reason codes (``message`` says why); ``patch``:
    the JSONPatch operations /mutate answered with."""

    allowed: bool
    codes: tuple[str, ...]
    message: str
    patch: tuple[dict[str, Any], ...] = ()

    @property
    def outcome(self) -> str:
        """``allowed``, or the reason code (``+``-joined when several requirements failed)."""
        return "allowed" if self.allowed else "+".join(self.codes)


def cases() -> list[dict[str, Any]]:
    """Every case of ``cases.json``, as copied from upstream (see the data folder's README)."""
    document: dict[str, Any] = json.loads((DATA / "cases.json").read_text())
    found: list[dict[str, Any]] = document["cases"]
    return found


def admit(case: dict[str, Any], *, registry: RegistryServer, directory: Path) -> Admission:
    """Admit ``case`` (see the module docstring). A case may carry ``extensions`` for its signer."""
    require("sigstore", "runs the third-party Sigstore conformance cases")
    content = (DATA / case["bundle"]).read_bytes()
    artifact = (DATA / case["artifact"]).read_bytes() if case["artifact"] else None
    if artifact is not None:
        digest = "sha256:" + hashlib.sha256(artifact).hexdigest()
    else:
        digest = case["digest"] or _named_digest(content)
    repo = f"conformance/{re.sub(r'[^a-z0-9]+', '-', case['id'].lower()).strip('-')}-{uuid.uuid4().hex[:8]}"
    if _SHA256.fullmatch(digest):
        world = SigningWorld(pusher=registry.pusher(), host=registry.host)
        try:
            world.push_bundle(
                repo, Pushed(digest=digest, media_type=_OCI_MANIFEST, body=artifact or b"{}"), content
            )
        finally:
            world.pusher.close()
    directory.mkdir(parents=True, exist_ok=True)
    policy = directory / "policy.yaml"
    policy.write_text(yaml.safe_dump(_policy(case, content, host=registry.host), sort_keys=False))
    try:
        dry_run = DryRun(policy)
    except ConfigError as error:
        problems = "; ".join(f"{problem.pointer}: {problem.message}" for problem in error.problems)
        return Admission(allowed=False, codes=(POLICY_REFUSED,), message=f"{error.user_message} {problems}")
    try:
        result = dry_run.admit(review("Pod", [registry.ref(repo, digest=digest)], namespace="prod"))
    finally:
        dry_run.close()
    response = result.final.review["response"]
    message = str(response.get("status", {}).get("message", ""))
    patch = result.mutated.review["response"].get("patch")
    return Admission(
        allowed=bool(response["allowed"]),
        codes=tuple(_CODE.findall(message)),
        message=message,
        patch=tuple(json.loads(base64.b64decode(patch))) if patch else (),
    )


def _policy(case: dict[str, Any], content: bytes, *, host: str) -> dict[str, Any]:
    signer: dict[str, Any]
    if case["key"]:
        signer = {"key": {"name": "case"}}
    else:
        keyless: dict[str, Any] = {"root": "case", "issuer": case["issuer"], "subject": case["identity"]}
        if case.get("extensions"):
            keyless["extensions"] = dict(case["extensions"])
        signer = {"keyless": keyless}
    predicate_type = _claimed_predicate_type(content)
    rule: dict[str, Any] = {"name": "case", "images": [f"{host}/**"]}
    if predicate_type is None or predicate_type == _COSIGN_SIGN:
        rule["signatures"] = {"signers": [signer]}
    else:
        rule["attestations"] = [{"predicateType": predicate_type, "signers": [signer]}]
    root = DATA / case["trusted_root"]
    trust: dict[str, Any] = {}
    # A key signer takes only the transparency-log keys from a trusted root: one without logs (a
    # timestamp authority alone) is left out, as an operator would, and the policy trusts the key only.
    if not case["key"] or json.loads(root.read_text()).get("tlogs"):
        trust["roots"] = [{"name": "case", "file": str(root)}]
    if case["key"]:
        trust["keys"] = [{"name": "case", "file": str(DATA / case["key"])}]
    return {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "conformance"},
        "spec": {"registries": {"allow": [host], "insecure": [host]}, "trust": trust, "rules": [rule]},
    }


def _claimed_predicate_type(content: bytes) -> str | None:
    """The predicate type a DSSE bundle's statement claims (unverified: what the policy asks for), or
    None for a message signature or anything unreadable (a signature is asked for)."""
    try:
        envelope = json.loads(content).get("dsseEnvelope") or {}
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
    except (ValueError, AttributeError, binascii.Error):
        return None
    claimed = statement.get("predicateType") if isinstance(statement, dict) else None
    return claimed if isinstance(claimed, str) and claimed else None


def _named_digest(content: bytes) -> str:
    """The digest the bundle says it is about (unverified; sha256 first), or the empty content's digest."""
    try:
        document = json.loads(content)
        signed = document.get("messageSignature", {}).get("messageDigest", {})
        if signed.get("algorithm") == "SHA2_256":
            return "sha256:" + base64.b64decode(signed["digest"]).hex()
        envelope = document.get("dsseEnvelope") or {}
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
        digests = [subject.get("digest", {}) for subject in statement.get("subject", [])]
        for algorithm in ("sha256", *sorted({name for found in digests for name in found})):
            for found in digests:
                if isinstance(found.get(algorithm), str):
                    return f"{algorithm}:{found[algorithm]}"
    except (ValueError, AttributeError, KeyError, TypeError, binascii.Error):
        pass
    return "sha256:" + hashlib.sha256(b"").hexdigest()
