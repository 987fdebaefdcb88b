"""Operations end to end: hot reload while requests run, rotated TLS certificates, metrics across workers,
audit lines without secrets, and refusing to start on a bad policy."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme

from bench.procstat import worker_pids
from tests.support.registry import RegistryServer, tls_registry
from tests.support.reviews import review
from tests.support.server import Server, running_server

pytestmark = pytest.mark.e2e
__all__ = ["tls_registry"]  # the fixture is used by name below

DIGEST = "sha256:" + "e" * 64
POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: {name}}}
spec:
  registries: {{allow: [ghcr.io]}}
  tags: {{resolve: true, deny: [{denied}]}}
  rules:
    - {{name: all, images: ["ghcr.io/**"]}}
"""


def _write(path: Path, text: str) -> None:
    # Replace atomically, as kubelet does for ConfigMap volumes, and make the change visible to mtime checks.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _fresh_post(server: Server, body: dict[str, object]) -> dict[str, object]:
    # A new connection each time, so that requests spread over the workers.
    with requests.Session() as session:
        session.trust_env = False
        answer = session.post(server.url + "/validate", json=body, verify=str(server.ca_file), timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["response"]  # type: ignore[no-any-return]


def _metric(server: Server, metric: str, **labels: str) -> float:
    text = server.get("/metrics").text
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(metric + "{") and not line.startswith(metric + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def reloading_server(tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(name="v1", denied="latest"))
    env = {"IMAGEGATE_RELOAD_INTERVAL": "0.2"}
    with running_server(tmp_path, policy, env=env, workers=2) as server:
        yield server, policy


def test_policy_change_reaches_every_worker_while_requests_run(reloading_server: tuple[Server, Path]) -> None:
    server, policy = reloading_server
    body = review("Pod", [f"ghcr.io/acme/app:canary@{DIGEST}"])
    assert _fresh_post(server, body)["allowed"] is True

    errors: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                _fresh_post(server, body)
            except Exception as error:
                errors.append(repr(error))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        _write(policy, POLICY.format(name="v2", denied="canary"))
        deadline = time.monotonic() + 15
        consecutive = 0
        while consecutive < 12 and time.monotonic() < deadline:
            consecutive = consecutive + 1 if _fresh_post(server, body)["allowed"] is False else 0
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert consecutive >= 12, "the new policy did not take effect in every worker"
    assert errors == []
    assert _metric(server, "imagegate_policy_info", name="v2") >= 1


def test_invalid_and_half_written_policies_are_rejected_and_last_good_keeps_serving(
    reloading_server: tuple[Server, Path],
) -> None:
    server, policy = reloading_server
    body = review("Pod", [f"ghcr.io/acme/app:canary@{DIGEST}"])
    full = POLICY.format(name="v3", denied="canary")
    # A half-written file (cut inside a flow mapping: not even YAML). A truncation that happens to be a
    # valid policy cannot be told apart; kubelet's ConfigMap updates are atomic, so they never produce one.
    _write(policy, full[: full.index("ghcr.io]")])
    time.sleep(1.0)
    _write(policy, full.replace("rules:", "rulez:"))  # a schema error
    time.sleep(1.0)
    for _ in range(6):
        assert _fresh_post(server, body)["allowed"] is True  # still v1
    assert server.get("/readyz").status_code == 200
    assert _metric(server, "imagegate_policy_reloads_total", result="rejected") >= 1
    assert "policy reload rejected" in server.stderr.read_text()
    _write(policy, full)
    # Each worker's reload thread sees v3 in its own time (later on a loaded machine): wait until
    # several fresh connections in a row, whichever worker takes them, are denied.
    deadline = time.monotonic() + 15
    consecutive = 0
    while consecutive < 8 and time.monotonic() < deadline:
        consecutive = consecutive + 1 if _fresh_post(server, body)["allowed"] is False else 0
    assert consecutive >= 8, "v3 did not take effect in every worker"


def test_worker_restarted_while_files_are_invalid_serves_the_last_good_policy(
    reloading_server: tuple[Server, Path],
) -> None:
    server, policy = reloading_server
    body = review("Pod", [f"ghcr.io/acme/app:canary@{DIGEST}"])
    _write(policy, POLICY.format(name="v2", denied="canary"))  # valid: canary is now denied
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _fresh_post(server, body)["allowed"] is True:
        time.sleep(0.2)
    time.sleep(1.0)  # let the gunicorn master's watcher see v2 as well
    _write(policy, "kind: ImagePolicy\nspec: [broken")
    time.sleep(1.0)
    workers = worker_pids(server.process.pid)
    assert len(workers) == 2
    for pid in workers:
        os.kill(pid, signal.SIGTERM)  # gunicorn starts replacements, which load the broken files
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        len(worker_pids(server.process.pid)) == 2 and not set(worker_pids(server.process.pid)) & set(workers)
    ):
        time.sleep(0.2)
    time.sleep(1.0)
    for _ in range(8):
        answer = _fresh_post(server, body)
        assert answer["allowed"] is False  # v2, inherited from the master, not "no policy"
        assert "[tag-denied]" in answer["status"]["message"]
    assert server.get("/readyz").status_code == 200
    assert "serving the last good policy v2" in server.stderr.read_text()


def test_metrics_sum_over_workers(reloading_server: tuple[Server, Path]) -> None:
    server, _ = reloading_server
    body = review("Pod", ["ghcr.io/acme/app:latest"])
    before = _metric(server, "imagegate_admission_requests_total", stage="validate", outcome="denied")
    for _ in range(10):
        assert _fresh_post(server, body)["allowed"] is False
    after = _metric(server, "imagegate_admission_requests_total", stage="validate", outcome="denied")
    assert after - before == 10
    assert _metric(server, "imagegate_image_decisions_total", outcome="tag-denied") >= 10
    assert _metric(server, "imagegate_admission_duration_seconds_count", stage="validate") >= 10


def test_rotated_certificate_is_served_without_restart(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(name="tls", denied="latest"))
    with running_server(tmp_path, policy) as server:
        new_ca = trustme.CA()
        new_cert = new_ca.issue_cert("127.0.0.1")
        new_ca_file = tmp_path / "new-ca.crt"
        new_ca.cert_pem.write_to_path(str(new_ca_file))
        # The server reads tls.crt / tls.key from the directory running_server wrote them to.
        new_cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "tls.key.new"))
        new_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "tls.crt.new"))
        os.replace(tmp_path / "tls.key.new", tmp_path / "tls.key")
        os.replace(tmp_path / "tls.crt.new", tmp_path / "tls.crt")
        deadline = time.monotonic() + 10
        served_new = False
        while time.monotonic() < deadline and not served_new:
            try:
                with requests.Session() as session:
                    session.trust_env = False
                    served_new = session.get(server.url + "/healthz", verify=str(new_ca_file), timeout=5).ok
            except requests.exceptions.SSLError:
                time.sleep(0.3)
        assert served_new, "the rotated certificate was not picked up"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(server.url + "/healthz", verify=str(server.ca_file), timeout=5)


@pytest.mark.registry
def test_audit_lines_are_json_and_carry_no_credentials(tmp_path: Path, tls_registry: RegistryServer) -> None:
    pusher = tls_registry.pusher()
    pushed = pusher.push_image("private/app", tag="1.0")
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"""\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: audit}}
spec:
  registries:
    allow: ["{tls_registry.host}"]
    caFile: {tls_registry.ca_file}
    credentialsFile: {tls_registry.credentials_file}
  quarantine: {{registryMarkers: true}}
  rules:
    - {{name: private, images: ["{tls_registry.host}/private/**"]}}
"""
    )
    with running_server(tmp_path, policy) as server:
        image = tls_registry.ref("private/app", "1.0")
        response = server.admit("/mutate", review("Pod", [image], uid="audit-1"))
        assert response["allowed"] is True, response
        records = server.audit_lines(uid="audit-1")
        assert len(records) == 1
        record = records[0]
        assert record["operation"] == "CREATE" and record["kind"] == "Pod"
        assert record["images"][0]["digest"] == pushed.digest
        assert record["images"][0]["rules"] == ["private"]
        output = server.stdout.read_text() + server.stderr.read_text()
        secret = tls_registry.password
        encoded = base64.b64encode(f"{tls_registry.username}:{secret}".encode()).decode()
        assert secret not in output and encoded not in output
        for line in server.stdout.read_text().splitlines():
            json.loads(line)  # every stdout line is one JSON audit record


def test_serve_refuses_a_malformed_policy_and_lint_reports_it(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        POLICY.format(name="bad", denied="latest").replace("mode", "mode").replace("rules:", "rules: 3\n  x:")
    )
    serve = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--policy", str(policy), "--dev-cert", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert serve.returncode == 2
    assert re.search(r"policy\.yaml:\d+: ", serve.stderr), serve.stderr
    lint = subprocess.run(
        [sys.executable, "-m", "webhook", "lint", str(policy)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert lint.returncode == 1
    assert re.search(r"policy\.yaml:\d+: /spec", lint.stdout), lint.stdout


def _kubelet_update(mount: Path, version: str, files: dict[str, bytes]) -> None:
    """Update ``mount`` as kubelet updates a ConfigMap or Secret volume: a new timestamped directory, the
    ``..data`` symlink swapped to it with a rename, and the old directory deleted."""
    new = mount / f"..{version}"
    new.mkdir()
    for name, data in files.items():
        (new / name).write_bytes(data)
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")
    old = os.readlink(mount / "..data") if (mount / "..data").is_symlink() else None
    (mount / "..data_tmp").symlink_to(new.name)
    os.replace(mount / "..data_tmp", mount / "..data")
    if old is not None:
        shutil.rmtree(mount / old)


def test_configmap_and_secret_volume_updates_reach_the_server(tmp_path: Path) -> None:
    # The policy, tls.crt and tls.key are symlinks through ..data, as in the Deployment's volumes; an
    # update points ..data at a new directory and deletes the old one.
    _kubelet_update(
        tmp_path,
        "v1",
        {
            "policy.yaml": POLICY.format(name="v1", denied="latest").encode(),
            "tls.crt": b"",  # running_server writes the first certificate through these links
            "tls.key": b"",
        },
    )
    body = review("Pod", [f"ghcr.io/acme/app:canary@{DIGEST}"])
    with running_server(
        tmp_path, tmp_path / "policy.yaml", env={"IMAGEGATE_RELOAD_INTERVAL": "0.2"}
    ) as server:
        assert _fresh_post(server, body)["allowed"] is True
        new_ca = trustme.CA()
        new_cert = new_ca.issue_cert("127.0.0.1")
        new_ca_file = tmp_path / "new-ca.crt"
        new_ca.cert_pem.write_to_path(str(new_ca_file))
        _kubelet_update(
            tmp_path,
            "v2",
            {
                "policy.yaml": POLICY.format(name="v2", denied="canary").encode(),
                "tls.crt": new_cert.cert_chain_pems[0].bytes(),
                "tls.key": new_cert.private_key_pem.bytes(),
            },
        )
        deadline = time.monotonic() + 15
        served_new = denied = False
        while time.monotonic() < deadline and not (served_new and denied):
            time.sleep(0.3)
            try:
                with requests.Session() as session:
                    session.trust_env = False
                    answer = session.post(
                        server.url + "/validate", json=body, verify=str(new_ca_file), timeout=5
                    )
                served_new = True
                denied = answer.json()["response"]["allowed"] is False
            except requests.exceptions.SSLError:
                continue
        assert served_new, "the certificate from the updated Secret volume was not picked up"
        assert denied, "the policy from the updated ConfigMap volume was not picked up"
        assert "policy reload rejected" not in server.stderr.read_text()


TRUST_POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: trusted}
spec:
  registries: {allow: [ghcr.io]}
  tags: {deny: [canary]}
  trust: {roots: [{name: pinned, file: trusted_root.json}]}
  rules:
    - {name: all, images: ["ghcr.io/**"]}
"""
_FIXTURE_ROOT = Path(__file__).parents[0] / "policy" / "fixtures" / "trust" / "trusted_root.json"


def test_trust_root_that_only_the_workers_reject_does_not_bring_the_server_down(tmp_path: Path) -> None:
    # The file passes the policy checks (JSON with the trusted-root media type) but is not a usable
    # trusted root: every process must agree it is not the "last good" state, and a worker that starts
    # meanwhile must not take the whole server down with it.
    root = tmp_path / "trusted_root.json"
    root.write_bytes(_FIXTURE_ROOT.read_bytes())
    policy = tmp_path / "policy.yaml"
    policy.write_text(TRUST_POLICY)
    body = review("Pod", [f"ghcr.io/acme/app:canary@{DIGEST}"])
    env = {"IMAGEGATE_RELOAD_INTERVAL": "0.2"}
    with running_server(tmp_path, policy, env=env, workers=2) as server:
        assert _fresh_post(server, body)["allowed"] is False
        _write(root, json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"}))
        time.sleep(1.5)  # every watcher (master and workers) has seen the broken file
        workers = worker_pids(server.process.pid)
        for pid in workers:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.process.poll() is None:
            children = set(worker_pids(server.process.pid))
            if len(children) == 2 and not children & set(workers):
                break
            time.sleep(0.2)
        time.sleep(1.0)
        assert server.process.poll() is None, server.stderr.read_text()
        assert server.get("/healthz").status_code == 200
        _write(root, _FIXTURE_ROOT.read_bytes().decode())
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and server.get("/readyz").status_code != 200:
            time.sleep(0.2)
        assert all(server.get("/readyz").status_code == 200 for _ in range(6))
        assert _fresh_post(server, body)["allowed"] is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGEGATE_DEADLINE_SECONDS", "nan"),
        ("IMAGEGATE_DEADLINE_SECONDS", "0"),
        ("IMAGEGATE_TAG_TTL", "inf"),
        ("IMAGEGATE_CACHE_SIZE", "-5"),
        ("IMAGEGATE_FETCH_THREADS", "0"),
        ("IMAGEGATE_WORKERS", "abc"),
        ("IMAGEGATE_THREADS", "0"),
        ("IMAGEGATE_LOG_LEVEL", "chatty"),
        ("IMAGEGATE_ACCESS_LOG", "sometimes"),
    ],
)
def test_serve_refuses_invalid_settings_with_exit_2(tmp_path: Path, variable: str, value: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(name="settings", denied="latest"))
    serve = subprocess.run(
        [sys.executable, "-m", "webhook", "serve", "--policy", str(policy), "--dev-cert", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, variable: value},
    )
    assert serve.returncode == 2, serve.stderr
    assert variable in serve.stderr
    assert "Traceback" not in serve.stderr
