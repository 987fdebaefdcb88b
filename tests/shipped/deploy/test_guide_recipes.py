"""The operator guide's overlay, credentials, policy-check and quarantine recipes, run as written.

The shell blocks of deploy/README.md run in bash in a copy of the repository, with the real
``imagegate`` and ``kubectl`` (kustomize, ``create --dry-run=client``). Only the commands that need a
cluster (``kubectl apply``, ``logs``) are recorded instead of run; ``kubectl kustomize`` then renders the
overlay the recipes built, exactly as ``kubectl apply -k`` would send it.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.cluster import kube_list, kubectl_create, pod_of, replicaset_of
from tests.support.deploy import (
    CHART,
    DEPLOY,
    REPO,
    helm_render,
    kinds,
    kustomize,
    one,
    pod_files,
    server_container,
)
from tests.support.guide_shell import Shell, block, block_containing

DIGEST = "sha256:" + "ab" * 32
START = "O=deploy/overlays/production\nmkdir"
PINNED = "nginx@sha256:4c0fdaa8b6341bfdeca5f18f7837462c80cff90527ee35ef185571e1c327beac"


@pytest.fixture
def shell(tmp_path: Path) -> Shell:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(DEPLOY, root / "deploy", ignore=shutil.ignore_patterns("certs"))
    shutil.copytree(REPO / "policies", root / "policies")
    return Shell(root)


def write_overlay_kustomization(shell: Shell) -> Path:
    text = block("yaml", "# deploy/overlays/production/kustomization.yaml")
    path = shell.root / text.splitlines()[0].removeprefix("# ").strip()
    path.write_text(text.replace("sha256:<digest printed by the push>", DIGEST))
    return path


def test_the_overlay_recipe_builds_an_overlay_that_lints_and_renders(shell: Shell) -> None:
    start = block("sh", START)
    check = block("sh", "imagegate lint --root $O")
    shell.run(start)
    write_overlay_kustomization(shell)
    out = shell.run(start + check)
    assert out.strip().endswith("renders")

    docs = kustomize(shell.root / "deploy" / "overlays" / "production")
    deployment = one(docs, "Deployment", "imagegate")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        f"registry.acme.test/platform/imagegate@{DIGEST}"
    )
    files = pod_files(docs)
    assert files["/etc/imagegate/policy/policy.yaml"] == (DEPLOY / "base" / "policy.yaml").read_bytes()
    assert (
        files["/etc/imagegate/registry/config.json"]
        == (DEPLOY / "base" / "registry" / "config.json").read_bytes()
    )


def test_the_credentials_recipe_writes_what_the_overlay_mounts(shell: Shell) -> None:
    shell.run(block("sh", START))
    write_overlay_kustomization(shell)
    shell.run(block("sh", "kubectl create secret docker-registry"))
    overlay = shell.root / "deploy" / "overlays" / "production"
    written = (overlay / "registry" / "config.json").read_bytes()
    auth = yaml.safe_load(written)["auths"]["registry.acme.test"]
    assert base64.b64decode(auth["auth"]) == b"imagegate-ro:s3cret-token"

    docs = kustomize(overlay)
    secret = one(docs, "Secret", "imagegate-registry")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert pod_files(docs)["/etc/imagegate/registry/config.json"] == written
    # The policy lints against the overlay's credentials, which shadow the base's.
    shell.run(block("sh", START) + block("sh", "imagegate lint --root $O"))


def test_the_policy_check_recipe_lints_and_evaluates_the_overlay(shell: Shell) -> None:
    shell.run(block("sh", START))
    write_overlay_kustomization(shell)
    lint_and_apply = block("sh", "P=deploy/overlays/production\nimagegate lint --root $P")
    shell.run(lint_and_apply)
    assert shell.cluster_calls()[0] == "apply -k deploy/overlays/production"

    # The evaluate recipe, on a manifest as `kubectl create` writes it (pinned: no registry needed).
    shell.run(f"kubectl create deployment web --image={PINNED} --dry-run=client -o yaml > my-app.yaml")
    out = shell.run(block_containing("sh", "imagegate evaluate --policy $L/policy.yaml"))
    assert "result: allowed" in out, out
    broken = shell.root / "deploy" / "overlays" / "production" / "policy.yaml"
    broken.write_text(
        broken.read_text().replace("/etc/imagegate/registry/config.json", "/etc/imagegate/registry/gone.json")
    )
    with pytest.raises(AssertionError, match=r"registry/gone\.json' does not exist"):
        shell.run(lint_and_apply)


def test_the_quarantine_recipe_adds_an_entry_the_pod_sees(shell: Shell) -> None:
    shell.run(block("sh", START))
    path = write_overlay_kustomization(shell)
    kustomization: dict[str, Any] = yaml.safe_load(path.read_text())
    kustomization["configMapGenerator"] += yaml.safe_load(block("yaml", "# add to configMapGenerator"))
    path.write_text(yaml.safe_dump(kustomization))
    recipe = block("sh", "P=deploy/overlays/production; Q=")
    digest = "sha256:" + "cd" * 32
    shell.run(recipe.replace("sha256:<digest>", digest))
    assert shell.cluster_calls() == ["apply -k deploy/overlays/production"]

    docs = kustomize(shell.root / "deploy" / "overlays" / "production")
    listed = yaml.safe_load(pod_files(docs)["/etc/imagegate/quarantine/quarantine.yaml"] or b"")
    assert [(e["digest"], e["reason"]) for e in listed["entries"]] == [
        (digest, "CVE-2026-1234 in base layer")
    ]


def test_the_audit_recipe_judges_what_kubectl_get_lists(shell: Shell) -> None:
    shell.run(block("sh", START))
    write_overlay_kustomization(shell)
    shell.run(f"kubectl create deployment web --image={PINNED} --dry-run=client -o yaml > my-app.yaml")
    local_copy = block_containing("sh", "imagegate evaluate --policy $L/policy.yaml")
    # What the cluster runs: a Deployment pinned by digest (decided without a registry) and its pods.
    web = kubectl_create("deployment", "web", f"--image={PINNED}", namespace="shop")
    replicaset = replicaset_of(web, "7d9f")
    running = {"nginx": f"docker.io/library/{PINNED}"}
    listing = shell.root / ".cluster-get.json"
    listing.write_text(
        kube_list([web, *(pod_of(replicaset, f"web-7d9f-{i}", running=running) for i in range(2))])
    )
    shell.env["CLUSTER_GET"] = str(listing)
    recipe = block("sh", "kubectl get pods,deployments").replace("<rule>", "public-registries")
    out = shell.run(local_copy + recipe)
    assert shell.cluster_calls()[-1] == "get pods,deployments,statefulsets,daemonsets,cronjobs -A -o json"
    assert out.count("checked 1 workload(s) with 2 pod(s) of 3 object(s)") == 2, out
    assert "judged with rule public-registries: enforce" in out
    assert f"docker.io/library/{PINNED}" in out  # the images view
    report = json.loads((shell.root / "audit.json").read_text())
    assert report["summary"]["status"] == "allowed"
    assert [(w["kind"], w["name"], w["objects"]) for w in report["workloads"]] == [
        ("Deployment", "web", {"Deployment": 1, "Pod": 2})
    ]


# --- Install with Helm ---------------------------------------------------------------------------------


def merged(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of value layers: maps merge key by key, anything else is replaced."""
    result = dict(base)
    for key, value in update.items():
        result[key] = (
            merged(result[key], value)
            if isinstance(value, dict) and isinstance(result.get(key), dict)
            else value
        )
    return result


def replay(shell: Shell) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each recorded `helm install|upgrade`, rendered by Helm's engine with the values it would use."""
    from helm_python import parse_set_file, parse_set_string

    releases: dict[str, dict[str, Any]] = {}
    renders = []
    for argv in shell.helm_calls():
        verb, *rest = argv
        if verb == "uninstall":
            continue
        assert verb in ("install", "upgrade"), argv
        positional, values, namespace, reuse = [], {}, "default", False
        args = iter(rest)
        for arg in args:
            if arg in ("-n", "--namespace"):
                namespace = next(args)
            elif arg == "--set":
                values = merged(values, parse_set_string(next(args)))
            elif arg == "--set-file":
                values = merged(values, parse_set_file(next(args)))
            elif arg in ("-f", "--values"):
                values = merged(values, yaml.safe_load((shell.root / next(args)).read_text()) or {})
            elif arg == "--reuse-values":
                reuse = True
            elif arg in ("--create-namespace", "--wait", "--install"):
                pass
            else:
                assert not arg.startswith("-"), f"the replay does not know {arg}"
                positional.append(arg)
        release, chart = positional
        assert chart == str(CHART.relative_to(REPO)), chart
        if reuse:
            values = merged(releases[release], values)
        releases[release] = values
        renders.append((verb, helm_render(values, release=release, namespace=namespace)))
    return renders


def test_the_helm_install_holds_the_webhooks_back_until_the_server_is_up(shell: Shell) -> None:
    recipe = block("sh", "helm install imagegate")
    shell.run(recipe.replace("sha256:<digest>", DIGEST))
    (first, docs), (second, upgraded) = replay(shell)
    assert (first, second) == ("install", "upgrade")
    assert not [d for d in docs if d["kind"].endswith("WebhookConfiguration")]
    assert server_container(docs)["image"] == f"registry.acme.test/platform/imagegate@{DIGEST}"
    # --reuse-values keeps the image; the upgrade only adds the webhooks.
    assert server_container(upgraded)["image"] == server_container(docs)["image"]
    assert {d["kind"] for d in upgraded} - {d["kind"] for d in docs} == {
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
    labelled = [c for c in shell.cluster_calls() if c.startswith("label namespace imagegate")]
    assert labelled and "pod-security.kubernetes.io/enforce=restricted" in labelled[0]


def test_the_helm_recipe_without_cert_manager_serves_the_generated_certificate(shell: Shell) -> None:
    recipe = block("sh", "imagegate certs --namespace imagegate --service imagegate --out certs")
    (shell.root / "values-production.yaml").write_text(yaml.safe_dump({"image": {"digest": DIGEST}}))
    shell.run(recipe)
    assert shell.cluster_calls() == ["-n imagegate apply -f certs/secret.yaml"]
    ((_verb, docs),) = replay(shell)
    secret = yaml.safe_load((shell.root / "certs" / "secret.yaml").read_text())
    ca = (shell.root / "certs" / "ca.crt").read_bytes()
    assert not kinds(docs, "Certificate")
    volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == secret["metadata"]["name"]
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        assert base64.b64decode(one(docs, kind)["webhooks"][0]["clientConfig"]["caBundle"]) == ca
    assert server_container(docs)["image"].endswith(DIGEST)


def test_the_helm_uninstall_removes_the_webhooks_first() -> None:
    text = (DEPLOY / "README.md").read_text()
    section = text[text.index("## Install with Helm") : text.index("## Configure")]
    disable = section.index("--set webhook.enabled=false`,")
    assert disable < section.index("helm uninstall imagegate")
