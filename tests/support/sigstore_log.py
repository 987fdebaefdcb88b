"""A Rekor-v1-style transparency log for tests: RFC 6962 Merkle tree, signed checkpoints and SETs.

Entries are appended in memory. Every `LogEntry` carries what a Rekor v1 response would: the canonicalized
body, integrated time, the Signed Entry Timestamp (SET), and an inclusion proof against the tree as it was
right after the append, with a signed checkpoint for that tree. It renders itself either as a Sigstore
bundle ``tlogEntries[]`` item or as cosign's legacy ``dev.sigstore.cosign/bundle`` annotation.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.sigstore_x509 import key_id

__all__ = ["LogEntry", "TransparencyLog", "dsse_body", "hashedrekord_body"]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    # Largest power of two strictly smaller than n (RFC 6962 §2.1).
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(_root(leaves[:k]), _root(leaves[k:]))


def _audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    # RFC 6962 §2.1.1 PATH(m, D[n]), ordered from the leaf upwards as Rekor and the verifier expect.
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_audit_path(index, leaves[:k]), _root(leaves[k:])]
    return [*_audit_path(index - k, leaves[k:]), _root(leaves[:k])]


def hashedrekord_body(*, digest_hex: str, algorithm: str, signature: bytes, verifier_pem: bytes) -> bytes:
    """Canonical ``hashedrekord/0.0.1`` body; `verifier_pem` is a PEM certificate or PEM public key."""
    return rfc8785.dumps(
        {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": algorithm, "value": digest_hex}},
                "signature": {"content": _b64(signature), "publicKey": {"content": _b64(verifier_pem)}},
            },
        }
    )


def dsse_body(*, envelope_json: bytes, payload: bytes, signature: bytes, verifier_pem: bytes) -> bytes:
    """Canonical ``dsse/0.0.1`` body: envelope and payload hashes plus the (signature, verifier) list."""
    return rfc8785.dumps(
        {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(envelope_json).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": _b64(signature), "verifier": _b64(verifier_pem)}],
            },
        }
    )


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One appended entry with its SET and its inclusion proof at append time."""

    log_index: int
    log_id: bytes
    kind: str
    version: str
    body: bytes
    integrated_time: int
    signed_entry_timestamp: bytes
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str

    def set_payload(self) -> bytes:
        """The RFC 8785 bytes the SET signs: ``{body, integratedTime, logID, logIndex}``."""
        return rfc8785.dumps(
            {
                "body": _b64(self.body),
                "integratedTime": self.integrated_time,
                "logID": self.log_id.hex(),
                "logIndex": self.log_index,
            }
        )

    def tlog_entry(self) -> dict[str, Any]:
        """The entry as a Sigstore bundle ``verificationMaterial.tlogEntries[]`` item (protobuf JSON)."""
        return {
            "logIndex": str(self.log_index),
            "logId": {"keyId": _b64(self.log_id)},
            "kindVersion": {"kind": self.kind, "version": self.version},
            "integratedTime": str(self.integrated_time),
            "inclusionPromise": {"signedEntryTimestamp": _b64(self.signed_entry_timestamp)},
            "inclusionProof": {
                "logIndex": str(self.log_index),
                "rootHash": _b64(self.root_hash),
                "treeSize": str(self.tree_size),
                "hashes": [_b64(h) for h in self.hashes],
                "checkpoint": {"envelope": self.checkpoint},
            },
            "canonicalizedBody": _b64(self.body),
        }

    def legacy_bundle(self) -> str:
        """cosign's ``dev.sigstore.cosign/bundle`` annotation: SET and payload only, no inclusion proof."""
        return json.dumps(
            {
                "SignedEntryTimestamp": _b64(self.signed_entry_timestamp),
                "Payload": {
                    "body": _b64(self.body),
                    "integratedTime": self.integrated_time,
                    "logIndex": self.log_index,
                    "logID": self.log_id.hex(),
                },
            },
            separators=(",", ":"),
        )


class TransparencyLog:
    """An append-only Merkle log signing checkpoints and SETs with one ECDSA P-256 key."""

    def __init__(self, *, key: ec.EllipticCurvePrivateKey, origin: str) -> None:
        """Create an empty log; `origin` is the checkpoint's first line and signer name."""
        self._key = key
        self._origin = origin
        self._leaves: list[bytes] = []
        self._entries: list[LogEntry] = []
        self.log_id = key_id(key.public_key())

    @property
    def entries(self) -> tuple[LogEntry, ...]:
        """All entries in append order."""
        return tuple(self._entries)

    def _sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def _checkpoint(self, *, size: int, root: bytes, timestamp: int) -> str:
        # Signed note (transparency-dev formats); sigstore-python matches the 4-byte hint to logID[:4].
        note = f"{self._origin}\n{size}\n{_b64(root)}\nTimestamp: {timestamp * 1_000_000_000}\n"
        signer = self._origin.split(" ", 1)[0]
        return f"{note}\n\u2014 {signer} {_b64(self.log_id[:4] + self._sign(note.encode()))}\n"

    def append(self, *, kind: str, body: bytes, integrated_time: int) -> LogEntry:
        """Append a canonicalized body of `kind` (``hashedrekord`` or ``dsse``) and return its entry."""
        index = len(self._leaves)
        self._leaves.append(_leaf_hash(body))
        root = _root(self._leaves)
        set_payload = rfc8785.dumps(
            {
                "body": _b64(body),
                "integratedTime": integrated_time,
                "logID": self.log_id.hex(),
                "logIndex": index,
            }
        )
        entry = LogEntry(
            log_index=index,
            log_id=self.log_id,
            kind=kind,
            version="0.0.1",
            body=body,
            integrated_time=integrated_time,
            signed_entry_timestamp=self._sign(set_payload),
            tree_size=len(self._leaves),
            root_hash=root,
            hashes=tuple(_audit_path(index, self._leaves)),
            checkpoint=self._checkpoint(size=len(self._leaves), root=root, timestamp=integrated_time),
        )
        self._entries.append(entry)
        return entry
