"""`imagegate certs`: generates a CA and the webhook's serving certificate, with manifests to install them.

The output directory is a kustomize Component (``kustomization.yaml``) holding the TLS Secret and patches
that set ``caBundle`` on both webhook configurations; ``deploy/overlays/static-certs`` includes it from
``certs/``. The CA's private key is never written: nobody can mint further certificates the API server
would trust, and rotation issues a new CA (``--extra-ca`` keeps the old one trusted during the switch).
"""

from __future__ import annotations

__all__ = [
    "CA_BUNDLE_PATCH_FILES",
    "COMPONENT_FILE",
    "MUTATING_WEBHOOK_NAME",
    "TLS_MANIFEST_FILE",
    "VALIDATING_WEBHOOK_NAME",
    "IssuedCertificates",
    "ca_bundle",
    "dns_names",
    "issue",
    "register",
    "run",
    "secret_manifest",
    "webhook_patches",
    "write_output",
]

import argparse
import base64
import datetime
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.formats import DNS_LABEL, DNS_SUBDOMAIN
from webhook.times import CLOCK_SKEW

_logger = logging.getLogger(__name__)

# Names of the webhook entries in deploy/base; the caBundle patches merge on them (tests check they agree).
MUTATING_WEBHOOK_NAME = "mutate.imagegate.dev"
VALIDATING_WEBHOOK_NAME = "validate.imagegate.dev"

TLS_MANIFEST_FILE = "secret.yaml"
COMPONENT_FILE = "kustomization.yaml"
CA_BUNDLE_PATCH_FILES = ("mutating-webhook-cabundle.yaml", "validating-webhook-cabundle.yaml")

_MAX_DAYS = 3650


@dataclass(frozen=True, slots=True)
class IssuedCertificates:
    """PEM-encoded CA certificate, serving certificate and the serving certificate's private key."""

    ca_cert_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def dns_names(*, namespace: str, service: str) -> tuple[str, ...]:
    """Every name a client inside the cluster may use for the Service; the API server uses NAME.NS.svc."""
    return (
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    )


def issue(*, namespace: str, service: str, days: int, now: datetime.datetime) -> IssuedCertificates:
    """Creates a fresh ECDSA P-256 CA and a serverAuth certificate for the Service, both valid ``days``."""
    # Tolerate clocks (API server, nodes) a little behind the machine that issues the certificate.
    not_before = now - CLOCK_SKEW
    not_after = now + datetime.timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "imagegate"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"imagegate webhook CA ({service}.{namespace})"),
        ]
    )
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    names = dns_names(namespace=namespace, service=service)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[2])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return IssuedCertificates(
        ca_cert_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def ca_bundle(issued: IssuedCertificates, extra_ca_pems: Sequence[bytes] = ()) -> str:
    """The base64 ``caBundle`` value: the new CA first, then any CAs still to be trusted during rotation."""
    pem = issued.ca_cert_pem + b"".join(p if p.endswith(b"\n") else p + b"\n" for p in extra_ca_pems)
    return base64.b64encode(pem).decode("ascii")


def secret_manifest(*, name: str, namespace: str, issued: IssuedCertificates) -> dict[str, Any]:
    """The ``kubernetes.io/tls`` Secret the Deployment mounts at /etc/imagegate/tls."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "imagegate", "app.kubernetes.io/part-of": "imagegate"},
        },
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": b64(issued.cert_pem),
            "tls.key": b64(issued.key_pem),
            "ca.crt": b64(issued.ca_cert_pem),
        },
    }


def webhook_patches(*, configuration: str, ca_bundle_b64: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Strategic-merge patches setting ``caBundle`` on the mutating and the validating configuration."""
    return (
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": configuration},
            "webhooks": [{"name": MUTATING_WEBHOOK_NAME, "clientConfig": {"caBundle": ca_bundle_b64}}],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": configuration},
            "webhooks": [{"name": VALIDATING_WEBHOOK_NAME, "clientConfig": {"caBundle": ca_bundle_b64}}],
        },
    )


def _component() -> dict[str, Any]:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": [TLS_MANIFEST_FILE],
        "patches": [{"path": p} for p in CA_BUNDLE_PATCH_FILES],
    }


def _write(path: Path, data: bytes, *, mode: int) -> None:
    # Create with the final mode so a private key is never readable by others, not even briefly; chmod
    # again because an existing file keeps its old mode through O_CREAT.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.fchmod(fd, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _yaml(doc: dict[str, Any]) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False).encode("utf-8")


def write_output(
    out: Path,
    *,
    issued: IssuedCertificates,
    namespace: str,
    secret_name: str,
    configuration: str,
    ca_bundle_b64: str,
) -> list[Path]:
    """Writes certificates, key (0600), Secret (0600, it holds the key), patches and the Component."""
    out.mkdir(parents=True, exist_ok=True)
    mutating, validating = webhook_patches(configuration=configuration, ca_bundle_b64=ca_bundle_b64)
    files: list[tuple[str, bytes, int]] = [
        ("ca.crt", issued.ca_cert_pem, 0o644),
        ("tls.crt", issued.cert_pem, 0o644),
        ("tls.key", issued.key_pem, 0o600),
        (
            TLS_MANIFEST_FILE,
            _yaml(secret_manifest(name=secret_name, namespace=namespace, issued=issued)),
            0o600,
        ),
        (CA_BUNDLE_PATCH_FILES[0], _yaml(mutating), 0o644),
        (CA_BUNDLE_PATCH_FILES[1], _yaml(validating), 0o644),
        (COMPONENT_FILE, _yaml(_component()), 0o644),
    ]
    written = []
    for name, data, mode in files:
        path = out / name
        _write(path, data, mode=mode)
        written.append(path)
    return written


def _read_extra_cas(paths: Sequence[str]) -> list[bytes]:
    pems = []
    for name in paths:
        data = Path(name).read_bytes()
        # Refuse anything but CA certificates: the bundle goes straight into the API server's trust.
        certs = x509.load_pem_x509_certificates(data)
        for cert in certs:
            try:
                is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
            except x509.ExtensionNotFound:
                is_ca = False
            if not is_ca:
                raise ValueError(f"{name}: {cert.subject.rfc4514_string()} is not a CA certificate")
        pems.append(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return pems


_EXAMPLES = """\
examples:
  # for the kustomize overlay deploy/overlays/static-certs
  imagegate certs --namespace imagegate --service imagegate --out deploy/overlays/static-certs/certs

  # rotation: a new CA and certificate, the caBundle trusting the old CA too until pods have the new one
  imagegate certs --namespace imagegate --service imagegate --out certs --force --extra-ca certs/ca.crt
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "certs",
        help="generate a CA and the webhook's serving certificate, with a Secret and caBundle patches",
        description=(
            "Generates a CA and a serving certificate (ECDSA P-256, serverAuth) for the Service NAME in "
            "namespace NS, valid for NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.cluster.local. Writes "
            "ca.crt, tls.crt, tls.key (0600), secret.yaml (a kubernetes.io/tls Secret), caBundle patches for "
            "both webhook configurations and a kustomize Component (kustomization.yaml) into DIR, and "
            "prints the base64 caBundle on stdout. The CA key is not kept: rotation issues a new CA."
        ),
        epilog=_EXAMPLES,
    )
    p.add_argument("--namespace", required=True, metavar="NS", help="namespace of the webhook Service")
    p.add_argument("--service", required=True, metavar="NAME", help="name of the webhook Service")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--days", type=int, default=365, metavar="N", help="validity in days (default 365)")
    p.add_argument(
        "--secret-name",
        default="imagegate-tls",
        metavar="NAME",
        help="TLS Secret name (default imagegate-tls)",
    )
    p.add_argument(
        "--webhook-configuration",
        default="imagegate",
        metavar="NAME",
        help="name of the Mutating- and ValidatingWebhookConfiguration (default imagegate)",
    )
    p.add_argument(
        "--extra-ca",
        action="append",
        default=[],
        metavar="PEM",
        help="also trust this CA in the caBundle (repeatable): the previous ca.crt while rotating",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing tls.key in DIR")
    p.set_defaults(func=run)


def _usage_error(message: str) -> int:
    print(f"imagegate certs: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    namespace: str = args.namespace
    service: str = args.service
    days: int = args.days
    if not DNS_LABEL.fullmatch(namespace):
        return _usage_error(f"--namespace {namespace!r} is not a DNS-1123 label (lower-case a-z, 0-9, '-')")
    if not DNS_LABEL.fullmatch(service):
        return _usage_error(f"--service {service!r} is not a DNS-1123 label (lower-case a-z, 0-9, '-')")
    for option, value in (
        ("--secret-name", args.secret_name),
        ("--webhook-configuration", args.webhook_configuration),
    ):
        if not DNS_SUBDOMAIN.fullmatch(value):
            return _usage_error(f"{option} {value!r} is not a valid Kubernetes object name")
    if not 1 <= days <= _MAX_DAYS:
        return _usage_error(f"--days must be between 1 and {_MAX_DAYS}, not {days}")
    out = Path(args.out)
    if (out / "tls.key").exists() and not args.force:
        return _usage_error(
            f"{out / 'tls.key'} exists; pass --force to replace it (see deploy/README.md, rotation)"
        )
    try:
        extra = _read_extra_cas(args.extra_ca)
    except (OSError, ValueError) as error:
        return _usage_error(f"--extra-ca: {error}")

    issued = issue(namespace=namespace, service=service, days=days, now=datetime.datetime.now(datetime.UTC))
    bundle = ca_bundle(issued, extra)
    try:
        written = write_output(
            out,
            issued=issued,
            namespace=namespace,
            secret_name=args.secret_name,
            configuration=args.webhook_configuration,
            ca_bundle_b64=bundle,
        )
    except OSError as error:
        return _usage_error(f"cannot write to {out}: {error}")
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    _logger.debug(
        "issued serving certificate for %s valid %d days",
        ", ".join(dns_names(namespace=namespace, service=service)),
        days,
    )
    print(bundle)
    return 0
