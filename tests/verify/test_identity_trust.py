"""Identity policies (exact, anchored regexp, issuer, extensions) and trust material loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.fake_sigstore import FakeSigstore, github_actions_extensions
from tests.support.verify_world import GITHUB_ISSUER, WORKFLOW, keyless
from webhook.errors import ConfigError
from webhook.policy.material import KeyMaterial, TrustedRootMaterial
from webhook.policy.model import Policy, Trust, TrustKey, TrustRoot
from webhook.verify.identity import EXTENSIONS, CertIdentity, SignerPolicy
from webhook.verify.trust import TrustMaterial

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.sigstore]


@pytest.fixture
def github_cert(sigstore_instance: FakeSigstore):  # type: ignore[no-untyped-def]
    return sigstore_instance.issue_cert(
        subject=WORKFLOW, issuer=GITHUB_ISSUER, extensions=github_actions_extensions()
    ).certificate


@pytest.mark.parametrize(
    ("signer", "matches"),
    [
        (keyless(), True),
        (keyless(subject=WORKFLOW + "x"), False),
        (keyless(subject=WORKFLOW[:-1]), False),
        (keyless(regexp=r"^https://github\.com/acme/.+$"), True),
        (keyless(regexp=r"https://github\.com/acme/.+"), True),
        # Unanchored and shorter than the identity: re.search would accept it, re.fullmatch does not.
        (keyless(regexp=r"https://github\.com/acme/app"), False),
        (keyless(regexp=r"acme"), False),
        (keyless(regexp=r"^https://github\.com/evil/.+$"), False),
        (keyless(issuer="https://accounts.google.com"), False),
        (keyless(issuer=GITHUB_ISSUER + "/"), False),
        (keyless(extensions={"sourceRepositoryURI": "https://github.com/acme/app"}), True),
        (keyless(extensions={"sourceRepositoryURI": "https://github.com/acme/app-evil"}), False),
        (keyless(extensions={"githubWorkflowRepository": "acme/app", "buildTrigger": "push"}), True),
        (
            keyless(extensions={"sourceRepositoryRef": "refs/heads/main", "buildTrigger": "pull_request"}),
            False,
        ),
    ],
)
def test_signer_policy(github_cert, signer, matches: bool) -> None:  # type: ignore[no-untyped-def]
    policy = SignerPolicy(signer)
    assert policy.matches(github_cert) is matches
    assert (policy.failure(github_cert) is None) is matches


def test_email_identity(sigstore_instance: FakeSigstore) -> None:
    cert = sigstore_instance.issue_cert(
        subject="dev@acme.example", issuer="https://github.com/login/oauth"
    ).certificate
    assert SignerPolicy(keyless(subject="dev@acme.example", issuer="https://github.com/login/oauth")).matches(
        cert
    )
    assert not SignerPolicy(
        keyless(regexp=r".*@acme\.example\.evil", issuer="https://github.com/login/oauth")
    ).matches(cert)
    assert SignerPolicy(
        keyless(regexp=r"[a-z]+@acme\.example", issuer="https://github.com/login/oauth")
    ).matches(cert)


def test_failure_messages_say_expected_and_found(github_cert) -> None:  # type: ignore[no-untyped-def]
    wrong_issuer = SignerPolicy(keyless(issuer="https://accounts.google.com")).failure(github_cert)
    assert wrong_issuer == f"issuer {GITHUB_ISSUER} is not https://accounts.google.com"
    wrong_subject = SignerPolicy(keyless(regexp=r"^https://github\.com/evil/.+$")).failure(github_cert)
    assert wrong_subject is not None
    assert WORKFLOW in wrong_subject
    assert "evil" in wrong_subject
    wrong_ref = SignerPolicy(keyless(extensions={"sourceRepositoryRef": "refs/tags/v1"})).failure(github_cert)
    assert wrong_ref is not None
    assert "refs/heads/main" in wrong_ref
    assert "refs/tags/v1" in wrong_ref


def test_cert_identity_reads_what_the_certificate_says(github_cert) -> None:  # type: ignore[no-untyped-def]
    found = CertIdentity.from_certificate(github_cert)
    assert found.sans == (WORKFLOW,)
    assert found.issuer == GITHUB_ISSUER
    assert found.extension("sourceRepositoryURI") == "https://github.com/acme/app"
    assert found.extension("githubWorkflowTrigger") == "push"
    assert "sourceRepositoryRef=refs/heads/main" in found.describe()


def test_invalid_signers_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown certificate extension"):
        SignerPolicy(keyless(extensions={"sourceRepository": "x"}))
    with pytest.raises(ValueError, match="invalid subjectRegExp"):
        SignerPolicy(keyless(regexp="(unclosed"))
    assert "sourceRepositoryURI" in EXTENSIONS


# --- trust material -----------------------------------------------------------------------------


def _policy(roots: dict[str, Path], keys: tuple[TrustKey, ...] = ()) -> Policy:
    return Policy(
        name="t",
        source="t.yaml",
        trust=Trust(
            roots=tuple(TrustRoot(n, TrustedRootMaterial.read(p)) for n, p in roots.items()), keys=keys
        ),
        fingerprint="fp",
    )


def test_trust_material_is_built_from_what_the_policy_carries(
    sigstore_instance: FakeSigstore, tmp_path: Path
) -> None:
    key = sigstore_instance.generate_key("ecdsa-p256")
    (tmp_path / "k.pub").write_bytes(key.public_pem)
    root_copy = tmp_path / "trusted_root.json"
    root_copy.write_bytes(sigstore_instance.trusted_root_path.read_bytes())
    policy = _policy(
        {"test": root_copy},
        (
            TrustKey("file", KeyMaterial.read(tmp_path / "k.pub")),
            TrustKey("inline", KeyMaterial.parse(key.public_pem)),
        ),
    )
    # Nothing is read again: the files may be gone once the policy is loaded.
    (tmp_path / "k.pub").unlink()
    root_copy.unlink()
    trust = TrustMaterial.from_policy(policy)
    root = trust.root("test")
    assert root is not None
    assert root.ct_keys
    assert root.authorities
    assert root.tlog_keys
    assert trust.key("file") is not None
    assert trust.key("inline") is not None
    assert trust.key("missing") is None
    assert trust.fingerprint == "fp"
    assert set(trust.all_tlog_keys()) == set(root.tlog_keys)


def test_a_root_sigstore_refuses_is_a_config_error() -> None:
    # imagegate's own reading accepts it (a Rekor key without a validity start); sigstore's does not.
    case = "trust-root-tlog-missing-validity-start_fail"
    path = (
        Path(__file__).parent
        / "data/conformance/sigstore-conformance/bundle-verify"
        / case
        / "trusted_root.json"
    )
    with pytest.raises(ConfigError, match=r"trusted_root\.json") as error:
        TrustMaterial.from_policy(_policy({"r": path}))
    assert "'r'" in error.value.user_message


def test_extension_names_are_the_policy_schemas() -> None:
    schema = json.loads((Path(__file__).parents[2] / "policies" / "imagepolicy.schema.json").read_text())
    names = schema["$defs"]["keylessSigner"]["properties"]["extensions"]["properties"]
    assert set(names) == set(EXTENSIONS)
