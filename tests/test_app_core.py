"""End to end over real HTTPS: `imagegate serve` under gunicorn, AdmissionReviews POSTed like the API server.

These policies need no registry: images are digest-pinned or denied before any network access. (They
have no quarantine list: with one, every governed digest is read to see whether it is an index whose
manifests are quarantined; tests/test_app_quarantine.py covers quarantine.)
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.reviews import review
from tests.support.server import Server, running_server
from webhook.settings import Settings
from webhook.times import parse_rfc3339

pytestmark = pytest.mark.e2e

DIGEST = "sha256:" + "a" * 64

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: e2e-core}
spec:
  mode: enforce
  unmatched: deny
  registries:
    allow: [docker.io, ghcr.io, "127.0.0.1:9"]
  tags:
    resolve: true
    deny: [latest]
  exemptions:
    - images: ["ghcr.io/acme/breakglass@%(digest)s"]
      namespaces: ["ops-*"]
      expires: "2099-01-01T00:00:00Z"
      reason: "INC-1234 hotfix"
    - images: ["*/acme/debug"]
      namespaces: ["ops-*"]
      expires: "2099-01-01T00:00:00Z"
      reason: "INC-1235 debugging"
  rules:
    - name: acme
      images: ["ghcr.io/acme/**"]
    - name: hub
      images: ["docker.io/library/*"]
    - name: dev-signed
      images: ["127.0.0.1:9/**"]
      namespaces: ["dev-*"]
      mode: warn
      signatures:
        signers:
          - key: {name: release}
""".replace("%(digest)s", DIGEST)


def _write_policy(directory: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    (directory / "release.pub").write_bytes(
        key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    policy = POLICY.replace(
        "  exemptions:\n", "  trust:\n    keys: [{name: release, file: release.pub}]\n  exemptions:\n"
    )
    (directory / "policy.yaml").write_text(policy)
    return directory / "policy.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("core")
    with running_server(directory, _write_policy(directory)) as running:
        yield running


def test_latest_is_denied_with_reason_code_and_rule(server: Server) -> None:
    body = review("Deployment", ["ghcr.io/acme/app:latest"], namespace="prod")
    for path in ("/mutate", "/validate"):
        response = server.admit(path, body)
        assert response["allowed"] is False
        assert response["status"]["code"] == 403
        assert response["status"]["message"] == (
            'container "app" image "ghcr.io/acme/app:latest": [tag-denied] '
            'tag "latest" is mutable and not allowed (rule acme)'
        )
        assert "patch" not in response


def test_pinned_image_is_allowed_without_patch(server: Server) -> None:
    body = review("Pod", [f"ghcr.io/acme/app:1.0@{DIGEST}"], init_images=[f"nginx@{DIGEST}"])
    for path in ("/mutate", "/validate"):
        response = server.admit(path, body)
        assert response["allowed"] is True
        assert "patch" not in response
        assert "status" not in response
        images = json.loads(response["auditAnnotations"]["images"])
        assert [i["outcome"] for i in images] == ["admitted", "admitted"]
        assert images[0]["digest"] == DIGEST


def test_registry_outside_allowlist_and_unmatched(server: Server) -> None:
    body = review("CronJob", [f"evil.example.com/acme/app@{DIGEST}", f"ghcr.io/other/app@{DIGEST}"])
    response = server.admit("/validate", body)
    assert response["allowed"] is False
    lines = response["status"]["message"].splitlines()
    assert len(lines) == 2
    assert "[registry-not-allowed]" in lines[0] and "evil.example.com" in lines[0]
    assert "[unmatched]" in lines[1]


def test_unpinned_governed_image_at_validate_is_not_pinned(server: Server) -> None:
    response = server.admit("/validate", review("Pod", ["ghcr.io/acme/app:1.0"]))
    assert response["allowed"] is False
    assert "[not-pinned]" in response["status"]["message"]


def test_warn_rule_allows_with_warning(server: Server) -> None:
    # Port 9 on loopback refuses connections: signature discovery fails, and the rule only warns.
    body = review("Pod", [f"127.0.0.1:9/acme/app@{DIGEST}"], namespace="dev-team")
    response = server.admit("/validate", body)
    assert response["allowed"] is True
    assert len(response["warnings"]) == 1
    assert "[registry-error]" in response["warnings"][0]
    assert "(rule dev-signed)" in response["warnings"][0]


def test_exemption_is_audited(server: Server) -> None:
    body = review("Pod", [f"ghcr.io/acme/breakglass@{DIGEST}"], namespace="ops-1")
    response = server.admit("/validate", body)
    assert response["allowed"] is True
    assert "INC-1234 hotfix" in response["auditAnnotations"]["exemptions"]
    assert json.loads(response["auditAnnotations"]["images"])[0]["outcome"] == "exempted"
    # The same image outside the exempted namespaces is judged normally.
    response = server.admit(
        "/validate", review("Pod", [f"ghcr.io/acme/breakglass@{DIGEST}"], namespace="prod")
    )
    assert json.loads(response["auditAnnotations"]["images"])[0]["outcome"] == "admitted"


def test_an_exemption_never_opens_a_registry_outside_the_allowlist(server: Server) -> None:
    body = review(
        "Pod",
        ["ghcr.io/acme/debug:latest", "ghcr.io.attacker.example/acme/debug:latest"],
        namespace="ops-1",
    )
    response = server.admit("/validate", body)
    assert response["allowed"] is False
    outcomes = [i["outcome"] for i in json.loads(response["auditAnnotations"]["images"])]
    assert outcomes == ["exempted", "registry-not-allowed"]
    assert response["status"]["message"] == (
        'container "app-1" image "ghcr.io.attacker.example/acme/debug:latest": [registry-not-allowed] '
        'registry "ghcr.io.attacker.example" is not in registries.allow '
        "(allowed: docker.io, ghcr.io, 127.0.0.1:9) (policy e2e-core)"
    )


def test_reason_texts_of_pinned_denied_tags_and_homoglyphs(server: Server) -> None:
    body = review("Pod", [f"ghcr.io/acme/app:latest@{DIGEST}", "ghcr.io/\u0430cme/app:1.0"])
    response = server.admit("/validate", body)
    assert response["allowed"] is False
    assert response["status"]["message"].splitlines() == [
        f'container "app" image "ghcr.io/acme/app:latest@{DIGEST}": [tag-denied] tag "latest" is on the '
        "deny list (tags.deny) and a digest does not exempt it (rule acme)",
        'container "app-1" image "ghcr.io/\\u0430cme/app:1.0": [invalid-reference] image reference '
        "'ghcr.io/\\u0430cme/app:1.0' has an invalid repository path '\\u0430cme/app' (path components "
        "are lower-case letters and digits separated by '.', '_', '__' or '-')",
    ]


def test_delete_and_connect_are_allowed_untouched(server: Server) -> None:
    response = server.admit("/validate", review("Pod", ["ghcr.io/acme/app:latest"], operation="DELETE"))
    assert response == {"uid": response["uid"], "allowed": True}


def test_objects_without_images_are_allowed_with_the_reason_in_the_audit_annotations(server: Server) -> None:
    body = review("Deployment", ["ghcr.io/acme/app:latest"])
    body["request"]["kind"] = {"group": "argoproj.io", "version": "v1alpha1", "kind": "Rollout"}
    response = server.admit("/validate", body)
    assert response["allowed"] is True
    assert response["auditAnnotations"] == {
        "notChecked": "kind argoproj.io/Rollout is not one imagegate checks"
    }


def test_dry_run_is_evaluated(server: Server) -> None:
    response = server.admit("/validate", review("Job", ["ghcr.io/acme/app:latest"], dry_run=True))
    assert response["allowed"] is False


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "AdmissionReview"),
        (
            json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
            400,
            "request",
        ),
    ],
)
def test_malformed_reviews_get_400_json(server: Server, body: bytes, status: int, fragment: str) -> None:
    answer = server.post("/validate", body)
    assert answer.status_code == status
    assert answer.headers["Content-Type"] == "application/json"
    assert fragment in answer.json()["error"]


def test_oversized_body_gets_413(server: Server) -> None:
    # Announce a body over the cap and send none of it: the server must refuse on the header alone.
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=10)
    try:
        connection.putrequest("POST", "/mutate")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(7 * 1024 * 1024))
        connection.endheaders()
        answer = connection.getresponse()
        assert answer.status == 413
        assert json.loads(answer.read())["status"] == 413
    finally:
        connection.close()


def _post_chunked(server: Server, body: bytes, *, chunk: int = 64 * 1024) -> tuple[int, bytes]:
    """POST ``body`` with ``Transfer-Encoding: chunked`` (no Content-Length) and return (status, body).

    The server may answer and close the connection before the whole body is sent (it reads a refused
    body only so far): sending then stops, and the answer already sent is read.
    """
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with context.wrap_socket(
        socket.create_connection((host, int(port)), timeout=30), server_hostname=host
    ) as sock:
        head = (
            f"POST /validate HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            sock.sendall(head.encode())
            for start in range(0, len(body), chunk):
                part = body[start : start + chunk]
                sock.sendall(b"%x\r\n%b\r\n" % (len(part), part))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed; its answer is waiting to be read
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        return answer.status, answer.read()


def _padded_review(size: int) -> bytes:
    """A valid AdmissionReview (``latest``, so denied) padded with spaces to exactly ``size`` bytes."""
    text = json.dumps(review("Pod", ["ghcr.io/acme/app:latest"], uid="chunked")).encode()
    return text + b" " * (size - len(text))


@pytest.mark.parametrize("over", [1, 3 * 1024 * 1024], ids=["one-byte-over", "megabytes-over"])
def test_chunked_body_over_the_limit_gets_413_not_a_decision(server: Server, over: int) -> None:
    # Without a Content-Length the cap can only be enforced while reading: a body over it must be
    # refused, not cut at the cap and decided.
    limit = Settings().max_request_bytes
    status, payload = _post_chunked(server, _padded_review(limit + over))
    assert status == 413, payload[:200]
    assert json.loads(payload)["status"] == 413


def test_chunked_body_at_the_limit_is_decided(server: Server) -> None:
    status, payload = _post_chunked(server, _padded_review(Settings().max_request_bytes))
    assert status == 200
    response = json.loads(payload)["response"]
    assert response["allowed"] is False
    assert "[tag-denied]" in response["status"]["message"]


def test_a_body_that_stops_coming_ends_in_a_400_not_a_held_thread(server: Server) -> None:
    # The worker gives a request REQUEST_READ_TIMEOUT seconds to arrive; the app, reading the body
    # when it runs out, answers 400 (never a decision, never a 500) and the connection is dropped.
    body = json.dumps(review("Pod", ["ghcr.io/acme/app:latest"])).encode()
    host, port = server.url.removeprefix("https://").split(":")
    context = ssl.create_default_context(cafile=str(server.ca_file))
    with context.wrap_socket(
        socket.create_connection((host, int(port)), timeout=30), server_hostname=host
    ) as sock:
        sock.sendall(
            f"POST /validate HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:100]
        )
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 400
        assert json.loads(answer.read())["status"] == 400
    assert server.get("/healthz").status_code == 200
    assert "Traceback" not in server.stderr.read_text()


def test_unknown_path_and_wrong_method(server: Server) -> None:
    assert server.get("/nope").status_code == 404
    assert server.get("/mutate").status_code == 405
    assert server.get("/healthz").json() == {"status": "ok"}
    assert server.get("/readyz").status_code == 200


def test_metrics_and_audit_log(server: Server) -> None:
    server.admit("/validate", review("Pod", ["ghcr.io/acme/app:latest"], uid="audit-me"))
    text = server.get("/metrics").text
    decided = [line for line in text.splitlines() if line.startswith("imagegate_image_decisions_total{")]
    assert any('outcome="tag-denied"' in line and 'stage="validate"' in line for line in decided), decided
    assert "imagegate_policy_info{fingerprint=" in text
    records = server.audit_lines(uid="audit-me")
    assert records and records[0]["images"][0]["reasons"] == ["tag-denied"]
    # When, in UTC to the microsecond, and what kubectl was told.
    assert abs(parse_rfc3339(records[0]["time"]) - datetime.now(UTC)) < timedelta(minutes=1)
    assert records[0]["time"].endswith("Z") and len(records[0]["time"]) == len("2026-01-01T00:00:00.000000Z")
    assert records[0]["message"].startswith('container "app" image "ghcr.io/acme/app:latest": [tag-denied]')


def test_mutate_sends_no_patch_when_nothing_changes(server: Server) -> None:
    response = server.admit("/mutate", review("Pod", [f"nginx@{DIGEST}"]))
    assert response["allowed"] is True
    assert "patch" not in response and "patchType" not in response


# --- bounded work: the default limit of 256 distinct images per object ------------------------------


def _pod_with(images: list[str], *, uid: str) -> dict[str, Any]:
    """A Pod review whose containers carry ``images`` (short names keep a 100k-container body near 4 MiB)."""
    body = review("Pod", ["placeholder"], uid=uid)
    body["request"]["object"]["spec"]["containers"] = [
        {"name": f"c{i}", "image": image} for i, image in enumerate(images)
    ]
    return body


def _audit_record(server: Server, uid: str) -> tuple[dict[str, Any], int]:
    """The last audit line of admission ``uid`` (parsed) and its length."""
    assert server.audit_lines(uid=uid)  # the writer thread may write it just after the answer: wait
    text = server.stdout.read_text()
    ended = text[: text.rfind("\n") + 1]  # not a line still being written
    lines = [line for line in ended.splitlines() if f'"uid":"{uid}"' in line]
    assert lines
    return json.loads(lines[-1]), len(lines[-1])


def test_a_4_mib_review_with_100k_images_is_denied_too_many_images(server: Server) -> None:
    # Every image would need a registry lookup (127.0.0.1:9 refuses connections): none is planned.
    body = _pod_with([f"127.0.0.1:9/a/i{i}:1" for i in range(100_000)], uid="huge")
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert 4 * 1024 * 1024 <= len(raw) <= Settings().max_request_bytes
    for path in ("/mutate", "/validate"):
        answer = server.post(path, raw, timeout=10)
        assert answer.status_code == 200
        response = answer.json()["response"]
        assert response["allowed"] is False
        assert response["status"]["message"] == (
            "[too-many-images] the object has 100000 distinct images, more than the 256 imagegate checks "
            "per object (IMAGEGATE_MAX_IMAGES): split it, or raise the limit"
        )
        assert "patch" not in response
    record, size = _audit_record(server, "huge")
    assert record["error"] == "too-many-images" and record["distinctImages"] == 100_000
    assert size < 4096


@pytest.mark.parametrize(("distinct", "allowed"), [(255, True), (256, True), (257, False)])
def test_objects_up_to_the_image_limit_are_checked(server: Server, distinct: int, allowed: bool) -> None:
    images = [f"ghcr.io/acme/app{i}@{DIGEST}" for i in range(distinct)]
    response = server.admit("/validate", _pod_with(images, uid=f"limit-{distinct}"))
    assert response["allowed"] is allowed
    if allowed:
        listed = json.loads(response["auditAnnotations"]["images"])
        assert listed and {entry["outcome"] for entry in listed} == {"admitted"}
    else:
        assert response["status"]["message"].startswith(
            "[too-many-images] the object has 257 distinct images"
        )


def test_one_image_ten_thousand_times_is_one_image(server: Server) -> None:
    response = server.admit("/mutate", _pod_with([f"ghcr.io/acme/app@{DIGEST}"] * 10_000, uid="dup"))
    assert response["allowed"] is True
    record, size = _audit_record(server, "dup")
    assert len(record["images"]) == 256 and record["imagesOmitted"] == 10_000 - 256
    assert {entry["outcome"] for entry in record["images"]} == {"admitted"}
    assert size < 256 * 1024


def test_a_5_mb_image_string_gives_a_bounded_audit_line_and_answer(server: Server) -> None:
    image = "ghcr.io/acme/" + "a" * 5_000_000
    answer = server.post("/validate", _pod_with([image], uid="long-image"))
    assert answer.status_code == 200
    assert len(answer.content) < 16 * 1024
    response = answer.json()["response"]
    assert response["allowed"] is False and "[invalid-reference]" in response["status"]["message"]
    record, size = _audit_record(server, "long-image")
    assert size < 4096
    assert record["images"][0]["image"].endswith(f"... ({len(image)} characters)")
