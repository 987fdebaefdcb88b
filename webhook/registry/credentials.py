"""Registry credentials from a dockerconfigjson file, kept out of every repr, message and log line."""

from __future__ import annotations

__all__ = ["BasicCredentials", "DockerCredentials", "normalise_registry_key"]

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from webhook.errors import ConfigError
from webhook.images.reference import DOCKER_HUB_ALIASES
from webhook.policy import material

# Docker Hub is written many ways in config files; they all mean the registry imagegate calls docker.io.
_DOCKER_HUB_KEYS = DOCKER_HUB_ALIASES | {"registry.hub.docker.com"}


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

        The file is judged by :func:`webhook.policy.material.docker_config`, as ``imagegate lint`` does.
        (A policy's ``credentialsFile`` is read by the policy loader: :meth:`from_material`.)

        Raises:
            ConfigError: unreadable or malformed; the message names the file and entry, never a secret.
        """
        try:
            checked = material.CredentialsMaterial.read(path)
        except OSError as error:
            raise ConfigError(f"cannot read registry credentials file {path}: {error.strerror}") from None
        except material.MaterialError as error:
            raise ConfigError(f"registry credentials file {path} {error.message}") from None
        return cls.from_material(checked)

    @classmethod
    def from_material(cls, checked: material.CredentialsMaterial) -> DockerCredentials:
        """The credentials of a dockerconfigjson file the policy loader read and checked."""
        return cls._from_entries(checked.entries, source=str(checked.path or "<dockerconfigjson>"))

    @classmethod
    def from_json(cls, document: object, *, source: str = "<dockerconfigjson>") -> DockerCredentials:
        """Parse a dockerconfigjson document (``auths`` keyed by host, ``auth`` or ``username``/``password``).

        Raises:
            ConfigError: the document does not have that shape.
        """
        try:
            entries = material.docker_config_entries(document)
        except material.MaterialError as error:
            raise ConfigError(f"{source}: {error.message}") from None
        return cls._from_entries(entries, source=source)

    @classmethod
    def _from_entries(cls, entries: tuple[tuple[str, str, str], ...], *, source: str) -> DockerCredentials:
        by_host = {normalise_registry_key(key): BasicCredentials(user, pw) for key, user, pw in entries}
        return cls(by_host=MappingProxyType(by_host), source=source)
