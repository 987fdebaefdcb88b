"""HTTP: the Flask app factory. Routes translate HTTP <-> service calls and hold no logic.

Every answer to ``/mutate`` and ``/validate`` is either an AdmissionReview (HTTP 200, a decision) or
a JSON error with a 4xx status for a request that is not a well-formed AdmissionReview. Nothing
answers 500: an unexpected error on a decision path is a denial (``allowed: false``).
"""

from __future__ import annotations

__all__ = ["create_app"]

import json
import logging
from collections.abc import Callable

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from webhook._json import compact_json
from webhook.admission.response import error_response
from webhook.errors import BadRequest
from webhook.metrics import Metrics
from webhook.reasons import Reason
from webhook.service import AdmissionService
from webhook.settings import Settings

_logger = logging.getLogger(__name__)

_DECISION_PATHS = {"/mutate": "mutate", "/validate": "validate"}


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

    def admit(stage: str) -> Response:
        raw = request.get_data(cache=True)
        if len(raw) > limit:
            return _error(metrics, 413, f"request body is larger than {limit} bytes")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _error(metrics, 400, "request body is not valid JSON")
        except RecursionError:
            # Nesting deeper than the parser's recursion limit: no AdmissionReview looks like that.
            return _error(metrics, 400, "request body is nested too deeply")
        try:
            outcome = service.admit(body, stage="mutate" if stage == "mutate" else "validate")
        except BadRequest as error:
            return _error(metrics, 400, error.user_message)
        return _json(200, outcome.review)

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
        return _error(metrics, code, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        _logger.exception("unexpected error on %s %s", request.method, request.path)
        if request.path in _DECISION_PATHS:
            return _json(
                200,
                error_response(
                    uid=_uid_of(request.get_data(cache=True)),
                    code=Reason.INTERNAL_ERROR,
                    message="imagegate could not evaluate this request; see the webhook logs",
                ),
            )
        return _error(metrics, 400, "request could not be processed")

    return app


def _uid_of(raw: bytes) -> str:
    try:
        uid = json.loads(raw)["request"]["uid"]
    except Exception:
        return ""
    return uid if isinstance(uid, str) else ""


def _json(status: int, payload: object) -> Response:
    return Response(compact_json(payload), status=status, content_type="application/json")


def _error(metrics: Metrics, status: int, message: str) -> Response:
    metrics.bad_request(status)
    return _json(status, {"error": message, "status": status})
