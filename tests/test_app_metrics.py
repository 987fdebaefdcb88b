"""/metrics of the served webhook (gunicorn, TLS, two workers): process metrics for the master and each
live worker, and the build it serves."""

from __future__ import annotations

import os
import platform
import signal
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import webhook
from bench.procstat import worker_pids
from tests.support.server import Server, running_server

POLICY = """\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: metrics}
spec:
  registries: {allow: [ghcr.io]}
  rules:
    - {name: all, images: ["ghcr.io/**"]}
"""


def processes(
    server: Server, metric: str = "imagegate_process_resident_memory_bytes"
) -> set[tuple[str, int]]:
    """(role, pid) of every sample of ``metric`` on /metrics."""
    found = set()
    for family in text_string_to_metric_families(server.get("/metrics").text):
        for sample in family.samples:
            if sample.name == metric:
                assert sample.value > 0, sample
                found.add((sample.labels["process"], int(sample.labels["pid"])))
    return found


@pytest.mark.e2e
def test_process_metrics_cover_the_master_and_every_live_worker(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with running_server(tmp_path, policy, workers=2) as server:
        master = server.process.pid
        workers = worker_pids(master)
        assert len(workers) == 2
        expected = {("master", master), *(("worker", pid) for pid in workers)}
        # Whichever worker answers the scrape reports them all.
        for _ in range(6):
            assert processes(server) == expected
        assert {("master", master)} < processes(server, "imagegate_process_cpu_seconds_total")

        os.kill(workers[0], signal.SIGKILL)  # gunicorn starts a replacement
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = worker_pids(master)
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        replaced = {("master", master), *(("worker", pid) for pid in worker_pids(master))}
        assert ("worker", workers[0]) not in replaced
        found = processes(server)
        while found != replaced and time.monotonic() < deadline:  # the new worker starts serving
            time.sleep(0.2)
            found = processes(server)
        assert found == replaced


@pytest.mark.e2e
def test_build_info_is_one_series_for_all_workers(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with running_server(tmp_path, policy, workers=2) as server:
        families = {f.name: f for f in text_string_to_metric_families(server.get("/metrics").text)}
        [sample] = families["imagegate_build_info"].samples
        assert sample.value == 1
        assert sample.labels["version"] == webhook.__version__
        assert sample.labels["python"] == platform.python_version()
