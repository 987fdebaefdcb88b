"""``imagegate audit``: a cluster's ``kubectl get -o json`` judged under a policy, against a real registry.

Workloads come from the real ``kubectl create --dry-run=client``; ReplicaSets, Jobs and pods (with
their owners and ``status.containerStatuses``) are added as their controllers and the kubelet write
them (tests.support.cluster). Images, multi-arch indexes, quarantine markers and attestations are real,
in Debian's docker-registry; quarantine lists are written by ``imagegate quarantine add``.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.cluster import kube_list, kubectl_create, pod_of, replicaset_of, with_uid
from tests.support.fake_sigstore import SLSA_PROVENANCE_V1, FakeSigstore
from tests.support.oci import Pushed
from tests.support.refresh_world import Run
from tests.support.registry import RegistryServer, hanging_server
from tests.support.signing_world import Keyless, SigningWorld
from tests.support.verify_server import BUILDER, ISSUER, WORKFLOW, WORKFLOW_EXTENSIONS, provenance

pytestmark = pytest.mark.registry


class Audit:
    """``imagegate`` in process (fixture ``run_cli``): ``audit(...)`` gives (exit code, stdout, stderr)."""

    def __init__(self, run_cli: Callable[..., Run]) -> None:
        self._run = run_cli

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        result = self._run(*argv)
        return result.code, result.out, result.err

    def json(self, *argv: str) -> tuple[int, dict[str, Any]]:
        code, out, err = self(*argv, "-o", "json")
        assert out, err
        return code, json.loads(out)


@pytest.fixture
def run(run_cli: Callable[..., Run]) -> Audit:
    return Audit(run_cli)


def write_policy(
    path: Path,
    registry_host: str,
    *,
    rules: Sequence[Mapping[str, Any]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    document = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "audit-test"},
        "spec": {
            "mode": "enforce",
            "unmatched": "deny",
            "registries": {"allow": [registry_host], "insecure": [registry_host]},
            "rules": list(rules),
            **(extra or {}),
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def rows(out: str) -> list[dict[str, str]]:
    """The table of the text output, as dicts by column (columns are split on 2+ spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(("NAMESPACE", "IMAGE")))
    header = re.split(r"\s{2,}", lines[start])
    table = []
    for line in lines[start + 1 :]:
        cells = re.split(r"\s{2,}", line, maxsplit=len(header) - 1)
        if len(cells) != len(header):
            break  # the summary
        table.append(dict(zip(header, cells, strict=True)))
    return table


def findings(report: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    [workload] = [w for w in report["workloads"] if w["name"] == name]
    return list(workload["findings"])


def deployment_with_pods(
    name: str, image: str, *, namespace: str, running: Sequence[str], template_hash: str = "5d4f8b7c9"
) -> list[dict[str, Any]]:
    """A Deployment (from kubectl), its ReplicaSet and one running pod per ``running`` imageID."""
    deployment = kubectl_create(
        "deployment", name, f"--image={image}", f"--replicas={len(running)}", namespace=namespace
    )
    replicaset = replicaset_of(deployment, template_hash)
    container = deployment["spec"]["template"]["spec"]["containers"][0]["name"]
    pods = [
        pod_of(replicaset, f"{name}-{template_hash}-{i}", running={container: image_id})
        for i, image_id in enumerate(running)
    ]
    return [deployment, replicaset, *pods]


def release_key_pem(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


# --- "what breaks if this warn rule becomes enforce" -------------------------------------------------


def test_what_breaks_when_a_warn_rule_enforces(
    plain_registry: RegistryServer,
    tmp_path: Path,
    run: Audit,
) -> None:
    registry = plain_registry
    pusher = registry.pusher()
    pusher.push_image("audit-modes/app", "1.0")
    pusher.push_image("audit-modes/tool", "1.0")
    app, tool = registry.ref("audit-modes/app", "1.0"), registry.ref("audit-modes/tool", "1.0")
    policy = write_policy(
        tmp_path / "policy.yaml",
        registry.host,
        rules=[
            {"name": "base", "images": [f"{registry.host}/audit-modes/**"]},
            {
                "name": "signed-app",
                "images": [f"{registry.host}/audit-modes/app"],
                "mode": "warn",
                "signatures": {"signers": [{"key": {"name": "release", "requireTlog": False}}]},
            },
        ],
        extra={
            "trust": {"keys": [{"name": "release", "file": str(release_key_pem(tmp_path / "release.pub"))}]}
        },
    )
    digest = f"{registry.host}/audit-modes/app@sha256:" + "0" * 64
    cluster = tmp_path / "cluster.json"
    cluster.write_text(
        kube_list(
            [
                *deployment_with_pods("web", app, namespace="shop", running=[digest, digest]),
                kubectl_create("deployment", "tools", f"--image={tool}", namespace="shop"),
            ]
        )
    )

    code, out, err = run("audit", "--policy", str(policy), str(cluster))
    assert (code, err) == (0, "")
    [warned] = rows(out)
    assert warned["NAMESPACE"] == "shop"
    assert warned["WORKLOAD"] == "Deployment/web"
    assert warned["RESULT"] == "warned"
    assert warned["FOUND IN"] == "spec, ReplicaSet, 2/2 pods"
    assert warned["IMAGE"] == app
    assert warned["REASON"].startswith("[unsigned] ")
    assert warned["REASON"].endswith("(rule signed-app)")
    assert "would warn on 1 workload(s) with 2 pod(s)" in out

    # The operator asks "what if signed-app enforced?" without editing the policy.
    code, out, err = run("audit", "--policy", str(policy), str(cluster), "--rule-mode", "signed-app=enforce")
    assert code == 1, err
    assert out.splitlines()[0].endswith(", judged with rule signed-app: enforce")
    [denied] = rows(out)
    assert denied["RESULT"] == "denied (was warned)"
    assert denied["FOUND IN"] == "spec, ReplicaSet, 2/2 pods"
    assert "would deny 1 workload(s) with 2 pod(s); 1 newly denied by the overrides" in out

    code, report = run.json("audit", "--policy", str(policy), str(cluster), "--mode", "enforce")
    assert code == 1
    assert report["policy"]["overrides"] == {"mode": "enforce", "ruleModes": {}, "unmatched": None}
    [web] = [w for w in report["workloads"] if w["name"] == "web"]
    assert (web["status"], web["baseline"]) == ("denied", "warned")
    [finding] = web["findings"]
    assert finding["failures"][0]["mode"] == "enforce"
    assert (finding["status"], finding["baseline"]) == ("denied", "warned")
    assert finding["foundIn"] == {"Deployment": 1, "ReplicaSet": 1, "Pod": 2}
    [tools] = [w for w in report["workloads"] if w["name"] == "tools"]
    assert (tools["status"], tools["baseline"], tools["findings"]) == ("allowed", "allowed", [])

    # A rule the policy does not have is a usage error, with the rule it probably meant.
    code, out, err = run("audit", "--policy", str(policy), str(cluster), "--rule-mode", "signed-ap=enforce")
    assert (code, out) == (2, "")
    assert "--rule-mode: policy audit-test has no rule 'signed-ap' (did you mean 'signed-app'?)" in err
    assert policy.read_text().count("mode: warn") == 1  # the file was never touched


# --- "where does this newly quarantined digest still run" -------------------------------------------


def test_where_a_quarantined_index_still_runs_by_the_platform_digests_pods_report(
    plain_registry: RegistryServer,
    tmp_path: Path,
    run: Audit,
) -> None:
    registry = plain_registry
    pusher = registry.pusher()
    repo = "audit-quarantine/app"
    index, amd64, arm64 = pusher.push_multiarch(repo, "1.0")
    other = pusher.push_image("audit-quarantine/agent", "3.1")
    quarantine = tmp_path / "quarantine.yaml"
    quarantine.write_text(
        yaml.safe_dump({"apiVersion": "imagegate.dev/v1alpha1", "kind": "Quarantine", "entries": []})
    )
    policy = write_policy(
        tmp_path / "policy.yaml",
        registry.host,
        rules=[{"name": "apps", "images": [f"{registry.host}/audit-quarantine/**"]}],
        extra={"quarantine": {"files": [str(quarantine)]}},
    )
    running = {d.digest: f"{registry.host}/{repo}@{d.digest}" for d in (amd64, arm64)}
    # web pins the index; its pods run the platform manifests the nodes pulled: two amd64, one arm64.
    web = deployment_with_pods(
        "web",
        registry.ref(repo, "1.0", digest=index.digest),
        namespace="prod",
        running=[running[amd64.digest], running[amd64.digest], running[arm64.digest]],
    )
    # legacy names the tag; its pods were started before the tag moved (below).
    legacy = deployment_with_pods(
        "legacy",
        registry.ref(repo, "1.0"),
        namespace="prod",
        running=[running[amd64.digest]],
        template_hash="77",
    )
    agent = with_uid(
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "agent", "image": registry.ref("audit-quarantine/agent", "3.1")}
                        ]
                    }
                }
            },
        }
    )
    agent_pod = pod_of(
        agent, "agent-x1", running={"agent": f"{registry.host}/audit-quarantine/agent@{other.digest}"}
    )
    cluster = tmp_path / "cluster.json"
    cluster.write_text(kube_list([*web, *legacy, agent, agent_pod]))

    code, out, err = run("audit", "--policy", str(policy), str(cluster))
    assert code == 0, err
    assert "nothing would be denied or warned" in out

    # The index is quarantined (with its platform manifests), then the tag moves to a fixed build.
    assert (
        run(
            "quarantine",
            "add",
            "--file",
            str(quarantine),
            "--policy",
            str(policy),
            "--reason",
            "CVE-2026-1",
            registry.ref(repo, digest=index.digest),
        )[0]
        == 0
    )
    fixed = [
        pusher.push_image(repo, None, arch=arch, content=f"fixed {arch}".encode())
        for arch in ("amd64", "arm64")
    ]
    pusher.push_index(repo, "1.0", [(fixed[0], "linux", "amd64"), (fixed[1], "linux", "arm64")])

    code, out, err = run("audit", "--policy", str(policy), str(cluster))
    assert code == 1, err
    table = [(r["WORKLOAD"], r["RESULT"], r["FOUND IN"], r["IMAGE"], r["REASON"]) for r in rows(out)]
    assert table == [
        (
            "Deployment/legacy",
            "denied",
            "1/1 pods",
            f"{registry.host}/{repo}@{amd64.digest}",
            f'running: [quarantined] digest is quarantined: "CVE-2026-1" (quarantine.yaml; platform '
            f"linux/amd64 of index {index.digest})",
        ),
        (
            "Deployment/web",
            "denied",
            "spec, ReplicaSet, 3/3 pods",
            registry.ref(repo, "1.0", digest=index.digest),
            '[quarantined] digest is quarantined: "CVE-2026-1" (quarantine.yaml)',
        ),
        (
            "Deployment/web",
            "denied",
            "2/3 pods",
            f"{registry.host}/{repo}@{amd64.digest}",
            f'running: [quarantined] digest is quarantined: "CVE-2026-1" (quarantine.yaml; platform '
            f"linux/amd64 of index {index.digest})",
        ),
        (
            "Deployment/web",
            "denied",
            "1/3 pods",
            f"{registry.host}/{repo}@{arm64.digest}",
            f'running: [quarantined] digest is quarantined: "CVE-2026-1" (quarantine.yaml; platform '
            f"linux/arm64 of index {index.digest})",
        ),
    ]

    code, report = run.json("audit", "--policy", str(policy), str(cluster))
    running_findings = [f for f in findings(report, "web") if f["source"] == "running"]
    assert [(f["digest"], f["imageID"], f["foundIn"]) for f in running_findings] == [
        (amd64.digest, running[amd64.digest], {"Pod": 2}),
        (arm64.digest, running[arm64.digest], {"Pod": 1}),
    ]
    assert [w["name"] for w in report["workloads"] if w["status"] == "denied"] == ["legacy", "web"]


def test_where_a_platform_digest_marked_in_the_registry_runs(
    plain_registry: RegistryServer,
    tmp_path: Path,
    run: Audit,
) -> None:
    """A registry marker on one platform manifest: the index is refused, only its pods are named."""
    registry = plain_registry
    pusher = registry.pusher()
    repo = "audit-markers/app"
    index, amd64, arm64 = pusher.push_multiarch(repo, "2.0")
    policy = write_policy(
        tmp_path / "policy.yaml",
        registry.host,
        rules=[{"name": "apps", "images": [f"{registry.host}/audit-markers/**"]}],
        extra={"quarantine": {"registryMarkers": True}},
    )
    image = registry.ref(repo, digest=index.digest)
    on = {d.digest: f"{registry.host}/{repo}@{d.digest}" for d in (amd64, arm64)}
    cluster = tmp_path / "cluster.json"
    cluster.write_text(
        kube_list(
            deployment_with_pods("api", image, namespace="prod", running=[on[amd64.digest], on[arm64.digest]])
        )
    )
    assert (
        run(
            "quarantine",
            "add",
            "--registry",
            "--policy",
            str(policy),
            "--reason",
            "bad amd64 build",
            registry.ref(repo, digest=amd64.digest),
        )[0]
        == 0
    )

    code, report = run.json("audit", "--policy", str(policy), str(cluster))
    assert code == 1
    spec, running = findings(report, "api")
    assert spec["source"] == "spec"
    assert spec["foundIn"] == {"Deployment": 1, "ReplicaSet": 1, "Pod": 2}
    assert spec["failures"][0]["message"].startswith(
        f"platform linux/amd64 manifest {amd64.digest} listed by this index is quarantined"
    )
    assert (running["source"], running["digest"], running["foundIn"]) == ("running", amd64.digest, {"Pod": 1})
    assert running["failures"] == [
        {
            "code": "quarantined",
            "mode": "enforce",
            "message": 'digest is quarantined: "bad amd64 build" (registry marker)',
        }
    ]


# --- "which running images have no verified provenance" ---------------------------------------------


@pytest.mark.sigstore
def test_which_running_images_have_no_verified_provenance(
    plain_registry: RegistryServer,
    tmp_path: Path,
    run: Audit,
) -> None:
    registry = plain_registry
    sigstore = FakeSigstore.create(tmp_path / "sigstore", name="acme")
    world = SigningWorld(pusher=registry.pusher(), host=registry.host)
    workflow = Keyless(
        sigstore, sigstore.issue_cert(subject=WORKFLOW, issuer=ISSUER, extensions=WORKFLOW_EXTENSIONS)
    )
    built = world.push_image("audit-provenance/api", "1.0", content=b"built by the release workflow")
    world.attest_and_push(
        "audit-provenance/api",
        built,
        provenance(built, name=world.name("audit-provenance/api")),
        by=workflow,
        fmt="bundle",
    )
    handmade = world.push_image("audit-provenance/api", "1.0-hotfix", content=b"built on a laptop")
    tool = world.push_image("audit-provenance/tool", "2.0", content=b"a tool")
    (tmp_path / "trusted_root.json").write_bytes(sigstore.trusted_root_path.read_bytes())
    signer = {"keyless": {"root": "acme", "issuer": ISSUER, "subject": WORKFLOW}}
    policy = write_policy(
        tmp_path / "policy.yaml",
        registry.host,
        rules=[
            {"name": "dev", "images": [f"{registry.host}/audit-provenance/**"], "namespaces": ["dev"]},
            {
                "name": "release-provenance",
                "images": [f"{registry.host}/audit-provenance/api"],
                "namespaces": ["prod"],
                "mode": "warn",
                "attestations": [
                    {
                        "predicateType": SLSA_PROVENANCE_V1,
                        "signers": [signer],
                        "slsa": {"builderIds": [BUILDER], "sourceRepositories": ["github.com/acme/app"]},
                    }
                ],
            },
            {"name": "tools", "images": [f"{registry.host}/audit-provenance/tool"], "namespaces": ["prod"]},
        ],
        extra={"trust": {"roots": [{"name": "acme", "file": "trusted_root.json"}]}},
    )
    api = registry.ref("audit-provenance/api", "1.0")
    hotfix = registry.ref("audit-provenance/api", "1.0-hotfix")
    cluster = tmp_path / "cluster.json"

    def on(repo: str, pushed: Pushed) -> str:
        return f"{registry.host}/{repo}@{pushed.digest}"

    cluster.write_text(
        kube_list(
            [
                *deployment_with_pods(
                    "api", api, namespace="prod", running=[on("audit-provenance/api", built)] * 2
                ),
                *deployment_with_pods(
                    "api", api, namespace="dev", running=[on("audit-provenance/api", built)]
                ),
                *deployment_with_pods(
                    "hotfix", hotfix, namespace="prod", running=[on("audit-provenance/api", handmade)]
                ),
                *deployment_with_pods(
                    "tool",
                    registry.ref("audit-provenance/tool", "2.0"),
                    namespace="prod",
                    running=[on("audit-provenance/tool", tool)],
                ),
            ]
        )
    )

    code, out, err = run("audit", "--policy", str(policy), str(cluster), "--view", "images")
    assert code == 0, err  # the provenance rule warns
    table = {r["IMAGE"]: r for r in rows(out)}
    name = f"{registry.host}/audit-provenance"
    assert sorted(table) == sorted(
        [f"{name}/api@{built.digest}", f"{name}/api@{handmade.digest}", f"{name}/tool@{tool.digest}"]
    )
    verified = table[f"{name}/api@{built.digest}"]
    assert (verified["PODS"], verified["WORKLOADS"], verified["NAMESPACES"]) == ("3", "2", "dev, prod")
    assert verified["PROVENANCE"] == (
        "dev: none: no governing rule requires SLSA provenance; prod: verified (rule release-provenance)"
    )
    missing = table[f"{name}/api@{handmade.digest}"]
    assert missing["PROVENANCE"].startswith("none: [attestation-missing] ")
    assert missing["PROVENANCE"].endswith("(rule release-provenance)")
    assert (
        table[f"{name}/tool@{tool.digest}"]["PROVENANCE"]
        == "none: no governing rule requires SLSA provenance"
    )
    assert "3 image(s); 3 without verified SLSA provenance" in out

    _, report = run.json("audit", "--policy", str(policy), str(cluster))
    images = {(i["name"], i["digest"]): i for i in report["images"]}
    api_row = images[(f"{name}/api", built.digest)]
    assert api_row["written"] == [api]
    assert api_row["provenance"] is False  # not in every namespace it runs in
    assert api_row["namespaces"] == [
        {
            "namespace": "dev",
            "outcome": "admitted",
            "provenance": False,
            "detail": "no governing rule requires SLSA provenance",
        },
        {"namespace": "prod", "outcome": "verified", "provenance": True, "rules": ["release-provenance"]},
    ]
    assert report["summary"]["withoutProvenance"] == 3
    # The workload view says the same of the hotfix: warned for its missing provenance.
    [hotfix_finding] = findings(report, "hotfix")
    assert (hotfix_finding["status"], hotfix_finding["failures"][0]["code"]) == (
        "warned",
        "attestation-missing",
    )


# --- shared, bounded lookups ------------------------------------------------------------------------


def big_cluster(registry: RegistryServer, *, images: int, pods_per_image: int) -> str:
    """``images`` Deployments in 5 namespaces, each with ``pods_per_image`` running pods."""
    pusher = registry.pusher()
    items: list[dict[str, Any]] = []
    for i in range(images):
        repo = f"audit-scale/app{i}"
        pushed = pusher.push_image(repo, "1.0", content=f"app {i}".encode())
        template = {
            "metadata": {"labels": {"app": f"app{i}"}},
            "spec": {"containers": [{"name": "app", "image": registry.ref(repo, "1.0")}]},
        }
        deployment = with_uid(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": f"app{i}", "namespace": f"team{i % 5}"},
                "spec": {"replicas": pods_per_image, "template": template},
            }
        )
        replicaset = replicaset_of(deployment, "h")
        running = {"app": f"{registry.host}/{repo}@{pushed.digest}"}
        items += [
            deployment,
            *(pod_of(replicaset, f"app{i}-h-{n}", running=running) for n in range(pods_per_image)),
        ]
    return kube_list(items)


def test_lookups_are_shared_per_image_across_thousands_of_pods(
    plain_registry: RegistryServer,
    tmp_path: Path,
    run: Audit,
) -> None:
    """5,000 pods over 50 images ask the registry exactly what 50 pods over the same images ask."""
    registry = plain_registry
    quarantine = tmp_path / "quarantine.yaml"
    quarantine.write_text(
        yaml.safe_dump({"apiVersion": "imagegate.dev/v1alpha1", "kind": "Quarantine", "entries": []})
    )
    policy = write_policy(
        tmp_path / "policy.yaml",
        registry.host,
        rules=[{"name": "apps", "images": [f"{registry.host}/audit-scale/**"]}],
        extra={"quarantine": {"files": [str(quarantine)], "registryMarkers": True}},
    )
    small, large = tmp_path / "small.json", tmp_path / "large.json"
    small.write_text(big_cluster(registry, images=50, pods_per_image=1))
    large.write_text(big_cluster(registry, images=50, pods_per_image=100))

    def requests_made(cluster: Path) -> tuple[Counter[str], dict[str, Any]]:
        """The requests the audit made, by image repository, as the registry logged them."""
        registry.requests()  # synchronises with the access log
        before = len(registry.access_log.entries())
        code, report = run.json("audit", "--policy", str(policy), str(cluster))
        assert code == 0, report
        registry.requests()
        made = Counter(
            match[1]
            for line in registry.access_log.entries()[before:]
            if (match := re.match(r"/v2/(audit-scale/app[0-9]+)/", line.path))
        )
        return made, report

    few, small_report = requests_made(small)
    many, large_report = requests_made(large)
    assert large_report["summary"]["pods"] == 5000
    assert small_report["summary"]["pods"] == 50
    assert many == few
    # Each image is looked up once, the same way: its tag, its manifest (is it an index?), its markers;
    # one of them also asked the registry whether it has the referrers API (once per host, not per image).
    assert sorted(few) == sorted(f"audit-scale/app{i}" for i in range(50))
    each = min(few.values())
    assert each >= 3
    assert sorted(few.values()) == [each] * 49 + [each + 1]
    assert large_report["summary"]["lookups"] == small_report["summary"]["lookups"] == 50


def test_progress_is_reported_on_stderr_when_asked(
    plain_registry: RegistryServer,
    tmp_path: Path,
    run: Audit,
) -> None:
    registry = plain_registry
    policy = write_policy(
        tmp_path / "policy.yaml",
        registry.host,
        rules=[{"name": "apps", "images": [f"{registry.host}/audit-scale/**"]}],
    )
    cluster = tmp_path / "cluster.json"
    cluster.write_text(big_cluster(registry, images=50, pods_per_image=1))
    code, _, err = run("audit", "--policy", str(policy), str(cluster), "--progress")
    assert code == 0
    lines = err.splitlines()
    assert all(
        re.fullmatch(r"imagegate audit: looked up \d+/50 images \(0 failed\) in [0-9.]+s", line)
        for line in lines
    )
    assert len(lines) >= 2
    assert lines[-1].startswith("imagegate audit: looked up 50/50 images")
    # stderr is not a terminal here: without --progress, nothing.
    assert run("audit", "--policy", str(policy), str(cluster))[2] == ""


def test_the_time_budget_bounds_the_audit_and_what_was_not_looked_up_fails_closed(
    tmp_path: Path, run: Audit
) -> None:
    with hanging_server() as server:
        policy = write_policy(
            tmp_path / "policy.yaml", server.host, rules=[{"name": "apps", "images": [f"{server.host}/**"]}]
        )
        cluster = tmp_path / "cluster.json"
        cluster.write_text(
            kube_list(
                [
                    kubectl_create("deployment", f"app{i}", f"--image={server.ref(f'app{i}', '1.0')}")
                    for i in range(12)
                ]
            )
        )
        code, out, err = run(
            "audit",
            "--policy",
            str(policy),
            str(cluster),
            "--concurrency",
            "2",
            "--lookup-timeout",
            "0.3",
            "--timeout",
            "1",
            "-o",
            "json",
        )
    assert code == 1
    report = json.loads(out)
    summary = report["summary"]
    assert summary["notLookedUp"] > 0
    assert 2 <= summary["lookups"] < 12
    assert summary["lookups"] + summary["notLookedUp"] == 12
    incomplete = f"warning: the audit is incomplete: {summary['notLookedUp']} lookup(s) were not made"
    assert f"{incomplete} within --timeout 1s" in err
    messages = [f["failures"][0] for w in report["workloads"] for f in w["findings"]]
    assert {m["code"] for m in messages} == {"registry-error"}
    assert (
        sum("not looked up: the audit's time budget (--timeout 1s) ran out" in m["message"] for m in messages)
        == (summary["notLookedUp"])
    )


# --- inputs, whole objects and usage ----------------------------------------------------------------


def test_manifests_from_a_directory_and_stdin_with_objects_judged_as_a_whole(
    tmp_path: Path, run: Audit, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No registry needed: ungoverned images are never looked up, too many images deny before any lookup."""
    policy = write_policy(tmp_path / "policy.yaml", "registry.example", rules=[])
    manifests = tmp_path / "manifests" / "team"
    manifests.mkdir(parents=True)
    crowded = kubectl_create(
        "deployment", "crowded", "--image=nginx:1.25", "--image=redis:7", "--image=busybox:1.36"
    )
    empty = kubectl_create("deployment", "empty", "--image=nginx:1.25")
    empty["spec"]["template"]["spec"]["containers"] = []
    (manifests / "apps.yaml").write_text(yaml.safe_dump_all([crowded, empty]))
    monkeypatch.setenv("IMAGEGATE_MAX_IMAGES", "2")
    monkeypatch.setattr(
        "sys.stdin",
        io.TextIOWrapper(
            io.BytesIO(kube_list([kubectl_create("job", "once", "--image=busybox:1.36")]).encode())
        ),
    )
    code, report = run.json("audit", "--policy", str(policy), str(tmp_path / "manifests"), "-")
    assert code == 1
    workloads = {w["name"]: w for w in report["workloads"]}
    [whole] = workloads["crowded"]["findings"]
    assert whole["source"] == "object"
    assert whole["failures"] == [
        {
            "code": "too-many-images",
            "mode": "enforce",
            "message": "the object has 3 distinct images, more than the 2 imagegate checks per object "
            "(IMAGEGATE_MAX_IMAGES): split it, or raise the limit",
        }
    ]
    assert workloads["empty"]["notChecked"] == [
        "Deployment empty: the pod spec at /spec/template/spec has no containers and no image volumes"
    ]
    [unmatched] = workloads["once"]["findings"]
    assert unmatched["failures"][0]["code"] == "registry-not-allowed"
    assert report["summary"]["lookups"] == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rule-mode", "nomode"], "expected RULE=MODE with MODE one of enforce, warn, audit: 'nomode'"),
        (["--rule-mode", "r=strict"], "expected RULE=MODE with MODE one of enforce, warn, audit: 'r=strict'"),
        (["--timeout", "0"], "'0' must be more than 0 seconds"),
        (["--concurrency", "x"], "not a number: 'x'"),
        (["--mode", "loud"], "invalid choice: 'loud'"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, run: Audit, argv: list[str], message: str) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "registry.example", rules=[])
    (tmp_path / "cluster.json").write_text(kube_list([]))
    code, out, err = run("audit", "--policy", str(policy), str(tmp_path / "cluster.json"), *argv)
    assert (code, out) == (2, "")
    assert message in err


def test_input_and_policy_errors_exit_2_and_an_empty_cluster_passes(tmp_path: Path, run: Audit) -> None:
    policy = write_policy(tmp_path / "policy.yaml", "registry.example", rules=[])
    (tmp_path / "empty.json").write_text(kube_list([]))
    (tmp_path / "broken.json").write_text("{not json: [")
    code, out, err = run("audit", "--policy", str(policy), str(tmp_path / "missing.json"))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {tmp_path / 'missing.json'}: cannot be read: No such file or directory")
    code, out, err = run("audit", "--policy", str(policy), str(tmp_path / "broken.json"))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {tmp_path / 'broken.json'}: not YAML or JSON")
    code, out, err = run("audit", "--policy", str(tmp_path / "nope.yaml"), str(tmp_path / "empty.json"))
    assert code == 2
    assert "nope.yaml" in err
    code, out, err = run("audit", "--policy", str(policy), str(tmp_path / "empty.json"))
    assert (code, err) == (0, "")
    assert "checked 0 workload(s) with 0 pod(s) of 0 object(s)" in out
