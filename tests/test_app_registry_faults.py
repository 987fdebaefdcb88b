"""End to end over real HTTPS: broken and hostile registries end in clear denials before the deadline.

One ``imagegate serve`` (``IMAGEGATE_DEADLINE_SECONDS=3``) allows a healthy registry and one fault
server per failure. Every admission is sent with a 6 s client timeout: an answer arriving at all is
the proof that the deadline held (a hung webhook would raise ``ReadTimeout``), without measuring
speed. After each fault the server must still be healthy and pin an image from the good registry.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.registry import (
    FaultServer,
    RegistryServer,
    dripping_server,
    hanging_server,
    listening_socket,
    oversized_server,
    redirect_server,
    status_server,
    untrusted_tls_server,
    wrong_digest_server,
)
from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = [pytest.mark.e2e, pytest.mark.registry]

DEADLINE = 3
CLIENT_TIMEOUT = 6.0
MIB = 1024 * 1024
MANIFEST_CAP = 4 * MIB


@dataclass
class Faults:
    server: Server
    policy: Path
    good: RegistryServer
    faults: dict[str, FaultServer]
    elsewhere: str  # host:port of a listening socket nothing may connect to
    elsewhere_socket: Any
    hosts: list[str]
    insecure: list[str]


def policy_text(*, hosts: list[str], insecure: list[str], ca_file: str) -> str:
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "e2e-faults"},
        "spec": {
            "mode": "enforce",
            "unmatched": "deny",
            "registries": {"allow": hosts, "insecure": insecure, "caFile": ca_file},
            "tags": {"resolve": True, "deny": ["latest"]},
            "rules": [{"name": "local", "images": [f"{host}/**" for host in hosts]}],
        },
    }
    return yaml.safe_dump(policy, sort_keys=False)


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, plain_registry: RegistryServer, tls_registry: RegistryServer
) -> Iterator[Faults]:
    directory = tmp_path_factory.mktemp("registry-faults")
    assert tls_registry.ca_file is not None
    # The test CA: it does not trust the untrusted TLS server's certificate.
    (directory / "registry-ca.pem").write_bytes(tls_registry.ca_file.read_bytes())
    with ExitStack() as stack:
        elsewhere, sock = stack.enter_context(listening_socket())
        faults: dict[str, FaultServer] = {
            "hanging": hanging_server(),
            "drip-headers": dripping_server(phase="headers", interval=0.2),
            "drip-body": dripping_server(phase="body", interval=0.2),
            "500": status_server(500),
            "429": status_server(429, {"Retry-After": "1"}),
            "429-long": status_server(429, {"Retry-After": "30"}),
            "wrong-digest": wrong_digest_server(),
            "oversized": oversized_server(5 * MIB),
            "oversized-undeclared": oversized_server(5 * MIB, declare_length=False),
            "redirect": redirect_server(f"http://{elsewhere}/v2/e2e/app/manifests/v1"),
            "untrusted-tls": untrusted_tls_server(),
        }
        for fault in faults.values():
            stack.enter_context(fault)
        hosts = [plain_registry.host, *(f.host for f in faults.values())]
        insecure = [plain_registry.host, *(f.host for n, f in faults.items() if n != "untrusted-tls")]
        policy = directory / "policy.yaml"
        policy.write_text(policy_text(hosts=hosts, insecure=insecure, ca_file="registry-ca.pem"))
        environment = {"IMAGEGATE_DEADLINE_SECONDS": str(DEADLINE), "IMAGEGATE_RELOAD_INTERVAL": "0.2"}
        with running_server(directory, policy, env=environment) as server:
            yield Faults(server, policy, plain_registry, faults, elsewhere, sock, hosts, insecure)


# --- helpers -------------------------------------------------------------------------------------


def admit(server: Server, image: str, *, path: str = "/mutate") -> dict[str, Any]:
    """POST a Pod review; the answer must arrive within CLIENT_TIMEOUT (else requests raises)."""
    body = review("Pod", [image], uid=str(uuid.uuid4()))
    answer = server.post(path, body, timeout=CLIENT_TIMEOUT)
    assert answer.status_code == 200, answer.text
    payload = answer.json()
    assert (payload["apiVersion"], payload["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    assert payload["response"]["uid"] == body["request"]["uid"]
    response: dict[str, Any] = payload["response"]
    return response


def denial(server: Server, image: str, code: str = "registry-error") -> str:
    """The single denial line's text after ``[code] `` (the prefix naming the image is checked)."""
    response = admit(server, image)
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert "patch" not in response
    message: str = response["status"]["message"]
    prefix = f'container "app" image {json.dumps(image)}: [{code}] '
    assert message.startswith(prefix), message
    assert "\n" not in message
    assert message.endswith(" (rule local)"), message
    return message[len(prefix) : -len(" (rule local)")]


def still_healthy(env: Faults) -> None:
    """/healthz answers and a fresh tag from the good registry is resolved and pinned."""
    health = env.server.get("/healthz", timeout=CLIENT_TIMEOUT)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    repo, tag = "e2e/healthy", f"ok-{uuid.uuid4().hex[:8]}"
    pushed = env.good.pusher().push_image(repo, tag)
    image = env.good.ref(repo, tag)
    response = admit(env.server, image)
    assert response["allowed"] is True, response.get("status")
    ops = json.loads(base64.b64decode(response["patch"]))
    assert ops == [{"op": "replace", "path": "/spec/containers/0/image", "value": f"{image}@{pushed.digest}"}]


# --- faults --------------------------------------------------------------------------------------


def test_stopped_registry(
    env: Faults, registry_factory: Callable[..., RegistryServer], tmp_path: Path
) -> None:
    stopped = registry_factory("plain")
    stopped.pusher().push_image("e2e/app", "v1")
    stopped.stop()
    # Allow the stopped registry: the server reloads the edited policy (IMAGEGATE_RELOAD_INTERVAL).
    staged = tmp_path / "policy.yaml"
    staged.write_text(
        policy_text(
            hosts=[*env.hosts, stopped.host],
            insecure=[*env.insecure, stopped.host],
            ca_file=str(env.policy.parent / "registry-ca.pem"),
        )
    )
    staged.replace(env.policy)
    image = stopped.ref("e2e/app", "v1")
    until = time.monotonic() + 15
    while "[registry-not-allowed]" in (message := str(admit(env.server, image).get("status"))):
        assert time.monotonic() < until, f"the edited policy was not reloaded: {message}"
        time.sleep(0.2)

    detail = denial(env.server, image)
    assert detail == f"HEAD http://{stopped.host}/v2/e2e/app/manifests/v1: connection refused"
    still_healthy(env)


def test_registry_that_accepts_and_never_answers(env: Faults) -> None:
    fault = env.faults["hanging"]
    detail = denial(env.server, fault.ref())
    assert detail in (
        f"HEAD http://{fault.host}/v2/demo/app/manifests/v1: timed out: the deadline passed before the "
        "registry answered",
        "no answer from the registry within the admission deadline",
    )
    assert fault.requests  # it was asked, and kept silent
    still_healthy(env)


@pytest.mark.parametrize("phase", ["headers", "body"])
def test_dripping_registry(env: Faults, phase: str) -> None:
    # One byte per 0.2 s never trips a read timeout: only the admission deadline ends it.
    fault = env.faults[f"drip-{phase}"]
    detail = denial(env.server, fault.ref())
    assert fault.host in detail or detail == "no answer from the registry within the admission deadline"
    if phase == "headers":
        assert "timed out" in detail or "deadline" in detail, detail
    else:
        # HEAD gets headers without a digest; the GET of the manifest then drips (or, on the reused
        # connection, meets the bytes still dripping for the HEAD): either way no manifest arrives.
        assert any(
            hint in detail for hint in ("timed out", "deadline", "connection broken", "connection closed")
        ), detail
    still_healthy(env)


def test_registry_answering_500(env: Faults) -> None:
    fault = env.faults["500"]
    detail = denial(env.server, fault.ref())
    assert detail == (
        f"HEAD http://{fault.host}/v2/demo/app/manifests/v1: HTTP 500 Internal Server Error "
        "(gave up after 3 attempts)"
    )
    assert len(fault.requests) == 3
    still_healthy(env)


def test_registry_answering_429_with_retry_after(env: Faults) -> None:
    fault = env.faults["429"]
    detail = denial(env.server, fault.ref())
    # Retry-After: 1 fits the 3 s deadline twice; the third answer ends it.
    assert detail == (
        f"HEAD http://{fault.host}/v2/demo/app/manifests/v1: HTTP 429 Too Many Requests "
        "(gave up after 3 attempts)"
    )
    assert len(fault.requests) == 3
    # Retry-After beyond the deadline: no pointless wait, an immediate clear denial.
    fault = env.faults["429-long"]
    detail = denial(env.server, fault.ref())
    assert detail == (
        f"HEAD http://{fault.host}/v2/demo/app/manifests/v1: HTTP 429 Too Many Requests "
        "(Retry-After 30s would pass the deadline; 1 attempt)"
    )
    assert len(fault.requests) == 1
    still_healthy(env)


def test_wrong_docker_content_digest(env: Faults) -> None:
    fault = env.faults["wrong-digest"]
    detail = denial(env.server, fault.ref(), code="digest-mismatch")
    assert detail.startswith(f"{fault.host}/demo/app:v1: Docker-Content-Digest sha256:"), detail
    assert "does not match the content (sha256:" in detail
    still_healthy(env)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_oversized_manifest(env: Faults, declared: bool) -> None:
    fault = env.faults["oversized" if declared else "oversized-undeclared"]
    detail = denial(env.server, fault.ref())
    url = f"GET http://{fault.host}/v2/demo/app/manifests/v1"
    if declared:
        assert detail == f"{url}: response of {5 * MIB} bytes exceeds the limit of {MANIFEST_CAP} bytes"
    else:
        assert detail == f"{url}: response exceeds the limit of {MANIFEST_CAP} bytes"
    still_healthy(env)


def test_redirect_to_a_host_that_is_not_allowed(env: Faults) -> None:
    fault = env.faults["redirect"]
    detail = denial(env.server, fault.ref())
    assert detail == f"HEAD http://{fault.host}/v2/demo/app/manifests/v1: HTTP 307 Temporary Redirect"
    with pytest.raises(BlockingIOError):
        env.elsewhere_socket.accept()
    still_healthy(env)


def test_untrusted_tls_certificate(env: Faults) -> None:
    fault = env.faults["untrusted-tls"]
    detail = denial(env.server, fault.ref())
    assert detail == (
        f"HEAD https://{fault.host}/v2/demo/app/manifests/v1: TLS error: certificate verify failed: "
        "unable to get local issuer certificate"
    )
    still_healthy(env)
