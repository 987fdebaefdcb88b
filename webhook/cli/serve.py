"""``imagegate serve``: validate the policy, then run the webhook under gunicorn over HTTPS."""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import ipaddress
import os
import shutil
import signal
import socket
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from webhook.errors import ConfigError
from webhook.policy.loader import load_policy
from webhook.settings import Settings, check_server_env
from webhook.times import CLOCK_SKEW

_EXAMPLES = """\
examples:
  # on your machine, with a throw-away certificate (removed when serve exits)
  imagegate serve --policy policies/default.yaml --dev-cert

  # as the Deployment runs it (deploy/base/deployment.yaml)
  imagegate serve --policy /etc/imagegate/policy/policy.yaml --cert /etc/imagegate/tls/tls.crt \\
    --key /etc/imagegate/tls/tls.key --host 0.0.0.0 --port 8443
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the webhook over HTTPS",
        description="Run the admission webhook (/mutate, /validate, /healthz, /readyz, /metrics) "
        "under gunicorn over HTTPS.",
        epilog=_EXAMPLES,
    )
    p.add_argument("--policy", required=True, type=Path, help="ImagePolicy file")
    p.add_argument("--cert", type=Path, help="PEM certificate (chain) to serve")
    p.add_argument("--key", type=Path, help="PEM private key of --cert")
    p.add_argument(
        "--dev-cert",
        action="store_true",
        help="generate a throw-away self-signed pair, removed when serve exits (local use only)",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8443, help="port to listen on (default 8443)")
    p.add_argument("--workers", type=int, default=None, help="gunicorn worker processes (default 2)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until gunicorn stops; the directories made for this run are removed however it ends.

    That is the ``--dev-cert`` key pair, and the multiprocess metrics and seen-marker directories when
    the environment names none: on SIGTERM, SIGINT and SIGQUIT (gunicorn exits through ``sys.exit``),
    on a start that fails, and on a TERM that comes before gunicorn has installed its handlers. Only
    the process that made them removes them: gunicorn's workers are forks that unwind through here.
    """
    made: list[Path] = []
    owner = os.getpid()
    # gunicorn's arbiter installs its own handler later; the caller's comes back when serve returns.
    previous = signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        return _serve(args, made)
    finally:
        if os.getpid() == owner:
            for directory in made:
                shutil.rmtree(directory, ignore_errors=True)
            signal.signal(signal.SIGTERM, previous)


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _serve(args: argparse.Namespace, made: list[Path]) -> int:
    if args.dev_cert == bool(args.cert or args.key) or bool(args.cert) != bool(args.key):
        print("error: give --cert and --key, or --dev-cert", file=sys.stderr)
        return 2
    # Absolute, but symlinks kept: ConfigMap and Secret volumes reach their files through a ``..data``
    # symlink that kubelet swaps (deleting the old target directory), so a resolved path would keep
    # watching and serving a directory that no longer exists after the first update.
    policy_path = Path(os.path.abspath(args.policy))
    settings = Settings.from_env(policy_path=policy_path)
    check_server_env()
    if args.workers is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    # Refuse to start on a policy (or trust material) that does not load.
    loaded = load_policy(policy_path, now=datetime.now(UTC))
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    from webhook.wiring import check_services

    check_services(loaded.policy, settings=settings)
    # Quarantine markers one worker has seen refuse their digest in every repository, for all workers.
    if settings.seen_markers_dir is not None:
        _check_writable(settings.seen_markers_dir, "IMAGEGATE_SEEN_MARKERS_DIR")
    else:
        os.environ["IMAGEGATE_SEEN_MARKERS_DIR"] = str(_temp_dir(made, prefix="imagegate-seen-markers-"))

    if args.dev_cert:
        cert, key = _dev_certificate(args.host, directory=_temp_dir(made, prefix="imagegate-dev-cert-"))
        print(f"dev certificate: {cert} (trust it with: curl --cacert {cert})", file=sys.stderr)
    else:
        cert, key = Path(os.path.abspath(args.cert)), Path(os.path.abspath(args.key))
        for path in (cert, key):
            if not path.is_file():
                raise ConfigError(f"TLS file {path} does not exist")
    _check_port_free(args.host, args.port)
    os.environ["IMAGEGATE_POLICY_PATH"] = str(policy_path)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_temp_dir(made, prefix="imagegate-metrics-"))
    host = f"[{args.host}]" if ":" in args.host else args.host
    options: dict[str, Any] = {"bind": f"{host}:{args.port}", "certfile": str(cert), "keyfile": str(key)}
    if args.workers is not None:
        options["workers"] = args.workers
    # The master keeps its own copy of the last good policy, watched like the workers' copies: a worker
    # (re)started while the files are invalid inherits it through fork instead of serving nothing.
    from webhook.reload import PolicyStore

    # It checks every version with the workers' own adapter checks: a version only workers reject (a
    # trusted root that loads as JSON but not as trust material) must not become the master's last good.
    master: PolicyStore[None] = PolicyStore(
        policy_path,
        build=lambda policy: check_services(policy, settings=settings),
        interval=settings.reload_interval,
    )
    master.load()
    master.guard_forks()
    master.start()
    _Gunicorn(options, master).run()
    return 0


def _temp_dir(made: list[Path], *, prefix: str) -> Path:
    """A new temporary directory, added to ``made``: :func:`run` removes it when serve ends."""
    made.append(Path(tempfile.mkdtemp(prefix=prefix)))
    return made[-1]


def _check_writable(directory: Path, name: str) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{name}={directory}: cannot create the directory: {error.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}={directory}: the directory is not writable")


def _check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on.

    Each worker binds its own ``SO_REUSEPORT`` listener (``reuse_port``), so the master never binds:
    without this check a busy port would make every worker fail to boot and gunicorn restart them
    forever. ``SO_REUSEADDR`` lets connections of an earlier run in TIME_WAIT pass.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from error
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from error


def _dev_certificate(host: str, *, directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` and localhost, and its key, written into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    for address in {"127.0.0.1", "::1", host}:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "imagegate dev")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _gunicorn_base() -> type:
    from gunicorn.app.base import BaseApplication

    return BaseApplication  # type: ignore[no-any-return]


class _Gunicorn(_gunicorn_base()):  # type: ignore[misc]
    """gunicorn with the checked-in config module plus the command line's bind/TLS/worker options."""

    def __init__(self, options: dict[str, Any], master: Any) -> None:
        self._options = options
        self._master = master
        super().__init__()

    def load_config(self) -> None:
        from webhook import gunicorn_conf

        for name in dir(gunicorn_conf):
            if name in self.cfg.settings and not name.startswith("_"):
                self.cfg.set(name, getattr(gunicorn_conf, name))
        for name, value in self._options.items():
            self.cfg.set(name, value)

    def load(self) -> Any:
        from webhook.wsgi import create_from_env

        runtime = self._master.current()
        return create_from_env(last_good=runtime.policy if runtime is not None else None)
