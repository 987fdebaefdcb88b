"""The decision routes answered in front of Flask give exactly Flask's answers.

``POST /mutate`` and ``POST /validate`` with a body the server read in full (``BODY_KEY`` in the environ,
as the serving front sets it) skip Flask's per-request machinery. Each request here is sent twice to the
same app, once with the key and once without (through Flask's routes and error handlers), and the two
answers must be identical: status line, headers, body, and the metrics they count.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.support.reviews import review
from webhook.app import create_app
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.metrics import Metrics
from webhook.policy.model import Policy, Registries, Rule, Tags
from webhook.service import AdmissionService
from webhook.serving.connection import BODY_KEY
from webhook.settings import Settings

DIGEST = "sha256:" + "d" * 64
LIMIT = 64 * 1024
POLICY = Policy(
    name="routes",
    source="p.yaml",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    rules=(Rule(name="all", images=("ghcr.io/**",)),),
    fingerprint="f" * 64,
)


def _gather(plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
    return ImageFacts(digest=DIGEST)


@dataclass
class _Runtime:
    def current(self) -> tuple[Policy, Any]:
        return POLICY, _gather


class _Exploding(AdmissionService):
    def admit(self, body: object, *, stage: str):  # type: ignore[no-untyped-def, override]
        raise RuntimeError("unexpected")


def _app(service_class: type[AdmissionService] = AdmissionService) -> tuple[Flask, Metrics]:
    settings = Settings(audit_log=False, max_request_bytes=LIMIT)
    service = service_class(
        settings=settings, runtime=_Runtime(), clock=lambda: datetime(2026, 12, 5, tzinfo=UTC)
    )
    metrics = Metrics()
    return create_app(settings=settings, service=service, metrics=metrics, ready=lambda: True), metrics


@dataclass(frozen=True)
class Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes


def _send(app: Flask, *, method: str, path: str, body: bytes, fast: bool) -> Answer:
    environ = EnvironBuilder(
        method=method, path=path, data=body, content_type="application/json"
    ).get_environ()
    if fast:
        environ[BODY_KEY] = body
    app_iter, status, headers = run_wsgi_app(app, environ)
    try:
        payload = b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return Answer(status, list(headers.items()), payload)


def _bad_requests(metrics: Metrics) -> dict[str, float]:
    return {
        sample.labels["code"]: sample.value
        for family in metrics.bad_requests.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }


def _twice(body: bytes, *, path: str = "/validate", method: str = "POST") -> tuple[Answer, Answer]:
    """The answer through Flask and the answer in front of it, each from a fresh app, with their metrics."""
    answers = []
    counted = []
    for fast in (False, True):
        app, metrics = _app()
        answers.append(_send(app, method=method, path=path, body=body, fast=fast))
        counted.append(_bad_requests(metrics))
    assert counted[0] == counted[1]
    return answers[0], answers[1]


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


BODIES = {
    "admitted": _json(review("Pod", [f"ghcr.io/acme/app@{DIGEST}"], uid="u-1")),
    "tag resolved": _json(review("Deployment", ["ghcr.io/acme/app:1.0"], uid="u-2")),
    "tag denied": _json(review("Pod", ["ghcr.io/acme/app:latest"], uid="u-3")),
    "unmatched registry": _json(review("Pod", ["quay.io/acme/app:1"], uid="u-4")),
    "not JSON": b"{not json",
    "not UTF-8": b'{"a": "\xff\xfe"}',
    "empty": b"",
    "an array": b"[]",
    "no request": _json({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}),
    "nested too deeply": b'{"request":' + b"[" * 20_000 + b"]" * 20_000 + b"}",
    "malformed object": _json(
        {**review("Pod", ["ghcr.io/a/b:1"]), "request": {**review("Pod", [])["request"], "object": []}}
    ),
    "at the limit": b" " * (LIMIT - 2) + b"{}",
    "over the limit": b" " * (LIMIT - 1) + b"{}",
    "far over the limit": b" " * (4 * LIMIT) + b"{}",
}


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
@pytest.mark.parametrize("name", list(BODIES))
def test_in_front_of_flask_the_answer_is_flasks(name: str, path: str) -> None:
    through_flask, in_front = _twice(BODIES[name], path=path)
    assert in_front == through_flask
    assert in_front.status.split()[0] in ("200", "400", "413")


def test_the_answers_compared_are_decisions_and_refusals() -> None:
    # The comparison above would pass for two identical wrong answers: pin what they are.
    statuses = {name: _twice(body)[1].status for name, body in BODIES.items()}
    assert statuses["admitted"] == "200 OK"
    assert statuses["not JSON"] == statuses["nested too deeply"] == "400 BAD REQUEST"
    assert statuses["over the limit"] == statuses["far over the limit"] == "413 REQUEST ENTITY TOO LARGE"
    assert json.loads(_twice(BODIES["far over the limit"])[0].body) == {
        "error": f"request body is larger than {LIMIT} bytes",
        "status": 413,
    }
    assert statuses["at the limit"] == "400 BAD REQUEST"  # read in full: "{}" is no AdmissionReview
    mutated = json.loads(_twice(BODIES["tag resolved"], path="/mutate")[1].body)["response"]
    operations = json.loads(base64.b64decode(mutated["patch"]))
    assert mutated["allowed"] is True and any(DIGEST in str(op.get("value")) for op in operations)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/validate"),  # 405
        ("HEAD", "/mutate"),  # 405
        ("PUT", "/validate"),  # 405
        ("POST", "/validate/"),  # 404: the routes have no trailing slash
        ("POST", "/Validate"),  # 404
        ("POST", "/healthz"),  # 405
        ("GET", "/healthz"),
    ],
)
def test_other_requests_go_through_flask(method: str, path: str) -> None:
    through_flask, in_front = _twice(BODIES["admitted"], path=path, method=method)
    assert in_front == through_flask
    if path != "/healthz" or method != "GET":
        assert in_front.status.split()[0] in ("404", "405")


def test_a_body_that_is_not_bytes_goes_through_flask() -> None:
    app, _ = _app()
    body = BODIES["admitted"]
    environ = EnvironBuilder(method="POST", path="/validate", data=body).get_environ()
    environ[BODY_KEY] = "not bytes"  # a server that sets the key wrongly: the body is read from wsgi.input
    app_iter, status, _ = run_wsgi_app(app, environ)
    assert status == "200 OK"
    assert json.loads(b"".join(app_iter))["response"]["uid"] == "u-1"


def test_the_key_is_the_body_read_not_wsgi_input() -> None:
    # In front of Flask the body is the key's: a server sets it only when it read the body in full.
    app, _ = _app()
    environ = EnvironBuilder(method="POST", path="/validate", data=b"").get_environ()
    environ[BODY_KEY] = BODIES["admitted"]
    environ["wsgi.input"] = io.BytesIO(b"garbage")
    app_iter, status, _ = run_wsgi_app(app, environ)
    assert status == "200 OK" and json.loads(b"".join(app_iter))["response"]["uid"] == "u-1"


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_an_unexpected_error_is_the_same_denial_either_way(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    body = BODIES["admitted"]
    answers = []
    for fast in (False, True):
        app, _ = _app(_Exploding)
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="webhook.app"):
            answers.append(_send(app, method="POST", path=path, body=body, fast=fast))
        assert any(r.exc_info and "unexpected" in str(r.exc_info[1]) for r in caplog.records)
    assert answers[0] == answers[1]
    assert answers[1].status == "200 OK"  # never a 500
    response = json.loads(answers[1].body)["response"]
    assert response["uid"] == "u-1" and response["allowed"] is False
    assert "[internal-error]" in response["status"]["message"]


def _nested(depth: int) -> bytes:
    """An admissible review carrying, in a field no check reads, a list nested ``depth`` deep."""
    admitted = BODIES["admitted"]
    return admitted[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"


def _refused_as_nested(answer: Answer) -> bool:
    return answer.status == "400 BAD REQUEST" and b"nested too deeply" in answer.body


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_the_nesting_flask_refuses_is_refused_in_front_of_it_too(path: str) -> None:
    # Where "nested too deeply" begins must not depend on the route taken: a body Flask refuses for its
    # nesting is refused in front of Flask too, not decided on.
    def through_flask(depth: int) -> Answer:
        return _send(_app()[0], method="POST", path=path, body=_nested(depth), fast=False)

    low, high = 1, sys.getrecursionlimit() + 1  # admitted at low, refused at high
    assert not _refused_as_nested(through_flask(low)) and _refused_as_nested(through_flask(high))
    while high - low > 1:
        middle = (low + high) // 2
        if _refused_as_nested(through_flask(middle)):
            high = middle
        else:
            low = middle
    refused = through_flask(high)  # the least nesting Flask refuses
    in_front = _send(_app()[0], method="POST", path=path, body=_nested(high), fast=True)
    assert in_front == refused


@pytest.mark.parametrize("fast", [False, True])
def test_the_nesting_limit_is_a_fixed_depth(fast: bool) -> None:
    # 512 arrays and objects in all (the review's own object plus the list) are admitted; one more is not.
    outer = 1  # the review object the list sits in
    admitted = _send(_app()[0], method="POST", path="/validate", body=_nested(512 - outer), fast=fast)
    refused = _send(_app()[0], method="POST", path="/validate", body=_nested(513 - outer), fast=fast)
    assert admitted.status == "200 OK" and json.loads(admitted.body)["response"]["allowed"] is True
    assert _refused_as_nested(refused)
    assert json.loads(refused.body)["error"] == (
        "request body is nested too deeply (more than 512 arrays and objects)"
    )
