"""The TUF update behind ``imagegate trust refresh``: a verified ``trusted_root.json`` from a TUF repository.

python-tuf's ngclient runs the TUF client workflow: it walks the root versions from the initial root
(each new root signed by a threshold of the previous root's keys and its own), then checks timestamp,
snapshot and targets metadata (signature thresholds, no version rollback against the cache, no expired
metadata) and the target's length and hashes. This module gives it

* an initial root: the one embedded for Sigstore's public-good or staging repository, or one the caller
  provides. ``roots/public-good.json`` (version 15) and ``roots/staging.json`` (version 14) are
  byte-identical copies of the ``root.json`` files sigstore-python 4.5.1 ships in ``sigstore/_store/``
  (a test compares them; copy newer ones when an upgrade of sigstore ships them). An old root is still a
  sound starting point: the client walks every later root version, each signed by a threshold of the
  keys of the one before, and only the newest must be unexpired;
* a metadata cache directory, which keeps the newest trusted root and the last seen versions (rollback
  protection across runs);
* a fetcher with one deadline for the whole refresh, a timeout per connect and read, and byte caps on
  every download (:class:`Limits`),

and turns its exceptions into :class:`~webhook.errors.TrustRefreshFailed` (the repository or network
failed us) and :class:`~webhook.errors.ConfigError` (bad initial root, unusable cache directory).
"""

from __future__ import annotations

__all__ = [
    "INSTANCES",
    "TRUSTED_ROOT_TARGET",
    "Instance",
    "Limits",
    "Refreshed",
    "check_initial_root",
    "default_metadata_dir",
    "refresh_trusted_root",
]

import logging
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from urllib.parse import quote, urlsplit

import platformdirs
import requests
from tuf.api import exceptions
from tuf.api.metadata import Metadata, Root  # type: ignore[attr-defined]  # re-exported by tuf, not in __all__
from tuf.ngclient.config import UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface
from tuf.ngclient.updater import Updater

from webhook.deadline import Deadline
from webhook.errors import ConfigError, TrustRefreshFailed
from webhook.text import first_line
from webhook.trust_refresh.http_reads import body_chunks, describe, operation_timeout

_logger = logging.getLogger(__name__)

_KIB = 1024
_MIB = 1024 * _KIB

TRUSTED_ROOT_TARGET = "trusted_root.json"


@dataclass(frozen=True, slots=True)
class Instance:
    """A Sigstore TUF repository whose initial root is embedded in imagegate."""

    name: str
    url: str
    root_file: str

    def initial_root(self) -> bytes:
        return resources.files("webhook.trust_refresh").joinpath("roots", self.root_file).read_bytes()


INSTANCES: Mapping[str, Instance] = MappingProxyType(
    {
        "public-good": Instance("public-good", "https://tuf-repo-cdn.sigstore.dev", "public-good.json"),
        "staging": Instance("staging", "https://tuf-repo-cdn.sigstage.dev", "staging.json"),
    }
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Time and size bounds of one refresh.

    Attributes:
        timeout: seconds for the whole refresh (every request of it).
        operation_timeout: seconds one connect or one read may wait (never past ``timeout``).
        root_max_bytes, timestamp_max_bytes, snapshot_max_bytes, targets_max_bytes: caps on TUF
            metadata (snapshot and targets are capped by the lengths the signed metadata gives, where
            it gives them); python-tuf's defaults.
        target_max_bytes: cap on ``trusted_root.json`` whatever length the signed targets claim (the
            public-good one is about 7 KB; a ConfigMap holds at most 1 MiB).
    """

    timeout: float = 60.0
    operation_timeout: float = 10.0
    root_max_bytes: int = 512 * _KIB
    timestamp_max_bytes: int = 16 * _KIB
    snapshot_max_bytes: int = 2 * _MIB
    targets_max_bytes: int = 5 * _MIB
    target_max_bytes: int = 1 * _MIB


@dataclass(frozen=True, slots=True)
class Refreshed:
    """A ``trusted_root.json`` that passed TUF verification, and the TUF root version that vouched for it."""

    data: bytes
    root_version: int
    initial_root_version: int


def default_metadata_dir(url: str) -> Path:
    """Where the metadata of the repository at ``url`` is cached unless ``--metadata-dir`` says otherwise.

    ``<user data dir>/imagegate/tuf/<URL, percent-encoded>``: ``~/.local/share/imagegate/tuf/...`` on Linux.
    """
    return Path(platformdirs.user_data_dir("imagegate")) / "tuf" / quote(url.rstrip("/"), safe="")


def check_initial_root(data: bytes, *, source: str) -> int:
    """Check that ``data`` is TUF root metadata signed by a threshold of its own root keys.

    Returns:
        Its version.

    Raises:
        ConfigError: it is not.
    """
    try:
        metadata = Metadata[Root].from_bytes(data)
        if not isinstance(metadata.signed, Root):
            raise ConfigError(f"{source} is TUF {metadata.signed.type} metadata, not a root")
        metadata.signed.verify_delegate(Root.type, metadata.signed_bytes, metadata.signatures)
    except exceptions.UnsignedMetadataError as error:
        raise ConfigError(f"{source} is not signed by a threshold of its own root keys: {error}") from None
    except exceptions.RepositoryError as error:
        raise ConfigError(f"{source} is not TUF root metadata: {first_line(error)}") from None
    return metadata.signed.version


def refresh_trusted_root(
    *,
    url: str,
    initial_root: bytes,
    metadata_dir: Path,
    limits: Limits | None = None,
    deadline: Deadline | None = None,
    user_agent: str = "imagegate",
) -> Refreshed:
    """Update the TUF metadata of the repository at ``url`` and download its verified ``trusted_root.json``.

    Args:
        deadline: when every download must be done (default: ``limits.timeout`` from now).

    Raises:
        ConfigError: ``initial_root`` is not a self-signed TUF root, or ``metadata_dir`` is unusable.
        TrustRefreshFailed: the repository could not be reached within the limits, its metadata or
            the target failed verification, or it has no ``trusted_root.json``.
    """
    base = url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"TUF repository URL {url!r} is not an http(s) URL")
    initial_version = check_initial_root(initial_root, source="the initial root")
    try:
        metadata_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as error:
        raise ConfigError(
            f"cannot create the TUF metadata directory {metadata_dir}: {describe(error)}"
        ) from None
    limits = limits or Limits()
    deadline = deadline or Deadline.after(limits.timeout)
    fetcher = _Fetcher(deadline=deadline, operation_timeout=limits.operation_timeout, user_agent=user_agent)
    config = UpdaterConfig(
        root_max_length=limits.root_max_bytes,
        timestamp_max_length=limits.timestamp_max_bytes,
        snapshot_max_length=limits.snapshot_max_bytes,
        targets_max_length=limits.targets_max_bytes,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="imagegate-trust-") as work:
            updater = Updater(
                metadata_dir=str(metadata_dir),
                metadata_base_url=f"{base}/",
                target_base_url=f"{base}/targets/",
                fetcher=fetcher,
                config=config,
                bootstrap=initial_root,
            )
            updater.refresh()
            info = updater.get_targetinfo(TRUSTED_ROOT_TARGET)
            if info is None:
                raise TrustRefreshFailed(f"the TUF repository {base} has no target {TRUSTED_ROOT_TARGET}")
            if info.length > limits.target_max_bytes:
                raise TrustRefreshFailed(
                    f"{TRUSTED_ROOT_TARGET} of {base} is {info.length} bytes, more than the limit of "
                    f"{limits.target_max_bytes}"
                )
            downloaded = Path(updater.download_target(info, filepath=str(Path(work) / TRUSTED_ROOT_TARGET)))
            data = downloaded.read_bytes()
    except exceptions.DownloadError as error:
        raise TrustRefreshFailed(_download_failure(error, base)) from None
    except exceptions.RepositoryError as error:
        raise TrustRefreshFailed(_verification_failure(error, base)) from None
    except OSError as error:
        raise ConfigError(
            f"cannot use the TUF metadata directory {metadata_dir}: {describe(error)}"
        ) from None
    finally:
        fetcher.close()
    return Refreshed(
        data=data, root_version=_trusted_root_version(metadata_dir), initial_root_version=initial_version
    )


def _download_failure(error: exceptions.DownloadError, base: str) -> str:
    if isinstance(error, exceptions.DownloadLengthMismatchError):
        return f"a download from {base} is larger than allowed: {error}"
    return f"TUF download failed: {error or type(error).__name__}"


def _verification_failure(error: exceptions.RepositoryError, base: str) -> str:
    detail = first_line(error)
    if isinstance(error, exceptions.LengthOrHashMismatchError):
        return (
            f"{TRUSTED_ROOT_TARGET} from {base} does not match the length and hashes its signed targets "
            f"metadata lists (altered in transit or on the server): {detail}"
        )
    if isinstance(error, exceptions.ExpiredMetadataError) and "root" in detail:
        return (
            f"the newest TUF root available from the initial root and {base} has expired ({detail}): the "
            "repository is not maintained, or it is another repository than the initial root's (give its "
            "root with --root)"
        )
    if isinstance(error, exceptions.ExpiredMetadataError):
        return (
            f"TUF metadata from {base} has expired ({detail}): the repository is no longer updated, or old "
            "metadata is being replayed"
        )
    if isinstance(error, exceptions.UnsignedMetadataError):
        return (
            f"TUF metadata from {base} is not signed by enough trusted keys ({detail}); if this is another "
            "repository than the initial root's, give its root with --root"
        )
    if isinstance(error, exceptions.BadVersionNumberError):
        return f"TUF metadata from {base} is older than metadata seen before (rollback): {detail}"
    return f"TUF metadata from {base} failed verification: {detail}"


def _trusted_root_version(metadata_dir: Path) -> int:
    # ngclient keeps root.json pointing at the newest root it verified.
    return Metadata[Root].from_bytes((metadata_dir / "root.json").read_bytes()).signed.version


class _Fetcher(FetcherInterface):
    """ngclient's downloads over ``requests``, bounded by one deadline and a timeout per operation.

    The environment's proxy settings (``HTTPS_PROXY``, ``NO_PROXY``) and CA bundle
    (``REQUESTS_CA_BUNDLE``) apply: TLS only protects the transfer; TUF signatures protect the content.
    ngclient enforces the byte caps on what this yields.
    """

    def __init__(self, *, deadline: Deadline, operation_timeout: float, user_agent: str) -> None:
        self._deadline = deadline
        self._operation_timeout = operation_timeout
        session = requests.Session()
        session.headers.update({"User-Agent": user_agent, "Accept-Encoding": "identity"})
        session.max_redirects = 3
        self._session = session

    def close(self) -> None:
        self._session.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        what = f"GET {url}"
        try:
            timeout = operation_timeout(self._deadline, self._operation_timeout, what=what)
            response = self._session.get(url, stream=True, timeout=(timeout, timeout))
        except TrustRefreshFailed as error:
            raise exceptions.SlowRetrievalError(error.user_message) from None
        except requests.RequestException as error:
            raise exceptions.DownloadError(f"{what}: {describe(error)}") from None
        if response.status_code >= 400:
            response.close()
            raise exceptions.DownloadHTTPError(f"{what}: HTTP {response.status_code}", response.status_code)
        _logger.debug("%s: HTTP %d", what, response.status_code)
        return body_chunks(response, what=what, deadline=self._deadline)
