"""Registry credentials from a dockerconfigjson file, kept out of every repr, message and log line."""

from __future__ import annotations

__all__ = ["BasicCredentials", "DockerCredentials", "normalise_registry_key"]

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from webhook.errors import ConfigError

# Docker Hub is written many ways in config files; they all mean the registry imagegate calls docker.io.
_DOCKER_HUB_KEYS = frozenset(
    {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
_MAX_CONFIG_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True, repr=False)
class BasicCredentials:
    """A username and password (or token used as password). Never printed."""

    username: str
    password: str

    def __repr__(self) -> str:
        return "BasicCredentials(<redacted>)"

    __str__ = __repr__

    def header(self) -> str:
        """The value of an ``Authorization: Basic`` header."""
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


def normalise_registry_key(key: str) -> str:
    """The registry host a dockerconfigjson ``auths`` key names.

    Keys come with or without scheme and path (``https://index.docker.io/v1/``, ``ghcr.io``,
    ``http://127.0.0.1:5000/v2/``); hosts compare lower-case, Docker Hub spellings become ``docker.io``.
    """
    text = key.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    host = text.split("/", 1)[0].lower()
    return "docker.io" if host in _DOCKER_HUB_KEYS else host


@dataclass(frozen=True, slots=True, repr=False)
class DockerCredentials:
    """Credentials by registry host (as :attr:`ImageRef.registry` spells it), parsed from dockerconfigjson."""

    by_host: Mapping[str, BasicCredentials] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    def __repr__(self) -> str:
        hosts = ", ".join(sorted(self.by_host))
        return f"DockerCredentials(hosts=[{hosts}])"

    __str__ = __repr__

    def for_registry(self, registry: str) -> BasicCredentials | None:
        """The credentials for ``registry`` (host or host:port, exact), or None."""
        return self.by_host.get(normalise_registry_key(registry))

    @classmethod
    def from_file(cls, path: Path) -> DockerCredentials:
        """Read a dockerconfigjson file (``{"auths": {...}}``, as a Kubernetes pull secret holds).

        Raises:
            ConfigError: unreadable or malformed; the message names the file and entry, never a secret.
        """
        try:
            with path.open("rb") as handle:
                raw = handle.read(_MAX_CONFIG_BYTES + 1)
        except OSError as error:
            raise ConfigError(f"cannot read registry credentials file {path}: {error.strerror}") from None
        if len(raw) > _MAX_CONFIG_BYTES:
            raise ConfigError(f"registry credentials file {path} is larger than {_MAX_CONFIG_BYTES} bytes")
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            # The JSON error text quotes the document, which holds secrets: say only where.
            raise ConfigError(f"registry credentials file {path} is not valid JSON") from None
        return cls.from_json(document, source=str(path))

    @classmethod
    def from_json(cls, document: object, *, source: str = "<dockerconfigjson>") -> DockerCredentials:
        """Parse a dockerconfigjson document (``auths`` keyed by host, ``auth`` or ``username``/``password``).

        Raises:
            ConfigError: the document does not have that shape.
        """
        if not isinstance(document, dict):
            raise ConfigError(f"{source}: a dockerconfigjson document must be a JSON object")
        auths = document.get("auths", {})
        if not isinstance(auths, dict):
            raise ConfigError(f"{source}: /auths must be an object keyed by registry host")
        by_host: dict[str, BasicCredentials] = {}
        for key, entry in auths.items():
            if not isinstance(key, str) or not isinstance(entry, dict):
                raise ConfigError(f"{source}: /auths/{key}: each entry must be an object")
            host = normalise_registry_key(key)
            creds = _entry_credentials(entry, where=f"{source}: /auths/{key}")
            if creds is not None:
                by_host[host] = creds
        return cls(by_host=MappingProxyType(by_host), source=source)


def _entry_credentials(entry: dict[str, object], *, where: str) -> BasicCredentials | None:
    username, password = entry.get("username"), entry.get("password")
    auth = entry.get("auth")
    if isinstance(username, str) and isinstance(password, str) and username:
        return BasicCredentials(username, password)
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise ConfigError(f"{where}/auth is not base64 of 'username:password'") from None
        user, sep, secret = decoded.partition(":")
        if not sep or not user:
            raise ConfigError(f"{where}/auth is not base64 of 'username:password'")
        return BasicCredentials(user, secret)
    if username is not None or password is not None or auth is not None:
        raise ConfigError(f"{where}: needs 'auth' or both 'username' and 'password' as strings")
    # An entry without credentials (e.g. only "email") grants nothing; anonymous access applies.
    return None
