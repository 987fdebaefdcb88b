"""/metrics of the served webhook (gunicorn, TLS): process metrics for the master and each live worker,
the build it serves, and the operator guide's queries counting admissions and images as they say."""

from __future__ import annotations

import copy
import json
import os
import platform
import re
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import promql_parser
import pytest
from prometheus_client.parser import text_string_to_metric_families

import webhook
from bench.procstat import worker_pids
from tests.support.cli import REPO
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.server import Server, running_server
from tests.support.verify_server import apply_patch

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


# --- the guide's queries count what they say, on a real /metrics page ----------------------------------


def guide_queries() -> dict[str, str]:
    """The operator guide's "What a count means" table: what each row counts -> its PromQL."""
    text = (REPO / "deploy" / "README.md").read_text()
    table = text[text.index("| to count | query |", text.index("**What a count means.**")) :]
    table = table[: table.index("\n\n")]
    found = {}
    for row in table.splitlines()[2:]:
        what, query = row.strip("|").split(" | ", 1)
        found[what.strip()] = query[query.index("`") + 1 : query.index("`", query.index("`") + 1)]
    return found


def evaluate(query: str, page: str) -> dict[tuple[str, ...], float]:
    """``sum [by (...)] (rate(SELECTOR[...]))`` over the counters of ``page`` since the server started
    (rate without time: the increase), by the ``by`` labels' values."""
    node = promql_parser.parse(query.replace("\\|", "|"))
    assert isinstance(node, promql_parser.AggregateExpr) and str(node.op) == "sum", query
    by = tuple(node.modifier.labels) if node.modifier is not None else ()
    call = node.expr
    assert isinstance(call, promql_parser.Call) and call.func.name == "rate", query
    selector = call.args[0].vector_selector

    def matches(labels: dict[str, str]) -> bool:
        for matcher in selector.matchers.matchers:
            value = labels.get(matcher.name, "")
            op = str(matcher.op)
            if op.endswith("MatchOp.Equal"):
                ok = value == matcher.value
            elif op.endswith("MatchOp.Re"):
                ok = re.fullmatch(matcher.value, value) is not None
            else:
                raise AssertionError(f"matcher {op} in {query}")
            if not ok:
                return False
        return True

    sums: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            if sample.name == selector.name and matches(sample.labels):
                key = tuple(sample.labels.get(label, "") for label in by)
                sums[key] = sums.get(key, 0.0) + sample.value
    return sums


@pytest.mark.e2e
@pytest.mark.registry
def test_the_guides_queries_count_admissions_and_images_once(
    tmp_path: Path, plain_registry: RegistryServer
) -> None:
    """A warn rollout as the API server drives it (/mutate, its patch applied, then /validate unless
    /mutate refused), plus controller levels and a dry run: each query of the guide counts what its row
    says, and the registry latency names the registry."""
    pushed = plain_registry.pusher().push_image("team/app", "1.0", content=uuid.uuid4().bytes)
    host = plain_registry.host
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"""\
apiVersion: imagegate.dev/v1alpha1
kind: ImagePolicy
metadata: {{name: rollout}}
spec:
  mode: warn
  registries: {{allow: ["{host}"], insecure: ["{host}"]}}
  rules:
    - {{name: strict, images: ["{host}/strict/**"], mode: enforce}}
    - {{name: team, images: ["{host}/team/**"]}}
"""
    )

    def create(server: Server, body: dict[str, Any]) -> bool:
        """The API server's two calls; whether the object was admitted."""
        mutated = server.admit("/mutate", body)
        if not mutated["allowed"]:
            return False
        if "patch" in mutated:
            body = copy.deepcopy(body)
            body["request"]["object"] = apply_patch(body, mutated)
        return bool(server.admit("/validate", body)["allowed"])

    good = plain_registry.ref("team/app", "1.0")
    with running_server(tmp_path, policy) as server:
        # Two pods admitted, one with a warning (a tag of the warn rule that does not resolve).
        assert create(server, review("Pod", [good], uid="pod-1"))
        assert create(server, review("Pod", [good, plain_registry.ref("team/app", "gone")], uid="pod-2"))
        # Refused at /mutate (a tag of the enforce rule does not resolve): it never reaches /validate.
        assert not create(server, review("Pod", [plain_registry.ref("strict/app", "gone")], uid="pod-3"))
        # The same image at the controller levels above the pod, and a server-side dry run: not pods.
        assert create(server, review("Deployment", [good], uid="deploy"))
        assert create(server, review("ReplicaSet", [good], uid="rs"))
        assert create(server, review("Pod", [good], uid="dry", dry_run=True))
        page = server.get("/metrics").text

    queries = guide_queries()
    assert len(queries) == 4, queries
    admitted, refused, refused_now, would_refuse = queries.values()
    assert evaluate(admitted, page) == {(): 2.0}
    assert evaluate(refused, page) == {(): 1.0}
    assert evaluate(refused_now, page) == {("strict", "registry-error"): 1.0}
    # Warned at both stages (registry-error at /mutate, the tag left unpinned at /validate): counted once.
    assert evaluate(would_refuse, page) == {("team", "not-pinned"): 1.0}

    families = {f.name: f for f in text_string_to_metric_families(page)}
    decided = [s for s in families["imagegate_image_decisions"].samples if s.name.endswith("_total")]
    kinds = {(s.labels["kind"], s.labels["dry_run"]) for s in decided}
    assert kinds == {("Pod", "false"), ("Pod", "true"), ("Deployment", "false"), ("ReplicaSet", "false")}
    assert {s.labels["mode"] for s in decided} == {"none", "warn", "enforce"}
    latency = families["imagegate_registry_request_duration_seconds"].samples
    assert {s.labels["registry"] for s in latency if s.name.endswith("_count")} == {host}
    assert pushed.digest in json.dumps(server.audit_lines(uid="pod-1"))
