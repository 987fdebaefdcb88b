"""Registry client settings: which hosts may be contacted and how, timeouts and byte caps."""

from __future__ import annotations

__all__ = ["DOCKER_HUB_HOSTS", "RegistrySettings", "normalise_netloc"]

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from webhook.errors import ConfigError
from webhook.images.reference import DOCKER_HUB_ALIASES
from webhook.policy.material import CaMaterial, MaterialError
from webhook.registry.credentials import DockerCredentials

if TYPE_CHECKING:
    from webhook.policy.model import Policy

_MIB = 1024 * 1024
# ``docker.io`` in the allowlist covers the hosts Docker Hub's API and token service really live on.
DOCKER_HUB_HOSTS = DOCKER_HUB_ALIASES | {"auth.docker.io"}


def normalise_netloc(netloc: str, *, scheme: str = "") -> str:
    """``host[:port]`` lower-cased, without the default port of ``scheme`` and without userinfo."""
    host = netloc.rsplit("@", 1)[-1].lower()
    if (scheme == "https" and host.endswith(":443")) or (scheme == "http" and host.endswith(":80")):
        host = host.rsplit(":", 1)[0]
    return host


def _normalise_entries(entries: object, *, what: str) -> frozenset[str]:
    if isinstance(entries, str) or not isinstance(entries, (tuple, list, set, frozenset)):
        raise ConfigError(f"registries.{what} must be a list of host or host:port entries")
    out = set()
    for entry in entries:
        if not isinstance(entry, str) or not entry or "/" in entry or "@" in entry or entry != entry.strip():
            raise ConfigError(f"registries.{what}: {entry!r} is not a host or host:port")
        host = entry.lower()
        out.add("docker.io" if host in DOCKER_HUB_ALIASES else host)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class RegistrySettings:
    """How the registry client may talk to registries.

    Attributes:
        allow: the only hosts contacted (``host`` or ``host:port``, exact; ``docker.io`` also covers
            ``registry-1.docker.io``, ``index.docker.io`` and ``auth.docker.io``). Token realms must be
            in it too. Blob redirect targets need not be: blob content is verified against its digest.
        insecure: hosts reached over plain HTTP (every other host over verified HTTPS).
        ca: PEM CA certificates trusted in addition to the system trust store, as read and checked
            (a policy's ``caFile``); ``ca_file`` names their file. Given only ``ca_file`` (the command
            line's ``--ca-file``), the file is read once, here.
        credentials: parsed dockerconfigjson; registries without an entry are accessed anonymously.
        connect_timeout, read_timeout: per network operation, always capped by the caller's deadline.
        manifest_max_bytes: cap for manifests, indexes and each referrers page (4 MiB as in distribution).
        blob_max_bytes: default cap for blobs; 8 MiB is ample for signature and attestation blobs
            (bundles and DSSE envelopes are kilobytes) while bounding memory per request.
        referrers_max_pages, referrers_max_entries: caps on referrers pagination and the entries kept.
        referrers_api_ttl: seconds a host that answered without the OCI referrers API is asked for the
            tag-schema fallback index only, sparing each lookup the probe (0: probe every time). As
            long as a referrers list may be cached anyway is long enough: a registry that gains the
            API is then read through it as soon as a cached list would have been refreshed.
        token_max_bytes: cap for token-server answers.
        max_attempts: tries for idempotent requests answered 429/5xx, while the deadline allows.
        backoff: first retry delay in seconds (doubled per retry) when no Retry-After is given.
        pool_maxsize: pooled connections kept per host (gunicorn gthread workers share one client).
    """

    allow: frozenset[str] = frozenset()
    insecure: frozenset[str] = frozenset()
    ca_file: Path | None = None
    ca: CaMaterial | None = None
    credentials: DockerCredentials = field(default_factory=DockerCredentials)
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    manifest_max_bytes: int = 4 * _MIB
    blob_max_bytes: int = 8 * _MIB
    referrers_max_pages: int = 8
    referrers_max_entries: int = 1024
    referrers_api_ttl: float = 30.0
    token_max_bytes: int = 256 * 1024
    max_attempts: int = 3
    backoff: float = 0.2
    pool_maxsize: int = 16
    user_agent: str = "imagegate/0.1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "allow", _normalise_entries(self.allow, what="allow"))
        object.__setattr__(self, "insecure", _normalise_entries(self.insecure, what="insecure"))
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError("registry timeouts must be positive")
        if min(self.manifest_max_bytes, self.blob_max_bytes, self.token_max_bytes) <= 0:
            raise ConfigError("registry byte caps must be positive")
        if self.max_attempts < 1:
            raise ConfigError("registry max_attempts must be at least 1")
        if self.ca is not None:
            object.__setattr__(self, "ca_file", self.ca.path)
        elif self.ca_file is not None:
            object.__setattr__(self, "ca", _read_ca(self.ca_file))

    def host_allowed(self, netloc: str) -> bool:
        """Whether ``netloc`` (``host[:port]``, already normalised) may be contacted."""
        host = netloc.lower()
        if host in self.allow:
            return True
        return host in DOCKER_HUB_HOSTS and "docker.io" in self.allow

    def scheme_for(self, netloc: str) -> str:
        return "http" if netloc.lower() in self.insecure else "https"

    def url_allowed(self, url: str) -> bool:
        """Whether ``url`` uses an allowed host with the scheme that host requires."""
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            return False
        netloc = normalise_netloc(parts.netloc, scheme=parts.scheme)
        return self.host_allowed(netloc) and self.scheme_allowed(parts.scheme, netloc)

    def scheme_allowed(self, scheme: str, netloc: str) -> bool:
        return scheme == "https" or (scheme == "http" and netloc.lower() in self.insecure)

    @classmethod
    def from_policy(cls, policy: Policy) -> RegistrySettings:
        """Settings from ``policy.registries``: allow, insecure, and the CA and credentials the policy
        carries as it read and checked them (no file is opened here)."""
        registries = policy.registries
        return cls(
            allow=frozenset(registries.allow),
            insecure=frozenset(registries.insecure),
            ca=registries.ca,
            credentials=(
                DockerCredentials.from_material(registries.credentials)
                if registries.credentials is not None
                else DockerCredentials()
            ),
        )


def _read_ca(path: Path) -> CaMaterial:
    try:
        return CaMaterial.read(path)
    except OSError as error:
        raise ConfigError(f"cannot load registry CA file {path}: {error.strerror or error}") from None
    except MaterialError as error:
        raise ConfigError(f"cannot load registry CA file {path}: it {error.message}") from None
