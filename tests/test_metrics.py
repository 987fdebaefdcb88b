"""webhook.metrics: what each admission and each image is counted under, bounded labels, build and
process information (the served /metrics page: tests/shipped/deploy/test_monitoring.py and
tests/test_app_metrics.py)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import webhook
from tests.support.reviews import review
from webhook.deadline import Deadline
from webhook.decision import ImagePlan
from webhook.facts import ImageFacts
from webhook.metrics import Metrics, ServerProcesses, process_exited, process_started
from webhook.policy.model import Policy, Registries, Rule, Tags
from webhook.service import AdmissionService
from webhook.settings import Settings

DIGEST = "sha256:" + "d" * 64
POLICY = Policy(
    name="metrics",
    source="p.yaml",
    mode="warn",
    registries=Registries(allow=("ghcr.io",)),
    tags=Tags(resolve=True, deny=("latest",)),
    rules=(
        Rule(name="strict", images=("ghcr.io/acme/strict/**",), mode="enforce"),
        Rule(name="team", images=("ghcr.io/acme/**",)),
    ),
    fingerprint="f" * 64,
)


def _gather(plan: ImagePlan, *, deadline: Deadline, now: datetime) -> ImageFacts:
    """Every tag resolves, except ``:missing`` (a registry error)."""
    return ImageFacts(digest=None if plan.image.endswith(":missing") else DIGEST)


class _Runtime:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def current(self) -> tuple[Policy, object]:
        return self.policy, _gather


def admitted(
    metrics: Metrics, *bodies: tuple[str, dict[str, object]], policy: Policy = POLICY
) -> dict[tuple[tuple[str, str], ...], float]:
    """Admit each (stage, review) with ``metrics`` observing; the image-decision samples it counted."""
    metrics.policy_reload("success", policy)
    svc = AdmissionService(
        settings=Settings(audit_log=False),
        runtime=_Runtime(policy),  # type: ignore[arg-type]
        observer=metrics,
        clock=lambda: datetime(2026, 11, 26, tzinfo=UTC),
    )
    try:
        for stage, body in bodies:
            svc.admit(body, stage=stage)  # type: ignore[arg-type]
    finally:
        svc.close()
    return samples(metrics, "imagegate_image_decisions_total")


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(metrics.registry).decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def image(  # type: ignore[no-untyped-def]
    stage: str,
    kind: str,
    outcome: str,
    mode: str,
    rule: str,
    operation: str = "CREATE",
    dry_run: str = "false",
):
    return labels(
        stage=stage, kind=kind, operation=operation, dry_run=dry_run, outcome=outcome, mode=mode, rule=rule
    )


def test_each_image_is_counted_under_its_stage_kind_outcome_mode_and_rule() -> None:
    pod = review(
        "Pod",
        [
            "ghcr.io/acme/app:1.0",  # governed by team (warn): admitted
            "ghcr.io/acme/strict/app:missing",  # strict (enforce) and team: registry-error owned by strict
            "ghcr.io/acme/app:latest",  # before matching: spec.mode (warn), no rule
            "quay.io/x/y:1",  # not allowed: spec.mode, no rule
        ],
    )
    found = admitted(Metrics(), ("mutate", pod), ("validate", pod))
    assert found == {
        image("mutate", "Pod", "admitted", "none", "team"): 1,
        image("mutate", "Pod", "registry-error", "enforce", "strict"): 1,
        image("mutate", "Pod", "tag-denied", "warn", ""): 1,
        image("mutate", "Pod", "registry-not-allowed", "warn", ""): 1,
        # /validate sees the same unpinned tags (nothing applied the patch): not-pinned, by the same owners
        image("validate", "Pod", "not-pinned", "warn", "team"): 1,
        image("validate", "Pod", "not-pinned", "enforce", "strict"): 1,
        image("validate", "Pod", "tag-denied", "warn", ""): 1,
        image("validate", "Pod", "registry-not-allowed", "warn", ""): 1,
    }


def test_the_same_image_at_each_controller_level_is_told_apart_by_kind_and_operation() -> None:
    pinned = f"ghcr.io/acme/app@{DIGEST}"
    found = admitted(
        Metrics(),
        ("validate", review("Deployment", [pinned])),
        ("validate", review("ReplicaSet", [pinned])),
        ("validate", review("Pod", [pinned, pinned])),  # two containers, one image: counted per container
        ("validate", review("Pod", [pinned], operation="UPDATE")),  # a running image: still admitted
        ("validate", review("Pod", [pinned], dry_run=True)),
    )
    assert found == {
        image("validate", "Deployment", "admitted", "none", "team"): 1,
        image("validate", "ReplicaSet", "admitted", "none", "team"): 1,
        image("validate", "Pod", "admitted", "none", "team"): 2,
        image("validate", "Pod", "admitted", "none", "team", operation="UPDATE"): 1,
        image("validate", "Pod", "admitted", "none", "team", dry_run="true"): 1,
    }


def test_admissions_are_counted_by_stage_kind_operation_dry_run_and_outcome() -> None:
    metrics = Metrics()
    pinned = f"ghcr.io/acme/app@{DIGEST}"
    admitted(
        metrics,
        ("validate", review("Pod", [pinned])),
        ("validate", review("Pod", [pinned], dry_run=True)),
        ("validate", review("Pod", ["ghcr.io/acme/strict/app:1.0"])),  # enforce: not-pinned denies
        ("mutate", review("Deployment", ["ghcr.io/acme/app:latest"])),  # spec warn: warned
    )
    found = samples(metrics, "imagegate_admission_requests_total")

    def request(stage: str, kind: str, outcome: str, dry_run: str = "false"):  # type: ignore[no-untyped-def]
        return labels(stage=stage, kind=kind, operation="CREATE", dry_run=dry_run, outcome=outcome)

    assert found == {
        request("validate", "Pod", "allowed"): 1,
        request("validate", "Pod", "allowed", dry_run="true"): 1,
        request("validate", "Pod", "denied"): 1,
        request("mutate", "Deployment", "warned"): 1,
    }


def test_a_kind_imagegate_does_not_check_is_counted_as_other() -> None:
    # Anyone who reaches the webhook can name any kind: the label must stay bounded.
    body = review("Pod", [f"ghcr.io/acme/app@{DIGEST}"])
    body["request"]["kind"]["kind"] = "Gadget-" + "x" * 40  # type: ignore[index]
    metrics = Metrics()
    admitted(metrics, ("validate", body))
    [sample] = samples(metrics, "imagegate_admission_requests_total")
    assert dict(sample)["kind"] == "(other)"


def test_rules_beyond_the_cap_are_counted_as_other() -> None:
    many = replace(
        POLICY,
        rules=tuple(Rule(name=f"r{i}", images=(f"ghcr.io/acme/r{i}/**",)) for i in range(5)),
    )
    bodies = [("validate", review("Pod", [f"ghcr.io/acme/r{i}/app@{DIGEST}"])) for i in range(5)]
    found = admitted(Metrics(max_rules=2), *bodies, policy=many)
    assert {dict(key)["rule"]: value for key, value in found.items()} == {"r0": 1, "r1": 1, "(other)": 3}


def test_namespaces_are_a_label_only_when_asked_for() -> None:
    body = ("validate", review("Pod", [f"ghcr.io/acme/app@{DIGEST}"], namespace="team-a"))
    [without] = admitted(Metrics(), body)
    assert "resource_namespace" not in dict(without)
    metrics = Metrics(namespaces=True)
    [with_namespace] = admitted(metrics, body)
    assert dict(with_namespace)["resource_namespace"] == "team-a"
    [request] = samples(metrics, "imagegate_admission_requests_total")
    assert dict(request)["resource_namespace"] == "team-a"


def test_registry_requests_are_labelled_by_registry_and_other_hosts_as_other() -> None:
    metrics = Metrics()
    metrics.registry_request("resolve", "ghcr.io", 0.01, None)
    metrics.registry_request("resolve", None, 0.01, "registry-not-allowed")
    counts = samples(metrics, "imagegate_registry_request_duration_seconds_count")
    assert counts == {
        labels(registry="ghcr.io", operation="resolve"): 1,
        labels(registry="(other)", operation="resolve"): 1,
    }
    assert samples(metrics, "imagegate_registry_errors_total") == {
        labels(registry="(other)", code="registry-not-allowed"): 1
    }


def test_build_info_names_the_versions_served() -> None:
    [(key, value)] = samples(Metrics(), "imagegate_build_info").items()
    info = dict(key)
    assert value == 1
    assert info["version"] == webhook.__version__
    assert info["python"] == platform.python_version()
    assert info["sigstore"][0].isdigit()


def test_the_package_version_is_the_one_the_distribution_declares() -> None:
    from importlib.metadata import version

    assert webhook.__version__ == version("imagegate")


# --- process metrics ---------------------------------------------------------------------------------


@pytest.fixture
def other_process() -> Iterator[int]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield child.pid
    finally:
        child.kill()
        child.wait()


def process_samples(collector: ServerProcesses) -> dict[str, dict[tuple[str, str], float]]:
    """Sample name -> {(process, pid): value}."""
    found: dict[str, dict[tuple[str, str], float]] = {}
    for family in collector.collect():
        for s in family.samples:
            found.setdefault(s.name, {})[(s.labels["process"], s.labels["pid"])] = s.value
    return found


def test_process_metrics_cover_every_live_process_of_the_server(tmp_path: Path, other_process: int) -> None:
    process_started(tmp_path, role="master", pid=other_process)
    process_started(tmp_path, role="worker", pid=os.getpid())
    found = process_samples(ServerProcesses(tmp_path))
    processes = {("master", str(other_process)), ("worker", str(os.getpid()))}
    for name in (
        "imagegate_process_cpu_seconds_total",
        "imagegate_process_resident_memory_bytes",
        "imagegate_process_virtual_memory_bytes",
        "imagegate_process_start_time_seconds",
        "imagegate_process_open_fds",
        "imagegate_process_max_fds",
    ):
        assert set(found[name]) == processes, name
    # Each process is read for itself: this one has a Python interpreter and pytest loaded, the sleeper not.
    rss = found["imagegate_process_resident_memory_bytes"]
    assert rss[("worker", str(os.getpid()))] > rss[("master", str(other_process))] > 0

    process_exited(tmp_path, pid=os.getpid())
    assert set(process_samples(ServerProcesses(tmp_path))["imagegate_process_open_fds"]) == {
        ("master", str(other_process))
    }


def test_a_process_that_is_gone_has_no_samples(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    process_started(tmp_path, role="worker", pid=gone.pid)
    process_started(tmp_path, role="worker", pid=os.getpid())
    pids = {pid for _, pid in process_samples(ServerProcesses(tmp_path))["imagegate_process_open_fds"]}
    assert pids == {str(os.getpid())}


def test_without_a_multiprocess_directory_the_process_reads_itself() -> None:
    found = process_samples(ServerProcesses(None))
    assert set(found["imagegate_process_open_fds"]) == {("worker", str(os.getpid()))}
    assert "imagegate_process_cpu_seconds_total" in samples_names(Metrics())


def samples_names(metrics: Metrics) -> set[str]:
    text = generate_latest(metrics.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}
