"""``imagegate trust refresh``: fetch the current Sigstore trusted root over TUF and install it atomically.

The server pins ``trusted_root.json`` and never fetches it, so a Sigstore key rotation reaches it only
through this command (run by a person, a CI job or the CronJob in ``deploy/trust-refresh/``):

1. read what is installed now (``--out FILE``, or ``--configmap NAMESPACE/NAME`` key ``--key`` from
   inside a cluster), so a missing permission fails before any download;
2. update the TUF metadata from the repository (Sigstore public-good by default, ``--staging``, or a
   mirror or private instance with ``--url``) starting from the embedded initial root or ``--root``,
   and download the ``trusted_root.json`` target it vouches for;
3. if it differs from what is installed, load it exactly as ``serve`` loads a trust root, then replace
   the file atomically (same directory, fsync, rename; permission bits kept) or patch the ConfigMap key
   (conditional on the resourceVersion read in step 1);
4. print what changed: CAs, TSAs, transparency and CT logs added, removed, changed or expired.

Exit status: 0 installed or already current; 1 the refresh failed (repository unreachable, TUF
verification failed, the served root would not load, the ConfigMap changed meanwhile) and nothing was
replaced; 2 usage or configuration error (bad option, unreadable ``--root``, unwritable destination,
missing permission).
"""

from __future__ import annotations

__all__ = ["register", "run_refresh"]

import argparse
import hashlib
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from webhook.cli._options import seconds
from webhook.deadline import Deadline
from webhook.errors import ConfigError, TrustRefreshFailed
from webhook.trust_refresh.changes import compare, describe
from webhook.trust_refresh.configmap import ConfigMapKey, KubernetesApi
from webhook.trust_refresh.files import replace_file
from webhook.trust_refresh.http_reads import describe as describe_error
from webhook.trust_refresh.repository import (
    INSTANCES,
    TRUSTED_ROOT_TARGET,
    Limits,
    Refreshed,
    default_metadata_dir,
    refresh_trusted_root,
)

_EXAMPLES = """\
examples:
  # refresh the snapshot kept in git (Sigstore public-good), then review and commit it
  imagegate trust refresh --out deploy/base/trust/trusted_root.json

  # Sigstore's staging instance
  imagegate trust refresh --staging --out trust/staging_trusted_root.json

  # a private Sigstore instance or an internal mirror, with its TUF root
  imagegate trust refresh --url https://tuf.example.com --root tuf-root.json --out trusted_root.json

  # inside the cluster (what the CronJob in deploy/trust-refresh/ runs)
  imagegate trust refresh --configmap imagegate/imagegate-trust --metadata-dir /var/cache/imagegate/tuf
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trust = subparsers.add_parser(
        "trust",
        help="keep Sigstore trust material fresh",
        description="Manage the Sigstore trust material the policy pins (trust.roots).",
        epilog="examples:\n  imagegate trust refresh --out deploy/base/trust/trusted_root.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = trust.add_subparsers(dest="trust_command", metavar="COMMAND")
    refresh = commands.add_parser(
        "refresh",
        help="fetch the current trusted_root.json over TUF and install it atomically",
        description=(
            "Update the TUF metadata of a Sigstore TUF repository (public-good by default), download\n"
            "the trusted_root.json it vouches for, check that `imagegate serve` would load it, and\n"
            "install it: atomically into --out, or into a ConfigMap key with --configmap (in a cluster).\n"
            "Prints the CAs, TSAs, transparency logs and CT logs added, removed, changed or expired,\n"
            "or 'unchanged'.\n\n"
            "exit status: 0 installed or already current; 1 the refresh failed and nothing was\n"
            "replaced; 2 usage or configuration error."
        ),
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    destination = refresh.add_mutually_exclusive_group(required=True)
    destination.add_argument("--out", type=Path, metavar="FILE", help="the trusted_root.json file to update")
    destination.add_argument(
        "--configmap",
        metavar="NAMESPACE/NAME",
        help="update a ConfigMap key instead, using the pod's service account (in a cluster only)",
    )
    refresh.add_argument(
        "--key",
        default=None,
        help=f"the ConfigMap key holding the trusted root (default {TRUSTED_ROOT_TARGET}; with --configmap)",
    )
    refresh.add_argument(
        "--url",
        help=f"TUF repository or mirror (default {INSTANCES['public-good'].url}, or the staging one)",
    )
    refresh.add_argument(
        "--staging",
        action="store_true",
        help=f"use Sigstore's staging instance ({INSTANCES['staging'].url}) and its embedded root",
    )
    refresh.add_argument(
        "--root",
        type=Path,
        metavar="FILE",
        help="initial TUF root.json to trust (default: the embedded root of public-good or staging)",
    )
    refresh.add_argument(
        "--metadata-dir",
        type=Path,
        metavar="DIR",
        help="TUF metadata cache (default ~/.local/share/imagegate/tuf/<url>)",
    )
    refresh.add_argument(
        "--timeout",
        type=seconds(maximum=3600),
        default=Limits().timeout,
        metavar="SECONDS",
        help="time limit for the whole refresh: seconds or a duration like 90s or 5m, at most 1h "
        "(default 60; each connect or read waits at most 10)",
    )
    refresh.set_defaults(func=run_refresh)
    trust.set_defaults(func=lambda _args: _usage(trust))


def run_refresh(args: argparse.Namespace) -> int:
    if args.key is not None and args.configmap is None:
        print("error: --key goes with --configmap", file=sys.stderr)
        return 2
    instance = INSTANCES["staging" if args.staging else "public-good"]
    url: str = args.url or instance.url
    initial_root = _read_root(args.root) if args.root is not None else instance.initial_root()
    metadata_dir: Path = args.metadata_dir or default_metadata_dir(url)
    limits = Limits(timeout=args.timeout)
    destination = _destination(args, limits)
    # One deadline for everything the command sends: the ConfigMap calls and the TUF downloads.
    deadline = Deadline.after(limits.timeout)
    try:
        # Read first: a destination that cannot be read (or a missing permission) fails before any download.
        previous = destination.read(deadline)
        refreshed = refresh_trusted_root(
            url=url, initial_root=initial_root, metadata_dir=metadata_dir, limits=limits, deadline=deadline
        )
        source = f"{url} (TUF root version {refreshed.root_version})"
        if refreshed.data == previous:
            print(f"{destination.shown}: unchanged ({TRUSTED_ROOT_TARGET} from {source})")
            return 0
        _check_loads(refreshed, url=url)
        destination.install(refreshed.data, deadline)
    except TrustRefreshFailed as error:
        print(f"error: {error.user_message}; {destination.shown} was not changed", file=sys.stderr)
        return 1
    finally:
        destination.close()
    _report(destination.shown, previous=previous, new=refreshed.data, source=source)
    return 0


class _Destination(Protocol):
    """Where the trusted root is installed."""

    @property
    def shown(self) -> str: ...

    def read(self, deadline: Deadline) -> bytes | None:
        """The installed bytes (``None``: nothing installed yet)."""

    def install(self, data: bytes, deadline: Deadline) -> None: ...

    def close(self) -> None: ...


def _destination(args: argparse.Namespace, limits: Limits) -> _Destination:
    if args.configmap is not None:
        key = ConfigMapKey.parse(args.configmap, key=args.key or TRUSTED_ROOT_TARGET)
        api = KubernetesApi.in_cluster(operation_timeout=limits.operation_timeout)
        return _ConfigMapDestination(key=key, api=api)
    out: Path = args.out
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory")
    if not out.resolve().parent.is_dir():
        raise ConfigError(f"--out {out}: directory {out.resolve().parent} does not exist")
    return _FileDestination(out)


class _FileDestination:
    def __init__(self, path: Path) -> None:
        self._path = path
        self.shown = str(path)

    def read(self, deadline: Deadline) -> bytes | None:
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ConfigError(f"cannot read {self._path}: {describe_error(error)}") from None

    def install(self, data: bytes, deadline: Deadline) -> None:
        try:
            replace_file(self._path, data)
        except OSError as error:
            raise ConfigError(f"cannot write {self._path}: {describe_error(error)}") from None

    def close(self) -> None:
        pass


class _ConfigMapDestination:
    def __init__(self, *, key: ConfigMapKey, api: KubernetesApi) -> None:
        self._key = key
        self._api = api
        self._resource_version = ""
        self.shown = str(key)

    def read(self, deadline: Deadline) -> bytes | None:
        current = self._api.read(self._key, deadline=deadline)
        self._resource_version = current.resource_version
        return current.value.encode() if current.value is not None else None

    def install(self, data: bytes, deadline: Deadline) -> None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise TrustRefreshFailed(f"the served {TRUSTED_ROOT_TARGET} is not UTF-8 text") from None
        # Conditional on the version read: a concurrent change makes this fail instead of being lost.
        self._api.patch(
            self._key,
            value=text,
            resource_version=self._resource_version,
            deadline=deadline,
        )

    def close(self) -> None:
        self._api.close()


def _check_loads(refreshed: Refreshed, *, url: str) -> None:
    """Judge the new root as ``serve`` judges a policy's trust root; a refusal fails the refresh."""
    from webhook.policy.material import MaterialError, TrustedRootMaterial
    from webhook.policy.model import TrustRoot
    from webhook.verify.trust import load_root

    refused = f"{url} serves a {TRUSTED_ROOT_TARGET} that imagegate serve would refuse"
    try:
        checked = TrustedRootMaterial.parse(refreshed.data, path=Path(TRUSTED_ROOT_TARGET))
        load_root(TrustRoot(name="refreshed", material=checked))
    except MaterialError as error:
        raise TrustRefreshFailed(f"{refused} (it {error.message})") from None
    except ConfigError as error:
        raise TrustRefreshFailed(f"{refused} ({error.user_message})") from None


def _report(shown: str, *, previous: bytes | None, new: bytes, source: str) -> None:
    now = datetime.now(UTC)
    verb = "updated" if previous is not None else "created"
    digest = hashlib.sha256(new).hexdigest()
    print(f"{shown}: {verb} from {source}, sha256:{digest} ({len(new)} bytes)")
    changes = compare(previous, new, now=now)
    for change in changes:
        print(f"  {describe(change, now=now)}")
    if not changes:
        print("  no CA, TSA or log changed (other fields or the formatting differ)")


def _read_root(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"cannot read --root {path}: {describe_error(error)}") from None


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2
