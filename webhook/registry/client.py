"""The OCI distribution client: resolve tags, fetch manifests, blobs and referrers, push and delete.

:class:`RegistryClient` implements :class:`webhook.registry.port.Registry` over HTTP (urllib3's pools,
through :mod:`webhook.registry.transport`). One client serves all registries and all threads of a
worker. Content that is addressed by digest is always verified against it; everything else about
safety (allowlist, TLS, deadlines, byte caps, retries) lives in the transport.

It is one class over 600 lines because every operation, read or write, shares its request plumbing
(scopes, auth retries, digest checks, the observer); index listings, markers and caching are modules of
their own.
"""

from __future__ import annotations

__all__ = ["Observer", "RegistryClient"]

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Required, TypedDict, Unpack
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import requests.utils

from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.images.reference import ImageRef
from webhook.reasons import Reason
from webhook.registry.auth import Authenticator
from webhook.registry.port import (
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    MANIFEST_MEDIA_TYPES,
    MEDIA_OCI_INDEX,
    Descriptor,
    Manifest,
    check_digest,
    fallback_tag,
    is_digest,
    sha256_digest,
)
from webhook.registry.settings import RegistrySettings
from webhook.registry.transport import DeadlineExceeded, HttpResponse, Transport, describe_status, origin

_logger = logging.getLogger(__name__)

_HOST_RE = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::[0-9]+)?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_OCTET = "application/octet-stream"
_MAX_HOSTS = 1024

Observer = Callable[[str, "str | None", float, "str | None"], None]
"""``observer(operation, registry, seconds, error_code)`` after every public call (metrics): ``registry``
is the image's registry host (``docker.io`` for Docker Hub), None for one ``allow`` does not name (so
what it reports stays bounded by the allowlist); ``error_code`` is None on success."""


class _CallOptions(TypedDict, total=False):
    """The keyword options of :meth:`RegistryClient._call_url`."""

    deadline: Required[Deadline]
    max_bytes: Required[int]
    accept: str | None
    redirects: int
    push: bool
    delete: bool
    data: bytes | None
    content_type: str | None


class RegistryClient:
    """Talks the OCI distribution API to allowed registries (see :class:`RegistrySettings`).

    Thread-safe: gunicorn gthread workers share one instance. Call :meth:`close` (or use it as a
    context manager) to release pooled connections.
    """

    def __init__(self, settings: RegistrySettings, *, observer: Observer | None = None) -> None:
        self._settings = settings
        self._transport = Transport(settings)
        self._auth = Authenticator(self._transport)
        self._observer = observer
        # Hosts that answered without the referrers API, until when that answer is trusted; hosts
        # that answered with it; and the first referrers request to a host, while it is under way.
        self._without_referrers_api: dict[str, float] = {}
        self._with_referrers_api: set[str] = set()
        self._probing: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @property
    def settings(self) -> RegistrySettings:
        return self._settings

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RegistryClient(allow={sorted(self._settings.allow)})"

    # --- the Registry protocol (observed; only RegistryError escapes) ----------------------------

    def resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        """The manifest digest ``reference`` names (the index digest for multi-arch images)."""
        with self._observed("resolve", repo):
            return self._resolve(repo, reference, deadline=deadline)

    def manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        """The manifest ``reference`` names, verified against a digest reference."""
        with self._observed("manifest", repo):
            return self._manifest(repo, reference, deadline=deadline)

    def manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        """Like :meth:`manifest`; None when the registry answers 404."""
        with self._observed("manifest", repo):
            return self._manifest_if_exists(repo, tag, deadline=deadline)

    def blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        """The blob ``digest``, verified, at most ``max_bytes`` long."""
        with self._observed("blob", repo):
            return self._blob(repo, digest, deadline=deadline, max_bytes=max_bytes)

    def referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        """Manifests whose subject is ``digest`` (referrers API, else the tag-schema fallback)."""
        with self._observed("referrers", repo):
            return self._referrers(repo, digest, deadline=deadline, artifact_type=artifact_type)

    def push_blob(
        self, repo: ImageRef, data: bytes, *, deadline: Deadline, media_type: str = _OCTET
    ) -> Descriptor:
        """Upload ``data`` as a blob unless the registry has it; the descriptor carries ``media_type``."""
        with self._observed("push", repo):
            return self._push_blob(repo, data, deadline=deadline, media_type=media_type)

    def push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        """Upload a manifest under ``tag`` (or by digest); returns its digest."""
        with self._observed("push", repo):
            return self._push_manifest(repo, body, media_type, deadline=deadline, tag=tag)

    def delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        """Delete the manifest ``digest`` (an unknown manifest counts as deleted)."""
        with self._observed("delete", repo):
            self._delete_manifest(repo, digest, deadline=deadline)

    # --- reading ---------------------------------------------------------------------------------

    def _resolve(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> str:
        """The digest of the manifest (or multi-arch index) ``reference`` names.

        HEAD with the OCI and Docker manifest types accepted; when the registry does not send a
        sha256 ``Docker-Content-Digest``, the manifest is fetched and hashed instead.

        Raises:
            RegistryError: unknown tag, registry failure, or (code ``digest-mismatch``) a registry
                answering a digest reference with another digest.
        """
        _check_reference(reference)
        response = self._call(
            "HEAD", repo, f"manifests/{reference}", deadline=deadline, accept=MANIFEST_ACCEPT, max_bytes=0
        )
        if response.status == 404:
            raise RegistryError(
                f"{_display(repo, reference)}: manifest not found ({describe_status(response)})",
                code=Reason.REGISTRY_ERROR,
            )
        if response.status != 200:
            raise RegistryError(f"{response.what}: {describe_status(response)}", code=Reason.REGISTRY_ERROR)
        digest = response.header("Docker-Content-Digest")
        if digest is not None and is_digest(digest.strip()):
            digest = digest.strip()
            if is_digest(reference) and digest != reference:
                raise RegistryError(
                    f"{_display(repo, reference)}: the registry answered with digest {digest}",
                    code=Reason.DIGEST_MISMATCH,
                )
            _logger.debug("resolved %s to %s", _display(repo, reference), digest)
            return digest
        return self._manifest(repo, reference, deadline=deadline).digest

    def _manifest(self, repo: ImageRef, reference: str, *, deadline: Deadline) -> Manifest:
        """The manifest or index ``reference`` names, its digest computed from the bytes received.

        Raises:
            RegistryError: not found, over ``manifest_max_bytes``, or (``digest-mismatch``) content
                that does not hash to the requested digest or to the registry's Docker-Content-Digest.
        """
        found = self._manifest_if_exists(repo, reference, deadline=deadline)
        if found is None:
            raise RegistryError(
                f"{_display(repo, reference)}: manifest not found (HTTP 404)", code=Reason.REGISTRY_ERROR
            )
        return found

    def _manifest_if_exists(self, repo: ImageRef, tag: str, *, deadline: Deadline) -> Manifest | None:
        """Like :meth:`manifest`; None when the registry answers 404 (used for cosign's legacy tags)."""
        _check_reference(tag)
        response = self._call(
            "GET",
            repo,
            f"manifests/{tag}",
            deadline=deadline,
            accept=MANIFEST_ACCEPT,
            max_bytes=self._settings.manifest_max_bytes,
        )
        if response.status == 404:
            return None
        if response.status != 200:
            raise RegistryError(f"{response.what}: {describe_status(response)}", code=Reason.REGISTRY_ERROR)
        return _verified_manifest(response, repo=repo, reference=tag)

    def _blob(self, repo: ImageRef, digest: str, *, deadline: Deadline, max_bytes: int) -> bytes:
        """The blob ``digest``, verified, at most ``max_bytes`` long.

        Redirects (registries hand blobs to storage back-ends) are followed here only: to HTTPS, or to
        plain HTTP hosts in ``insecure``, without credentials when the origin changes.
        """
        check_digest(digest)
        response = self._call(
            "GET", repo, f"blobs/{digest}", deadline=deadline, max_bytes=max_bytes, redirects=3
        )
        if response.status == 404:
            raise RegistryError(
                f"{repo.name}@{digest}: blob not found ({describe_status(response)})",
                code=Reason.REGISTRY_ERROR,
            )
        if response.status != 200:
            raise RegistryError(f"{response.what}: {describe_status(response)}", code=Reason.REGISTRY_ERROR)
        actual = sha256_digest(response.body)
        if actual != digest:
            raise RegistryError(
                f"{repo.name}: blob {digest} has content with digest {actual}", code=Reason.DIGEST_MISMATCH
            )
        return response.body

    def _referrers(
        self, repo: ImageRef, digest: str, *, deadline: Deadline, artifact_type: str | None = None
    ) -> tuple[Descriptor, ...]:
        """Manifests whose ``subject`` is ``digest``, optionally only those of ``artifact_type``.

        Uses ``GET /v2/<name>/referrers/<digest>`` (following ``Link`` pagination within the caps);
        when the registry has no such API (404/405 or an answer that is not an index, as
        distribution 2.8's ``404 page not found``), reads the tag-schema fallback index at tag
        ``sha256-<hex>``. No index there means no referrers. A host found without the API is asked
        for the fallback index only for ``referrers_api_ttl`` seconds: one round trip, not two. Until a
        host's first referrers answer says which it is, concurrent lookups wait for that one request
        (within their deadline) instead of each probing the API.

        Raises:
            RegistryError: registry failure, or more referrers than ``referrers_max_entries``.
        """
        check_digest(digest)
        netloc = _check_repo(repo)
        without_api, probe = self._referrers_turn(netloc, deadline=deadline)
        if without_api:
            descriptors = self._fallback_referrers(repo, digest, deadline=deadline)
        else:
            try:
                descriptors = self._referrers_api(
                    repo, digest, netloc=netloc, deadline=deadline, artifact_type=artifact_type
                )
            finally:
                if probe is not None:
                    with self._lock:
                        if self._probing.get(netloc) is probe:
                            del self._probing[netloc]
                    probe.set()
        if artifact_type is not None:
            descriptors = [d for d in descriptors if d.artifact_type == artifact_type]
        return tuple(descriptors)

    def _referrers_api(
        self, repo: ImageRef, digest: str, *, netloc: str, deadline: Deadline, artifact_type: str | None
    ) -> list[Descriptor]:
        path = f"referrers/{digest}"
        if artifact_type is not None:
            path += "?artifactType=" + quote(artifact_type, safe="")
        response = self._call(
            "GET",
            repo,
            path,
            deadline=deadline,
            accept=MEDIA_OCI_INDEX,
            max_bytes=self._settings.manifest_max_bytes,
        )
        if response.status in (404, 405) or (response.status == 200 and not _is_index_answer(response)):
            _logger.debug(
                "%s has no referrers API (%d): using the tag fallback", response.what, response.status
            )
            self._remember_without_referrers_api(netloc)
            descriptors = self._fallback_referrers(repo, digest, deadline=deadline)
        elif response.status == 200:
            with self._lock:
                if len(self._with_referrers_api) >= _MAX_HOSTS:
                    self._with_referrers_api.clear()
                self._with_referrers_api.add(netloc)
            descriptors = self._paged_referrers(repo, response, deadline=deadline)
        else:
            raise RegistryError(f"{response.what}: {describe_status(response)}", code=Reason.REGISTRY_ERROR)
        return descriptors

    def _referrers_turn(self, netloc: str, *, deadline: Deadline) -> tuple[bool, threading.Event | None]:
        """Whether ``netloc`` is known to have no referrers API (then only the fallback index is read),
        and this lookup's turn to ask the API first (an event to set when answered), or None when the
        host's answer is known or needs no waiting for.

        Raises:
            DeadlineExceeded: the deadline passed while another lookup's first request was under way.
        """
        while True:
            with self._lock:
                until = self._without_referrers_api.get(netloc)
                if until is not None and until > time.monotonic():
                    return True, None
                if netloc in self._with_referrers_api:
                    return False, None
                if self._settings.referrers_api_ttl <= 0:
                    return False, None  # nothing learnt is kept: every lookup asks the API itself
                event = self._probing.get(netloc)
                if event is None:
                    event = self._probing[netloc] = threading.Event()
                    return False, event
            if not event.wait(deadline.remaining()):
                raise DeadlineExceeded(
                    f"registry {netloc}: timed out waiting for the first referrers request to it"
                )
            # Answered (the loop finds what it taught), or failed: then this lookup may ask itself.

    def _remember_without_referrers_api(self, netloc: str) -> None:
        ttl = self._settings.referrers_api_ttl
        with self._lock:
            self._with_referrers_api.discard(netloc)
            if ttl > 0:
                if len(self._without_referrers_api) >= _MAX_HOSTS:
                    self._without_referrers_api.clear()
                self._without_referrers_api[netloc] = time.monotonic() + ttl

    def _paged_referrers(
        self, repo: ImageRef, first: HttpResponse, *, deadline: Deadline
    ) -> list[Descriptor]:
        descriptors: list[Descriptor] = []
        response = first
        pages = 1
        while True:
            descriptors.extend(self._index_entries(response.body, what=response.what))
            if len(descriptors) > self._settings.referrers_max_entries:
                raise RegistryError(
                    f"{first.what}: more than {self._settings.referrers_max_entries} referrers",
                    code=Reason.REGISTRY_ERROR,
                )
            next_url = _next_link(response)
            if next_url is None:
                return descriptors
            pages += 1
            if pages > self._settings.referrers_max_pages:
                raise RegistryError(
                    f"{first.what}: more than {self._settings.referrers_max_pages} pages of referrers",
                    code=Reason.REGISTRY_ERROR,
                )
            if origin(next_url) != origin(response.url):
                raise RegistryError(
                    f"{response.what}: refusing a referrers page on another host", code=Reason.REGISTRY_ERROR
                )
            response = self._call_url(
                "GET",
                repo,
                next_url,
                deadline=deadline,
                accept=MEDIA_OCI_INDEX,
                max_bytes=self._settings.manifest_max_bytes,
            )
            if response.status != 200 or not _is_index_answer(response):
                raise RegistryError(
                    f"{response.what}: {describe_status(response)} for a referrers page",
                    code=Reason.REGISTRY_ERROR,
                )

    def _fallback_referrers(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> list[Descriptor]:
        index = self._manifest_if_exists(repo, fallback_tag(digest), deadline=deadline)
        if index is None or index.media_type not in INDEX_MEDIA_TYPES:
            return []
        return self._index_entries(index.body, what=f"{repo.name}:{fallback_tag(digest)}")

    def _index_entries(self, body: bytes, *, what: str) -> list[Descriptor]:
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RegistryError(
                f"{what}: the referrers index is not valid JSON", code=Reason.REGISTRY_ERROR
            ) from None
        if not isinstance(document, dict):
            # Read as "no referrers", a garbled index would hide quarantine markers.
            raise RegistryError(
                f"{what}: the referrers index is not a JSON object", code=Reason.REGISTRY_ERROR
            )
        entries = document.get("manifests")
        # Go registries encode an empty list as null.
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise RegistryError(
                f"{what}: the referrers index has no 'manifests' list", code=Reason.REGISTRY_ERROR
            )
        if len(entries) > self._settings.referrers_max_entries:
            raise RegistryError(
                f"{what}: more than {self._settings.referrers_max_entries} referrers",
                code=Reason.REGISTRY_ERROR,
            )
        out = []
        for entry in entries:
            descriptor = Descriptor.from_json(entry)
            if descriptor is None:
                _logger.debug("%s: skipping a malformed or non-sha256 referrer entry", what)
                continue
            out.append(descriptor)
        return out

    # --- writing ---------------------------------------------------------------------------------

    def _push_blob(
        self, repo: ImageRef, data: bytes, *, deadline: Deadline, media_type: str = _OCTET
    ) -> Descriptor:
        """Upload ``data`` as a blob (monolithic POST + PUT); skipped when the registry has it.

        The returned descriptor carries ``media_type`` (a placeholder unless given).
        """
        digest = sha256_digest(data)
        descriptor = Descriptor(media_type=media_type, digest=digest, size=len(data))
        head = self._call("HEAD", repo, f"blobs/{digest}", deadline=deadline, max_bytes=0, push=True)
        if head.status == 200:
            return descriptor
        started = self._call("POST", repo, "blobs/uploads/", deadline=deadline, max_bytes=0, push=True)
        if started.status != 202:
            raise RegistryError(
                f"{started.what}: {describe_status(started)} starting a blob upload",
                code=Reason.REGISTRY_ERROR,
            )
        location = started.header("Location")
        if not location:
            raise RegistryError(
                f"{started.what}: blob upload started without a Location", code=Reason.REGISTRY_ERROR
            )
        upload_url = urljoin(started.url, location)
        if origin(upload_url) != origin(started.url):
            raise RegistryError(
                f"{started.what}: refusing a blob upload location on another host", code=Reason.REGISTRY_ERROR
            )
        parts = urlsplit(upload_url)
        query = f"{parts.query}&digest={quote(digest)}" if parts.query else f"digest={quote(digest)}"
        put_url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        finished = self._call_url(
            "PUT",
            repo,
            put_url,
            deadline=deadline,
            max_bytes=0,
            push=True,
            data=data,
            content_type=_OCTET,
        )
        if finished.status not in (201, 204):
            raise RegistryError(
                f"{finished.what}: {describe_status(finished)} finishing a blob upload",
                code=Reason.REGISTRY_ERROR,
            )
        return descriptor

    def _push_manifest(
        self, repo: ImageRef, body: bytes, media_type: str, *, deadline: Deadline, tag: str | None = None
    ) -> str:
        """Upload a manifest under ``tag`` (or by digest); returns its digest."""
        if len(body) > self._settings.manifest_max_bytes:
            raise RegistryError(
                f"manifest of {len(body)} bytes exceeds the limit of {self._settings.manifest_max_bytes}",
                code=Reason.REGISTRY_ERROR,
            )
        digest = sha256_digest(body)
        reference = tag if tag is not None else digest
        _check_reference(reference)
        response = self._call(
            "PUT",
            repo,
            f"manifests/{reference}",
            deadline=deadline,
            max_bytes=0,
            push=True,
            data=body,
            content_type=media_type,
        )
        if response.status not in (200, 201):
            raise RegistryError(
                f"{response.what}: {describe_status(response)} pushing a manifest", code=Reason.REGISTRY_ERROR
            )
        answered = (response.header("Docker-Content-Digest") or "").strip()
        if is_digest(answered) and answered != digest:
            raise RegistryError(
                f"{response.what}: the registry stored digest {answered}, expected {digest}",
                code=Reason.DIGEST_MISMATCH,
            )
        return digest

    def _delete_manifest(self, repo: ImageRef, digest: str, *, deadline: Deadline) -> None:
        """Delete the manifest ``digest``; one the registry does not know counts as deleted."""
        check_digest(digest)
        response = self._call(
            "DELETE", repo, f"manifests/{digest}", deadline=deadline, max_bytes=0, delete=True
        )
        if response.status in (200, 202, 204):
            return
        if response.status == 404:
            _logger.debug("%s: already gone", response.what)
            return
        hint = " (is deletion enabled in the registry?)" if response.status == 405 else ""
        raise RegistryError(
            f"{response.what}: {describe_status(response)} deleting a manifest{hint}",
            code=Reason.REGISTRY_ERROR,
        )

    # --- plumbing --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _observed(self, operation: str, repo: ImageRef) -> Iterator[None]:
        """Report the call to the observer and make sure only RegistryError leaves the client."""
        started = time.monotonic()
        code: str | None = None
        try:
            yield
        except RegistryError as error:
            code = error.code
            raise
        except Exception as error:
            # Fail closed with a clear error rather than letting an unexpected exception escape.
            code = Reason.REGISTRY_ERROR
            _logger.warning(
                "unexpected %s during registry %s", type(error).__name__, operation, exc_info=True
            )
            raise RegistryError(
                f"registry {operation} failed unexpectedly ({type(error).__name__})",
                code=Reason.REGISTRY_ERROR,
            ) from None
        finally:
            if self._observer is not None:
                registry = repo.registry if self._settings.host_allowed(repo.registry) else None
                self._observer(operation, registry, time.monotonic() - started, code)

    def _url(self, repo: ImageRef, path: str) -> str:
        netloc = _check_repo(repo)
        scheme = self._settings.scheme_for(netloc)
        return f"{scheme}://{netloc}/v2/{repo.repository}/{path}"

    def _call(self, method: str, repo: ImageRef, path: str, **options: Unpack[_CallOptions]) -> HttpResponse:
        """:meth:`_call_url` for ``path`` under the repository's ``/v2/<name>/``."""
        return self._call_url(method, repo, self._url(repo, path), **options)

    def _call_url(
        self,
        method: str,
        repo: ImageRef,
        url: str,
        *,
        deadline: Deadline,
        max_bytes: int,
        accept: str | None = None,
        redirects: int = 0,
        push: bool = False,
        delete: bool = False,
        data: bytes | None = None,
        content_type: str | None = None,
    ) -> HttpResponse:
        netloc = _check_repo(repo)
        actions = "delete" if delete else ("pull,push" if push else "pull")
        scope = f"repository:{repo.repository}:{actions}"
        headers: dict[str, str] = {}
        if accept is not None:
            headers["Accept"] = accept
        if content_type is not None:
            headers["Content-Type"] = content_type

        # The first request to a host learns how it authenticates; concurrent ones wait for that.
        def send(auth: dict[str, str]) -> HttpResponse:
            return self._transport.request(
                method,
                url,
                deadline=deadline,
                max_bytes=max_bytes,
                headers={**headers, **auth},
                data=data,
                redirects=redirects,
            )

        with self._auth.contact(netloc, deadline=deadline) as contact:
            response = send(
                self._auth.headers(registry=repo.registry, netloc=netloc, scope=scope, deadline=deadline)
            )
            contact.answered(response.status)
            if response.status == 401 and origin(response.url) != origin(url):
                # A redirect target (blob storage, not necessarily an allowed host) must not choose where
                # this registry's credentials go, nor replace the challenge remembered for the registry.
                raise RegistryError(
                    f"{response.what}: {describe_status(response)} (after a redirect)",
                    code=Reason.REGISTRY_ERROR,
                )
            if response.status == 401:
                response = send(
                    self._auth.on_unauthorized(
                        response, registry=repo.registry, netloc=netloc, scope=scope, deadline=deadline
                    )
                )
                if response.status == 401:
                    raise self._auth.unauthorized(response, registry=repo.registry)
        if response.status == 403:
            raise self._auth.unauthorized(response, registry=repo.registry)
        return response


def _check_repo(repo: ImageRef) -> str:
    """The API host of ``repo``, after re-checking names that end up in URLs."""
    netloc = repo.api_host
    if not _HOST_RE.fullmatch(netloc) or not _REPOSITORY_RE.fullmatch(repo.repository):
        raise RegistryError(
            f"invalid repository {repo.registry[:80]!r}/{repo.repository[:200]!r}", code=Reason.REGISTRY_ERROR
        )
    return netloc


def _check_reference(reference: str) -> None:
    if not (is_digest(reference) or _TAG_RE.fullmatch(reference)):
        raise RegistryError(f"invalid tag or digest {reference[:140]!r}", code=Reason.REGISTRY_ERROR)


def _display(repo: ImageRef, reference: str) -> str:
    separator = "@" if is_digest(reference) else ":"
    return f"{repo.name}{separator}{reference}"


def _verified_manifest(response: HttpResponse, *, repo: ImageRef, reference: str) -> Manifest:
    digest = sha256_digest(response.body)
    if is_digest(reference) and digest != reference:
        raise RegistryError(
            f"{_display(repo, reference)}: the registry served content with digest {digest}",
            code=Reason.DIGEST_MISMATCH,
        )
    answered = (response.header("Docker-Content-Digest") or "").strip()
    if is_digest(answered) and answered != digest:
        raise RegistryError(
            f"{_display(repo, reference)}: Docker-Content-Digest {answered} does not match "
            f"the content ({digest})",
            code=Reason.DIGEST_MISMATCH,
        )
    media_type = _manifest_media_type(response.content_type, response.body)
    return Manifest(digest=digest, media_type=media_type, body=response.body)


def _manifest_media_type(content_type: str, body: bytes) -> str:
    """What the verified ``body`` is, which its digest vouches for; the Content-Type header only fills in.

    A body that lists ``manifests`` is an index, whatever the header or its own ``mediaType`` says (an
    OCI index need not name its type): a registry that labels an index as an image manifest must not
    hide what it lists from the quarantine. Otherwise the body's own known ``mediaType`` decides, then
    the header.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        document = None
    declared = document.get("mediaType") if isinstance(document, dict) else None
    declared = declared if isinstance(declared, str) else None
    if isinstance(document, dict) and "manifests" in document:
        if declared in INDEX_MEDIA_TYPES:
            return str(declared)
        return content_type if content_type in INDEX_MEDIA_TYPES else MEDIA_OCI_INDEX
    if declared in MANIFEST_MEDIA_TYPES or content_type not in MANIFEST_MEDIA_TYPES:
        return declared or content_type
    return content_type


def _is_index_answer(response: HttpResponse) -> bool:
    if response.content_type in INDEX_MEDIA_TYPES:
        return True
    if response.content_type not in ("application/json", ""):
        return False
    try:
        document = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(document, dict) and isinstance(document.get("manifests"), list)


def _next_link(response: HttpResponse) -> str | None:
    header = response.header("Link")
    if not header:
        return None
    for link in requests.utils.parse_header_links(header):
        if link.get("rel", "").lower() == "next" and link.get("url"):
            return urljoin(response.url, link["url"])
    return None
