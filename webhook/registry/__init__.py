"""OCI distribution client: tag resolution, manifests, blobs, referrers, quarantine markers.

Public entry points: :class:`Registry` (the port), :class:`RegistryClient` (the HTTP adapter),
:class:`CachingRegistry` (TTL + single-flight wrapper) and :class:`RegistrySettings`.
"""

from __future__ import annotations

__all__ = [
    "CachingRegistry",
    "Descriptor",
    "DockerCredentials",
    "Manifest",
    "Registry",
    "RegistryClient",
    "RegistrySettings",
]

from webhook.registry.cached import CachingRegistry
from webhook.registry.client import RegistryClient
from webhook.registry.credentials import DockerCredentials
from webhook.registry.port import Descriptor, Manifest, Registry
from webhook.registry.settings import RegistrySettings
