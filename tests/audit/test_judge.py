"""Judging an inventory, for what needs no registry: images no rule governs (only the quarantine lists
apply to them, and they are never looked up) and exemptions. Registry-backed cases: tests/cli/test_audit.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from tests.support.cluster import kube_list, kubectl_create, pod_of, replicaset_of
from webhook.audit.inventory import read_inventory
from webhook.audit.judge import AuditReport, Limits, WorkloadResult, run_audit
from webhook.audit.overrides import Overrides

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SPEC = "sha256:" + "1" * 64
OLD = "sha256:" + "2" * 64


def write(tmp_path: Path, spec: dict[str, Any]) -> Path:
    (tmp_path / "quarantine.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "imagegate.dev/v1alpha1",
                "kind": "Quarantine",
                "entries": [
                    {"digest": OLD, "reason": "CVE-2026-9", "by": "sec", "since": "2026-05-01T00:00:00Z"}
                ],
            }
        )
    )
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "judge"},
        "spec": {
            "mode": "enforce",
            "unmatched": "allow",
            "registries": {"allow": ["ghcr.io"]},
            "quarantine": {"files": ["quarantine.yaml"]},
            **spec,
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def audit(policy: Path, items: list[dict[str, Any]], overrides: Overrides | None = None) -> AuditReport:
    text = kube_list(items)
    inventory = read_inventory(["-"], stdin=lambda: text)
    return run_audit(
        inventory, policy_path=policy, overrides=overrides or Overrides(), limits=Limits(), now=NOW
    )


def workload(report: AuditReport, name: str) -> WorkloadResult:
    return next(w for w in report.workloads if w.workload.name == name)


def web(image: str, *, running: list[str]) -> list[dict[str, Any]]:
    deployment = kubectl_create("deployment", "web", f"--image={image}", namespace="shop")
    replicaset = replicaset_of(deployment, "5d4")
    container = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    pods = [pod_of(replicaset, f"web-5d4-{i}", running={container: r}) for i, r in enumerate(running)]
    return [deployment, replicaset, *pods]


def test_a_pod_running_a_listed_digest_under_an_ungoverned_image_is_found_without_a_lookup(
    tmp_path: Path,
) -> None:
    policy = write(tmp_path, {})
    image = f"ghcr.io/other/app:1.0@{SPEC}"
    report = audit(policy, web(image, running=[f"ghcr.io/other/app@{OLD}", f"ghcr.io/other/app@{SPEC}"]))
    result = workload(report, "web")
    assert result.status == "denied"
    [reported] = result.findings
    finding = reported.finding
    assert (finding.source, finding.digest, finding.image) == ("running", OLD, f"ghcr.io/other/app@{OLD}")
    assert [(f.code, f.mode, f.message) for f in finding.failures] == [
        ("quarantined", "enforce", 'digest is quarantined: "CVE-2026-9" (quarantine.yaml)')
    ]
    assert reported.found_in == {"Pod": 1}
    assert report.looked_up == 0


def test_an_exempted_spec_covers_what_its_pods_run(tmp_path: Path) -> None:
    exemption = {
        "images": [f"ghcr.io/acme/app@{SPEC}"],
        "namespaces": ["shop"],
        "expires": "2026-12-31T00:00:00Z",
        "reason": "INC-7",
    }
    policy = write(
        tmp_path,
        {
            "unmatched": "deny",
            "exemptions": [exemption],
            "rules": [{"name": "acme", "images": ["ghcr.io/acme/**"]}],
        },
    )
    report = audit(policy, web(f"ghcr.io/acme/app@{SPEC}", running=[f"ghcr.io/acme/app@{OLD}"]))
    assert workload(report, "web").findings == ()
    [row] = report.images
    assert [(u.namespace, u.outcome, u.provenance, u.detail) for u in row.namespaces] == [
        ("shop", "exempted", False, "exempted")
    ]


def test_an_unmatched_override_reports_findings_the_policy_as_written_does_not_have(tmp_path: Path) -> None:
    policy = write(tmp_path, {"mode": "warn", "rules": [{"name": "acme", "images": ["ghcr.io/acme/**"]}]})
    items = web("ghcr.io/other/tool:2@" + SPEC, running=[])
    report = audit(policy, items, Overrides(unmatched="deny"))
    result = workload(report, "web")
    assert (result.status, result.baseline) == ("warned", "allowed")
    [reported] = result.findings
    assert (reported.finding.status, reported.finding.baseline) == ("warned", "allowed")
    assert reported.finding.failures[0].code == "unmatched"
    assert reported.found_in == {"Deployment": 1, "ReplicaSet": 1}

    report = audit(policy, items, Overrides(mode="enforce", unmatched="deny"))
    assert (workload(report, "web").status, workload(report, "web").baseline) == ("denied", "allowed")


def test_audit_mode_failures_are_recorded_not_reported_as_denied_or_warned(tmp_path: Path) -> None:
    policy = write(tmp_path, {"mode": "audit", "unmatched": "deny"})
    report = audit(policy, web("ghcr.io/other/tool:2@" + SPEC, running=[f"ghcr.io/other/tool@{OLD}"]))
    result = workload(report, "web")
    assert result.status == "allowed"
    assert [(r.finding.source, r.finding.status, r.finding.failures[0].mode) for r in result.findings] == [
        ("spec", "allowed", "audit"),
        ("running", "allowed", "audit"),
    ]
    assert report.status == "allowed"
