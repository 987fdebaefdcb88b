"""The files a policy names as webhook.policy.material reads them: trusted roots (keys, CAs and credentials
files are judged alike by lint and serve in test_lint_matches_serve)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from webhook.policy.material import MaterialError, TrustedRootMaterial

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = REPO / "tests" / "verify" / "data" / "trusted_root.production.json"


def _root(**change: Any) -> bytes:
    document = json.loads(PRODUCTION.read_text())
    for name, value in change.items():
        if value is None:
            document.pop(name)
        else:
            document[name] = value
    return json.dumps(document).encode()


def test_the_production_root_yields_its_cas_ct_logs_and_both_rekor_keys() -> None:
    root = TrustedRootMaterial.read(PRODUCTION)
    assert root.data == PRODUCTION.read_bytes()
    assert root.path == PRODUCTION
    assert (len(root.authorities), len(root.ct_keys)) == (2, 2)
    keys = {key.log_id: key for key in root.rekor_keys}
    rekor = keys["c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"]
    assert rekor.name == "tlog https://rekor.sigstore.dev"
    assert rekor.valid_from is not None
    assert rekor.valid_from.isoformat() == "2021-01-12T11:53:27+00:00"
    assert rekor.valid_until is None
    assert "cf1199155bddd051268d1f16ac5c0c75c009f6fb5a63f4177f8e18d7051e3fa0" in keys
    assert len(keys) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{", "is not JSON"),
        (b'{"mediaType": "application/json", "tlogs": []}', "mediaType"),
        (_root(certificateAuthorities=None), "has no Fulcio certificate authorities"),
        (_root(ctlogs=[]), "has no CT log keys"),
        (_root(tlogs=None), "has no tlogs list"),
        (_root(tlogs=[{"publicKey": {"rawBytes": "!!"}, "logId": {"keyId": "AA=="}}]), "not base64"),
        (_root(tlogs=[{"publicKey": {}, "logId": {"keyId": "AA=="}}]), "missing"),
        (
            _root(certificateAuthorities=[{"certChain": {"certificates": [{"rawBytes": "AAAA"}]}}]),
            "certificateAuthorities[0]",
        ),
        (_root(ctlogs=[{"publicKey": {"rawBytes": "AAAA"}}]), "ctlogs[0]: logId is missing"),
        (
            _root(tlogs=[{"publicKey": {"rawBytes": "AAAA", "validFor": {"start": "yesterday"}}}]),
            "tlogs[0]",
        ),
    ],
)
def test_broken_trusted_roots_are_refused_with_what_is_wrong(content: bytes, expected: str) -> None:
    with pytest.raises(MaterialError) as caught:
        TrustedRootMaterial.parse(content)
    assert expected in caught.value.message
    assert caught.value.hint


def test_rekor_keys_of_unaccepted_types_are_skipped() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 (must be skipped)
    der = weak.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tlogs = json.loads(PRODUCTION.read_text())["tlogs"]
    tlogs.append(
        {
            "baseUrl": "https://weak.example",
            "publicKey": {
                "rawBytes": base64.b64encode(der).decode(),
                "validFor": {"start": "2020-01-01T00:00:00Z"},
            },
            "logId": {"keyId": base64.b64encode(b"\x01" * 32).decode()},
        }
    )
    root = TrustedRootMaterial.parse(_root(tlogs=tlogs))
    assert len(root.rekor_keys) == 2
    assert "01" * 32 not in {key.log_id for key in root.rekor_keys}
