"""HTTP: the Flask app factory. Routes translate HTTP <-> service calls and hold no logic.

Every answer to ``/mutate`` and ``/validate`` is either an AdmissionReview (HTTP 200, a decision) or
a JSON error with a 4xx status for a request that is not a well-formed AdmissionReview. Nothing
answers 500: an unexpected error on a decision path is a denial (``allowed: false``).

The two decision routes are what the API server calls on every pod, so a ``POST`` to them whose body
the server has already read in full (``BODY_KEY`` in the WSGI environ, set by
:mod:`webhook.serving.connection`) is answered in front of Flask: the same answer, status and headers,
without Flask's request context, URL matching and response object (about a fifth of an admission's
CPU). Every other request, including a decision route's body that did not come in full or at all (too
large, cut short, or a server that does not set the key), goes through Flask as before.
"""

from __future__ import annotations

__all__ = ["create_app"]

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from webhook._json import compact_json, nested_deeper_than
from webhook.admission.response import error_response
from webhook.decision import Stage
from webhook.errors import BadRequest
from webhook.metrics import Metrics
from webhook.reasons import Reason
from webhook.service import AdmissionService
from webhook.serving.connection import BODY_KEY
from webhook.settings import Settings

_logger = logging.getLogger(__name__)

_DECISION_PATHS: dict[str, Stage] = {"/mutate": "mutate", "/validate": "validate"}
_JSON_HEADER = ("Content-Type", "application/json")
# Arrays and objects one inside another: Kubernetes objects, managedFields included, nest a few dozen deep.
_MAX_NESTING = 512

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app(
    *,
    settings: Settings,
    service: AdmissionService,
    metrics: Metrics,
    ready: Callable[[], bool],
) -> Flask:
    """Build the WSGI app. ``ready()`` says whether a valid policy has ever loaded."""
    app = Flask("imagegate")
    limit = settings.max_request_bytes
    # One byte more than the limit: a body without Content-Length (chunked) can only be measured by
    # reading it, and werkzeug stops reading at MAX_CONTENT_LENGTH without saying whether more followed.
    # Reading one byte past the limit tells "exactly at the limit" from "over it".
    app.config["MAX_CONTENT_LENGTH"] = limit + 1
    too_large = f"request body is larger than {limit} bytes"
    nested = f"request body is nested too deeply (more than {_MAX_NESTING} arrays and objects)"

    def answer(raw: bytes, stage: Stage) -> tuple[int, bytes]:
        """The status and JSON body answering a decision route's request body ``raw``."""
        if len(raw) > limit:
            return _error_body(metrics, 413, too_large)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error_body(metrics, 400, "request body is not valid JSON")
        except RecursionError:
            # Nesting deeper than the parser's recursion limit: no AdmissionReview looks like that.
            return _error_body(metrics, 400, nested)
        # The parser's limit depends on how deep the stack already is (Flask's routes call this from
        # deeper than the front does): a fixed one says the same for the same body on either path.
        # A body with fewer openers than the limit cannot nest deeper: most are not walked.
        if raw.count(b"[") + raw.count(b"{") > _MAX_NESTING and nested_deeper_than(body, _MAX_NESTING):
            return _error_body(metrics, 400, nested)
        try:
            outcome = service.admit(body, stage=stage)
        except BadRequest as error:
            return _error_body(metrics, 400, error.user_message)
        return 200, compact_json(outcome.review).encode()

    def admit(stage: Stage) -> Response:
        status, payload = answer(request.get_data(cache=True), stage)
        return Response(payload, status=status, content_type="application/json")

    @app.post("/mutate")
    def mutate() -> Response:
        return admit("mutate")

    @app.post("/validate")
    def validate() -> Response:
        return admit("validate")

    @app.get("/healthz")
    def healthz() -> Response:
        return _json(200, {"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        if ready():
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "no valid policy loaded"})

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        return Response(metrics.exposition(), status=200, content_type=metrics.content_type)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        code = error.code or 400
        if code == 413:  # werkzeug's words name no size: say the one answer() says
            return _error(metrics, code, too_large)
        return _error(metrics, code, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        _logger.exception("unexpected error on %s %s", request.method, request.path)
        if request.path in _DECISION_PATHS:
            return Response(_internal_error(request.get_data(cache=True)), content_type="application/json")
        return _error(metrics, 400, "request could not be processed")

    app.wsgi_app = _DecisionRoutes(app.wsgi_app, answer)  # type: ignore[method-assign]
    return app


class _DecisionRoutes:
    """WSGI middleware: a decision route's ``POST`` with a body the server read in full, answered directly.

    What it answers is what the Flask routes answer (they call the same ``answer``), with Flask's
    headers (``Content-Type``, ``Content-Length``); an unexpected error is the same fail-closed denial
    as Flask's error handler gives. Anything else is passed to ``app`` (Flask's ``wsgi_app``).
    """

    __slots__ = ("_answer", "_app")

    def __init__(self, app: WSGIApp, answer: Callable[[bytes, Stage], tuple[int, bytes]]) -> None:
        self._app = app
        self._answer = answer

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw = environ.get(BODY_KEY)
        stage = _DECISION_PATHS.get(environ.get("PATH_INFO", ""))
        if stage is None or type(raw) is not bytes or environ.get("REQUEST_METHOD") != "POST":
            return self._app(environ, start_response)
        try:
            status, payload = self._answer(raw, stage)
        except Exception:
            _logger.exception("unexpected error on POST %s", environ["PATH_INFO"])
            status, payload = 200, _internal_error(raw)
        start_response(_status_line(status), [_JSON_HEADER, ("Content-Length", str(len(payload)))])
        return [payload]


def _status_line(status: int) -> str:
    """The status line werkzeug writes for ``status`` (``400 BAD REQUEST``)."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"{status} {HTTP_STATUS_CODES[status].upper()}"
    return line


_STATUS_LINES = {200: "200 OK"}


def _internal_error(raw: bytes) -> bytes:
    """The denial answering a decision request that failed unexpectedly (fail closed, never a 500)."""
    return compact_json(
        error_response(
            uid=_uid_of(raw),
            code=Reason.INTERNAL_ERROR,
            message="imagegate could not evaluate this request; see the webhook logs",
        )
    ).encode()


def _uid_of(raw: bytes) -> str:
    try:
        uid = json.loads(raw)["request"]["uid"]
    except Exception:
        return ""
    return uid if isinstance(uid, str) else ""


def _json(status: int, payload: object) -> Response:
    return Response(compact_json(payload), status=status, content_type="application/json")


def _error(metrics: Metrics, status: int, message: str) -> Response:
    status, payload = _error_body(metrics, status, message)
    return Response(payload, status=status, content_type="application/json")


def _error_body(metrics: Metrics, status: int, message: str) -> tuple[int, bytes]:
    metrics.bad_request(status)
    return status, compact_json({"error": message, "status": status}).encode()
