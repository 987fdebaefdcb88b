"""Push real images, indexes and artifacts to a test registry with the distribution HTTP API.

Independent of imagegate's own registry client on purpose: fixtures must not depend on the code
they test. ``OciPusher`` handles the Basic and Bearer-token dances with the credentials it is given.

    pusher = registry.pusher()                      # from tests.support.registry.RegistryServer
    image = pusher.push_image("demo/app", "v1")     # config + one layer + manifest, tagged v1
    index = pusher.push_index("demo/app", "multi", [image, pusher.push_image("demo/app", None, arch="arm64")])
    pusher.retag("demo/app", other.digest, "v1")    # move tag v1
    pusher.push_manifest("demo/app", body, media_type, ref=None)   # any manifest, by digest
"""

from __future__ import annotations

__all__ = ["OciPusher", "Pushed", "build_layer", "sha256"]

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPT = (
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.docker.distribution.manifest.v2+json"
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Pushed:
    """Something pushed: its digest, media type and exact bytes."""

    digest: str
    media_type: str
    body: bytes

    @property
    def size(self) -> int:
        return len(self.body)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def build_layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A reproducible gzipped tar layer of ``files``; returns (layer bytes, diff_id of the tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), sha256(tar_bytes)


class OciPusher:
    """A minimal registry client for test set-up (push, get, delete), with Basic/Bearer auth."""

    def __init__(
        self,
        base_url: str,
        *,
        verify: str | bool = True,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = verify
        self._credentials = (username, password) if username is not None and password is not None else None
        self._tokens: dict[str, str] = {}
        self._basic = False

    def close(self) -> None:
        self._session.close()

    # --- raw HTTP with auth ----------------------------------------------------------------------

    def request(self, method: str, path_or_url: str, **kwargs: Any) -> requests.Response:
        """Send a request (path relative to the registry root, or a full URL), authenticating on 401."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        headers = dict(kwargs.pop("headers", {}) or {})
        scope = _scope_for(method, url)
        self._authorize(headers, scope)
        response = self._session.request(
            method, url, headers=headers, timeout=10, allow_redirects=False, **kwargs
        )
        if response.status_code == 401:
            self._learn(response.headers.get("WWW-Authenticate", ""), scope)
            self._authorize(headers, scope)
            response = self._session.request(
                method, url, headers=headers, timeout=10, allow_redirects=False, **kwargs
            )
        return response

    def _authorize(self, headers: dict[str, str], scope: str) -> None:
        if self._basic and self._credentials is not None:
            user, secret = self._credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        elif scope in self._tokens:
            headers["Authorization"] = "Bearer " + self._tokens[scope]

    def _learn(self, challenge: str, scope: str) -> None:
        scheme, _, rest = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if scheme.lower() == "basic":
            self._basic = True
            return
        query = {"service": params.get("service", ""), "scope": params.get("scope", scope)}
        answer = self._session.get(params["realm"], params=query, auth=self._credentials, timeout=10)
        answer.raise_for_status()
        document = answer.json()
        self._tokens[scope] = document.get("token") or document["access_token"]

    # --- blobs and manifests ---------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes, media_type: str = "application/octet-stream") -> Pushed:
        digest = sha256(data)
        if self.request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code == 200:
            return Pushed(digest, media_type, data)
        started = self.request("POST", f"/v2/{repo}/blobs/uploads/")
        if started.status_code != 202:
            raise AssertionError(
                f"starting upload to {repo}: HTTP {started.status_code} {started.text[:200]}"
            )
        location = urljoin(self.base_url + "/", started.headers["Location"])
        separator = "&" if "?" in location else "?"
        done = self.request(
            "PUT",
            f"{location}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        if done.status_code != 201:
            raise AssertionError(f"finishing upload to {repo}: HTTP {done.status_code} {done.text[:200]}")
        return Pushed(digest, media_type, data)

    def push_manifest(self, repo: str, body: bytes, media_type: str, ref: str | None = None) -> Pushed:
        """PUT a manifest (any bytes) under tag ``ref``, or by its digest when ``ref`` is None."""
        digest = sha256(body)
        response = self.request(
            "PUT", f"/v2/{repo}/manifests/{ref or digest}", data=body, headers={"Content-Type": media_type}
        )
        if response.status_code != 201:
            raise AssertionError(
                f"pushing manifest to {repo}: HTTP {response.status_code} {response.text[:300]}"
            )
        return Pushed(digest, media_type, body)

    def get_manifest(self, repo: str, ref: str) -> Pushed | None:
        response = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        response.raise_for_status()
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return Pushed(sha256(response.content), media_type, response.content)

    def delete_manifest(self, repo: str, digest: str) -> int:
        return self.request("DELETE", f"/v2/{repo}/manifests/{digest}").status_code

    # --- images ----------------------------------------------------------------------------------

    def push_image(
        self,
        repo: str,
        tag: str | None,
        *,
        content: bytes | None = None,
        arch: str = "amd64",
        os_name: str = "linux",
        annotations: dict[str, str] | None = None,
    ) -> Pushed:
        """Push config + one layer + an OCI image manifest; tag it when ``tag`` is given.

        ``content`` (default: derived from repo, tag and arch) makes the image distinct.
        """
        payload = content if content is not None else f"{repo}:{tag}:{arch}".encode()
        layer, diff_id = build_layer({"hello.txt": payload})
        config = json.dumps(
            {
                "architecture": arch,
                "os": os_name,
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                "config": {"Cmd": ["/hello"]},
            },
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        config_blob = self.push_blob(repo, config, OCI_CONFIG)
        layer_blob = self.push_blob(repo, layer, OCI_LAYER)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [layer_blob.descriptor()],
        }
        if annotations:
            manifest["annotations"] = annotations
        body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        return self.push_manifest(repo, body, OCI_MANIFEST, ref=tag)

    def push_index(self, repo: str, tag: str | None, images: list[tuple[Pushed, str, str]]) -> Pushed:
        """Push an OCI index over already pushed ``(image, os, arch)`` entries."""
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                image.descriptor(platform={"os": os_, "architecture": arch}) for image, os_, arch in images
            ],
        }
        body = json.dumps(index, separators=(",", ":"), sort_keys=True).encode()
        return self.push_manifest(repo, body, OCI_INDEX, ref=tag)

    def push_multiarch(self, repo: str, tag: str) -> tuple[Pushed, Pushed, Pushed]:
        """An amd64 and an arm64 image under one index tagged ``tag``: returns (index, amd64, arm64)."""
        amd64 = self.push_image(repo, None, arch="amd64", content=f"{repo}:{tag}:amd64".encode())
        arm64 = self.push_image(repo, None, arch="arm64", content=f"{repo}:{tag}:arm64".encode())
        index = self.push_index(repo, tag, [(amd64, "linux", "amd64"), (arm64, "linux", "arm64")])
        return index, amd64, arm64

    def retag(self, repo: str, source: str, tag: str) -> Pushed:
        """Point ``tag`` at the manifest ``source`` (tag or digest) names: a moving tag."""
        found = self.get_manifest(repo, source)
        if found is None:
            raise AssertionError(f"{repo}:{source} does not exist")
        return self.push_manifest(repo, found.body, found.media_type, ref=tag)

    def push_artifact(
        self,
        repo: str,
        *,
        subject: Pushed,
        artifact_type: str,
        payload: bytes = b"{}",
        payload_media_type: str = "application/vnd.oci.empty.v1+json",
        annotations: dict[str, str] | None = None,
    ) -> Pushed:
        """Push an OCI 1.1 artifact manifest whose ``subject`` is ``subject`` (not indexed anywhere)."""
        empty = self.push_blob(repo, b"{}", "application/vnd.oci.empty.v1+json")
        layer = self.push_blob(repo, payload, payload_media_type)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": empty.descriptor(),
            "layers": [layer.descriptor()],
            "subject": subject.descriptor(),
        }
        if annotations:
            manifest["annotations"] = annotations
        body = json.dumps(manifest, separators=(",", ":"), sort_keys=True).encode()
        return self.push_manifest(repo, body, OCI_MANIFEST)

    def fallback_index(self, repo: str, subject_digest: str) -> dict[str, Any] | None:
        """The referrers tag-schema fallback index of ``subject_digest`` (tag ``sha256-<hex>``), if any."""
        found = self.get_manifest(repo, subject_digest.replace(":", "-", 1))
        return json.loads(found.body) if found is not None else None

    def put_fallback_index(self, repo: str, subject_digest: str, entries: list[dict[str, Any]]) -> Pushed:
        """Write the fallback index of ``subject_digest`` with exactly ``entries``."""
        body = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, separators=(",", ":")
        ).encode()
        return self.push_manifest(repo, body, OCI_INDEX, ref=subject_digest.replace(":", "-", 1))


def _scope_for(method: str, url: str) -> str:
    match = re.search(r"/v2/(.+?)/(?:manifests|blobs|tags|referrers)/", url)
    repo = match.group(1) if match else ""
    actions = "pull" if method in ("GET", "HEAD") else ("delete" if method == "DELETE" else "pull,push")
    return f"repository:{repo}:{actions}"
