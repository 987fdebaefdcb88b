"""One key of one ConfigMap, read and patched from inside a cluster with the pod's service account.

Only two calls are made, both to the API server named by ``KUBERNETES_SERVICE_HOST``/``_PORT`` over TLS
verified with the service account's ``ca.crt``: ``GET`` the ConfigMap, and a JSON merge ``PATCH`` of the
one key that carries the ``resourceVersion`` read, so a concurrent change makes the patch fail (409)
instead of being overwritten. RBAC therefore needs ``get`` and ``patch`` on that ConfigMap only
(``resourceNames``). Every call has a timeout per operation, the caller's deadline and a byte cap; the
token is never logged or shown.
"""

from __future__ import annotations

__all__ = ["SERVICE_ACCOUNT_DIR", "ConfigMapKey", "Current", "KubernetesApi"]

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from webhook.deadline import Deadline
from webhook.errors import ConfigError, TrustRefreshFailed
from webhook.formats import DNS_LABEL, DNS_SUBDOMAIN
from webhook.trust_refresh.http_reads import describe, operation_timeout, read_body

_logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# A ConfigMap holds at most 1 MiB of data; its metadata (last-applied annotation, managed fields) adds some.
_MAX_BYTES = 4 * 1024 * 1024
_FIELD_MANAGER = "imagegate-trust-refresh"
_KEY = re.compile(r"[-._a-zA-Z0-9]{1,253}")


@dataclass(frozen=True, slots=True)
class ConfigMapKey:
    """``key`` of ConfigMap ``namespace/name``."""

    namespace: str
    name: str
    key: str

    @classmethod
    def parse(cls, text: str, *, key: str) -> ConfigMapKey:
        """``NAMESPACE/NAME`` and a data key.

        Raises:
            ConfigError: not a valid namespace, ConfigMap name or key.
        """
        namespace, _, name = text.partition("/")
        if not DNS_LABEL.fullmatch(namespace) or not DNS_SUBDOMAIN.fullmatch(name):
            raise ConfigError(f"--configmap {text!r} is not NAMESPACE/NAME (lower-case DNS names)")
        if not _KEY.fullmatch(key) or key in (".", ".."):
            raise ConfigError(f"--key {key!r} is not a ConfigMap key (letters, digits, '-', '_', '.')")
        return cls(namespace=namespace, name=name, key=key)

    def __str__(self) -> str:
        return f"configmap {self.namespace}/{self.name} key {self.key}"


@dataclass(frozen=True, slots=True)
class Current:
    """The key's value (``None`` when the ConfigMap lacks it) and the ConfigMap's resourceVersion."""

    value: str | None
    resource_version: str


class KubernetesApi:
    """The two ConfigMap calls, authenticated with a service account token."""

    def __init__(self, *, server: str, token: str, ca_file: Path, operation_timeout: float = 10.0) -> None:
        self._server = server.rstrip("/")
        self._operation_timeout = operation_timeout
        session = requests.Session()
        # Proxies and CA bundles from the environment must not apply to the API server.
        session.trust_env = False
        session.verify = str(ca_file)
        session.headers.update(
            {"Authorization": f"Bearer {token}", "Accept": "application/json", "Accept-Encoding": "identity"}
        )
        self._session = session

    @classmethod
    def in_cluster(
        cls,
        *,
        service_account_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
        operation_timeout: float = 10.0,
    ) -> KubernetesApi:
        """The API server and credentials Kubernetes gives every pod.

        Args:
            service_account_dir: where the token and ``ca.crt`` are (default :data:`SERVICE_ACCOUNT_DIR`).
            environ: where ``KUBERNETES_SERVICE_HOST``/``_PORT`` are read (default ``os.environ``).

        Raises:
            ConfigError: not running in a pod, or no service account token is mounted.
        """
        service_account_dir = service_account_dir or SERVICE_ACCOUNT_DIR
        environ = os.environ if environ is None else environ
        host, port = environ.get("KUBERNETES_SERVICE_HOST"), environ.get("KUBERNETES_SERVICE_PORT")
        if not host or not port:
            raise ConfigError(
                "--configmap works inside a cluster only (KUBERNETES_SERVICE_HOST and "
                "KUBERNETES_SERVICE_PORT are not set); elsewhere write a file with --out"
            )
        try:
            token = (service_account_dir / "token").read_text().strip()
        except OSError as error:
            raise ConfigError(
                f"no service account token at {service_account_dir / 'token'} ({describe(error)}): the pod "
                "needs automountServiceAccountToken or a projected token"
            ) from None
        ca_file = service_account_dir / "ca.crt"
        if not ca_file.is_file():
            raise ConfigError(f"no API server CA at {ca_file}: the pod needs its service account volume")
        netloc = f"[{host}]" if ":" in host else host
        return cls(
            server=f"https://{netloc}:{port}",
            token=token,
            ca_file=ca_file,
            operation_timeout=operation_timeout,
        )

    def close(self) -> None:
        self._session.close()

    def read(self, ref: ConfigMapKey, *, deadline: Deadline) -> Current:
        """The current value of ``ref``.

        Raises:
            ConfigError: the ConfigMap does not exist or the service account may not read it.
            TrustRefreshFailed: the API server could not be reached or failed.
        """
        document = self._call("GET", ref, verb="get", deadline=deadline)
        data = document.get("data")
        value = data.get(ref.key) if isinstance(data, dict) else None
        metadata = document.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, dict) else None
        if not isinstance(version, str) or (value is not None and not isinstance(value, str)):
            raise TrustRefreshFailed(f"{ref}: the API server answered with a malformed ConfigMap")
        return Current(value=value, resource_version=version)

    def patch(self, ref: ConfigMapKey, *, value: str, resource_version: str, deadline: Deadline) -> None:
        """Set ``ref`` to ``value`` if the ConfigMap is still at ``resource_version``.

        Raises:
            ConfigError: the service account may not patch it, or the ConfigMap is immutable.
            TrustRefreshFailed: it changed meanwhile (409), or the API server failed.
        """
        body = {"metadata": {"resourceVersion": resource_version}, "data": {ref.key: value}}
        self._call("PATCH", ref, verb="patch", deadline=deadline, body=body)

    def _call(
        self,
        method: str,
        ref: ConfigMapKey,
        *,
        verb: str,
        deadline: Deadline,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        path = f"/api/v1/namespaces/{quote(ref.namespace)}/configmaps/{quote(ref.name)}"
        what = f"{method} {path}"
        timeout = operation_timeout(deadline, self._operation_timeout, what=what)
        params = {"fieldManager": _FIELD_MANAGER} if method == "PATCH" else None
        headers = {"Content-Type": "application/merge-patch+json"} if body is not None else None
        data = json.dumps(body).encode() if body is not None else None
        try:
            response = self._session.request(
                method,
                self._server + path,
                params=params,
                data=data,
                headers=headers,
                stream=True,
                timeout=(timeout, timeout),
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise TrustRefreshFailed(f"{what}: cannot reach the API server: {describe(error)}") from None
        payload = read_body(response, what=what, deadline=deadline, max_bytes=_MAX_BYTES)
        status = response.status_code
        _logger.debug("%s: HTTP %d", what, status)
        if status == 200:
            try:
                document = json.loads(payload)
            except (ValueError, UnicodeDecodeError):
                document = None
            if not isinstance(document, dict):
                raise TrustRefreshFailed(f"{what}: the API server answered with something other than JSON")
            return document
        reason = _status_message(payload)
        if status in (401, 403):
            raise ConfigError(
                f"the service account may not {verb} ConfigMap {ref.namespace}/{ref.name} (HTTP {status}): "
                f"grant it get and patch on that ConfigMap{reason}"
            )
        if status == 404:
            raise ConfigError(f"ConfigMap {ref.namespace}/{ref.name} does not exist{reason}")
        if status == 409:
            raise TrustRefreshFailed(
                f"ConfigMap {ref.namespace}/{ref.name} changed while the refresh ran; nothing was written, "
                "run it again"
            )
        if status == 422:
            raise ConfigError(f"the API server refused the update of {ref}{reason}")
        raise TrustRefreshFailed(f"{what}: the API server answered HTTP {status}{reason}")


def _status_message(payload: bytes) -> str:
    """``: <message>`` of a Kubernetes Status body, or nothing."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return ""
    message = document.get("message") if isinstance(document, dict) else None
    return f": {message[:300]}" if isinstance(message, str) and message else ""
