"""Registry authentication: Basic and Bearer-token flows driven by the registry's WWW-Authenticate challenge.

The first request to a registry goes out anonymously; a 401 tells which scheme the registry wants.
That challenge is remembered per host so later requests authenticate up front. Bearer tokens are
fetched from the challenge's ``realm`` (which must be an allowed host over HTTPS, or plain HTTP to a
host in ``insecure``), with the registry's credentials when the dockerconfigjson has them, and are
cached per (host, scope) until shortly before ``expires_in`` (60 s when absent) runs out.
Credentials and tokens never appear in logs or error messages.

Concurrent requests (one admission's lookups run at the same time) share that work: while the first
request to a host is under way, the others to that host wait for it (:meth:`Authenticator.contact`)
and then authenticate up front, and requests that need the same token wait for one fetch of it. A
first contact therefore costs one 401 per host and one token round trip per scope, however many
requests it starts with. A waiting request is bound by its own deadline, and when the request it
waited for failed, it makes its own attempt.
"""

from __future__ import annotations

__all__ = ["Authenticator", "Challenge", "Contact", "parse_challenge"]

import json
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from urllib.parse import urlencode, urlsplit, urlunsplit

from webhook.cache import SingleFlightCache
from webhook.deadline import Deadline
from webhook.errors import RegistryError
from webhook.reasons import Reason
from webhook.registry.credentials import BasicCredentials
from webhook.registry.transport import DeadlineExceeded, HttpResponse, Transport, describe_status

_logger = logging.getLogger(__name__)

_PARAM_RE = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')
_DEFAULT_EXPIRES_IN = 60.0
_MAX_TOKENS = 1024
_MAX_HOSTS = 1024
_TOKEN_CHARS_RE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` challenge; ``scheme`` is lower-case (``basic`` or ``bearer``)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def parse_challenge(header: str) -> Challenge | None:
    """Parse ``Bearer realm="...",service="...",scope="..."`` or ``Basic realm="..."``.

    Returns None for schemes imagegate does not speak. Quoted values may contain commas (scopes do).
    """
    match = re.match(r"\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+(.*))?$", header, re.DOTALL)
    if match is None:
        return None
    scheme = match.group(1).lower()
    if scheme not in ("basic", "bearer"):
        return None
    rest = match.group(2) or ""
    params: dict[str, str] = {}
    position = 0
    while position < len(rest):
        param = _PARAM_RE.match(rest, position)
        if param is None or param.end() == position:
            break
        quoted, bare = param.group(2), param.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(param.group(1).lower(), value)
        position = param.end()
    return Challenge(scheme=scheme, params=MappingProxyType(params))


class Contact:
    """One request's turn at a host (see :meth:`Authenticator.contact`); tell it the answer's status."""

    def __init__(self, owner: Authenticator | None, netloc: str, event: threading.Event | None) -> None:
        self._owner = owner
        self._netloc = netloc
        self._event = event
        self._reached = False

    def answered(self, status: int) -> None:
        """The host answered ``status``. A 401 (its challenge is now known) or a success (it needs no
        credentials for this) tells how it authenticates; others then go ahead without waiting. Any
        other answer (a 404 of a path the registry does not route, a 5xx) tells nothing: the next
        waiting request takes its turn."""
        if status == 401 or status < 400:
            self._reached = True

    def __enter__(self) -> Contact:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owner is not None and self._event is not None:
            self._owner._contacted(self._netloc, self._event, reached=self._reached)


class Authenticator:
    """Produces ``Authorization`` headers for registry requests; thread-safe."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._settings = transport.settings
        self._lock = threading.Lock()
        self._challenges: dict[str, Challenge] = {}
        self._tokens: dict[tuple[str, str], tuple[str, float]] = {}
        self._reached: set[str] = set()
        self._first: dict[str, threading.Event] = {}
        # Token fetches under way, shared by the requests that need the same token (nothing is kept).
        self._fetches: SingleFlightCache[tuple[str, float]] = SingleFlightCache(
            name="token", maxsize=_MAX_TOKENS, ttl=0.0
        )

    def contact(self, netloc: str, *, deadline: Deadline) -> Contact:
        """Wait while another request makes the first contact with ``netloc``; use as a context manager.

        The request that makes the first contact gets a :class:`Contact` that lets the waiting ones go
        on when it ends (after its 401, token and retry). Once a host's answer told how it
        authenticates (:meth:`Contact.answered`), this returns at once.

        Raises:
            DeadlineExceeded: the deadline passed while waiting.
        """
        while True:
            with self._lock:
                if netloc in self._reached:
                    return Contact(None, netloc, None)
                event = self._first.get(netloc)
                if event is None:
                    event = self._first[netloc] = threading.Event()
                    return Contact(self, netloc, event)
            if not event.wait(deadline.remaining()):
                raise DeadlineExceeded(
                    f"registry {netloc}: timed out waiting for the first request to it to be answered"
                )
            # Answered, or the first request failed: then this one may make the first contact itself.

    def _contacted(self, netloc: str, event: threading.Event, *, reached: bool) -> None:
        with self._lock:
            if reached:
                if len(self._reached) >= _MAX_HOSTS:
                    self._reached.clear()
                self._reached.add(netloc)
            if self._first.get(netloc) is event:
                del self._first[netloc]
        event.set()

    def headers(self, *, registry: str, netloc: str, scope: str, deadline: Deadline) -> dict[str, str]:
        """Headers for a request to ``netloc`` needing ``scope``, from what earlier challenges taught.

        Args:
            registry: the registry as :attr:`ImageRef.registry` spells it (selects the credentials).
            netloc: the API host the request goes to.
            scope: e.g. ``repository:acme/app:pull``.
        """
        with self._lock:
            challenge = self._challenges.get(netloc)
        if challenge is None:
            return {}
        credentials = self._settings.credentials.for_registry(registry)
        if challenge.scheme == "basic":
            return {"Authorization": credentials.header()} if credentials is not None else {}
        return self._bearer(
            challenge, registry=registry, netloc=netloc, scope=scope, deadline=deadline, fresh=False
        )

    def on_unauthorized(
        self, response: HttpResponse, *, registry: str, netloc: str, scope: str, deadline: Deadline
    ) -> dict[str, str]:
        """Headers to retry a request the registry answered 401, following its challenge.

        Raises:
            RegistryError: no usable challenge, no credentials for a Basic challenge, or the token
                server refused.
        """
        header = response.header("WWW-Authenticate") or ""
        challenge = parse_challenge(header)
        if challenge is None:
            raise RegistryError(
                f"{response.what}: HTTP 401 Unauthorized without a supported authentication challenge",
                code=Reason.REGISTRY_ERROR,
            )
        with self._lock:
            self._challenges[netloc] = challenge
            # The token we sent (if any) was not good enough for this request.
            self._tokens.pop((netloc, scope), None)
        credentials = self._settings.credentials.for_registry(registry)
        if challenge.scheme == "basic":
            if credentials is None:
                raise RegistryError(
                    f"{response.what}: HTTP 401 Unauthorized: the registry requires credentials and "
                    f"registries.credentialsFile has none for {registry}",
                    code=Reason.REGISTRY_ERROR,
                )
            return {"Authorization": credentials.header()}
        return self._bearer(
            challenge, registry=registry, netloc=netloc, scope=scope, deadline=deadline, fresh=True
        )

    def unauthorized(self, response: HttpResponse, *, registry: str) -> RegistryError:
        """The error for a request still answered 401/403 after authenticating."""
        credentials = self._settings.credentials.for_registry(registry)
        who = "the configured credentials were" if credentials is not None else "anonymous access was"
        return RegistryError(
            f"{response.what}: {describe_status(response)}: {who} not accepted for {registry}",
            code=Reason.REGISTRY_ERROR,
        )

    def _bearer(
        self, challenge: Challenge, *, registry: str, netloc: str, scope: str, deadline: Deadline, fresh: bool
    ) -> dict[str, str]:
        now = time.monotonic()
        if not fresh:
            with self._lock:
                cached = self._tokens.get((netloc, scope))
            if cached is not None and cached[1] > now:
                return {"Authorization": f"Bearer {cached[0]}"}
        # A fresh challenge lists exactly what this request needs. A remembered one was about another
        # request (maybe another repository): then ask for the scope computed for this request.
        wanted = (challenge.params.get("scope") if fresh else None) or scope
        token, expires_in = self._shared_fetch(
            challenge, registry=registry, netloc=netloc, wanted=wanted, deadline=deadline
        )
        # Renew a little early so a token does not expire between our check and the registry's.
        lifetime = max(0.0, expires_in - min(10.0, expires_in * 0.1))
        with self._lock:
            if len(self._tokens) >= _MAX_TOKENS:
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
                if len(self._tokens) >= _MAX_TOKENS:
                    self._tokens.clear()
            self._tokens[(netloc, scope)] = (token, time.monotonic() + lifetime)
        return {"Authorization": f"Bearer {token}"}

    def _shared_fetch(
        self, challenge: Challenge, *, registry: str, netloc: str, wanted: str, deadline: Deadline
    ) -> tuple[str, float]:
        """One token fetch for all the requests that want the same scopes of ``netloc`` at the same time."""
        while True:
            ran = False

            def fetch() -> tuple[str, float]:
                nonlocal ran
                ran = True
                return self._fetch_token(
                    challenge, registry=registry, netloc=netloc, wanted=wanted, deadline=deadline
                )

            try:
                return self._fetches.get_or_load((netloc, wanted), fetch, wait=deadline.remaining())
            except TimeoutError:
                raise DeadlineExceeded(
                    f"registry {netloc}: timed out waiting for a token another request asked for"
                ) from None
            except DeadlineExceeded:
                # Another request's deadline ended its fetch: this one asks again while its own allows.
                if ran or deadline.expired():
                    raise

    def _fetch_token(
        self, challenge: Challenge, *, registry: str, netloc: str, wanted: str, deadline: Deadline
    ) -> tuple[str, float]:
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if not realm or not parts.scheme or not parts.netloc:
            raise RegistryError(
                f"registry {netloc} sent a Bearer challenge without a usable realm",
                code=Reason.REGISTRY_ERROR,
            )
        service = challenge.params.get("service")
        params: list[tuple[str, str]] = []
        if service:
            params.append(("service", service))
        for item in wanted.split(" "):
            if item:
                params.append(("scope", item))
        encoded = urlencode(params)
        full_query = f"{parts.query}&{encoded}" if parts.query and encoded else (parts.query or encoded)
        url = urlunsplit((parts.scheme, parts.netloc, parts.path or "/", full_query, ""))
        credentials: BasicCredentials | None = self._settings.credentials.for_registry(registry)
        headers = {"Authorization": credentials.header()} if credentials is not None else {}
        try:
            response = self._transport.request(
                "GET", url, deadline=deadline, max_bytes=self._settings.token_max_bytes, headers=headers
            )
        except RegistryError as error:
            if error.code == Reason.REGISTRY_NOT_ALLOWED:
                raise RegistryError(
                    f"registry {netloc} points to token realm {parts.scheme}://{parts.netloc}: "
                    f"{error.user_message}",
                    code=Reason.REGISTRY_NOT_ALLOWED,
                ) from None
            raise
        if response.status in (401, 403):
            who = "the configured credentials" if credentials is not None else "an anonymous token request"
            raise RegistryError(
                f"{response.what}: {describe_status(response)}: the token server refused {who}",
                code=Reason.REGISTRY_ERROR,
            )
        if response.status != 200:
            raise RegistryError(
                f"{response.what}: {describe_status(response)} from the token server",
                code=Reason.REGISTRY_ERROR,
            )
        return _parse_token(response)


def _parse_token(response: HttpResponse) -> tuple[str, float]:
    try:
        document = json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(
            f"{response.what}: the token server answered something that is not JSON",
            code=Reason.REGISTRY_ERROR,
        ) from None
    if not isinstance(document, dict):
        raise RegistryError(
            f"{response.what}: the token server answer is not a JSON object", code=Reason.REGISTRY_ERROR
        )
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not _TOKEN_CHARS_RE.fullmatch(token):
        raise RegistryError(
            f"{response.what}: the token server answer has no usable token", code=Reason.REGISTRY_ERROR
        )
    expires_in = document.get("expires_in", _DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        expires_in = _DEFAULT_EXPIRES_IN
    _logger.debug("%s issued a token valid for %ss", response.what, expires_in)
    return token, float(expires_in)
