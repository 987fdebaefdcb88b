"""Helpers for the installation tests: paths, `kubectl kustomize`, lookups in rendered manifests, and the
fixtures ``static_certs``, ``rendered`` and ``pod_view`` (registered by tests/conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NAMESPACE = "imagegate"
SERVICE = "imagegate"
# Kubernetes versions the manifests must be valid for (kubernetes_validate schema names).
KUBERNETES_VERSIONS = ("1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0")


def require_kubectl() -> str:
    """kubectl (1.27 or later: kustomize v5) renders the kustomizations offline; missing is a CI failure.

    Debian's own kubernetes-client is too old (1.20), so `make` cannot install it: the development and CI
    machines' image ships one (google-cloud-cli's kubectl). Elsewhere install kubectl from the Kubernetes
    project's apt repository or point KUBECTL at a binary.
    """
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl is not on PATH (nor in KUBECTL): the deploy tests render manifests with "
            "`kubectl kustomize`; install kubectl 1.27+ (the Kubernetes apt repository) or set KUBECTL"
        )
    return kubectl


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [require_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


CHART = DEPLOY / "chart" / "imagegate"
# Labels Helm charts add by convention (release, tool, versions); the kustomize base has none of them.
HELM_LABELS = frozenset(
    {
        "app.kubernetes.io/instance",
        "app.kubernetes.io/managed-by",
        "app.kubernetes.io/version",
        "helm.sh/chart",
    }
)


def helm_render(
    values: dict[str, Any] | None = None, *, release: str = "imagegate", namespace: str = "imagegate"
) -> list[dict[str, Any]]:
    """The chart rendered by Helm's own engine (libhelm through helm-python-sdk), offline, as `helm template`
    would: the values are checked against values.schema.json first. Returns the objects, NOTES.txt aside."""
    from helm_python import Chart

    with Chart.load(CHART) as chart:
        rendered = chart.render(values or {}, name=release, namespace=namespace)
    docs: list[dict[str, Any]] = []
    for template, text in sorted(rendered.items()):
        if template.endswith(".yaml"):
            docs += [doc for doc in yaml.safe_load_all(text) if doc]
    return docs


def without_helm_labels(value: Any, key: str | None = None) -> Any:
    """``value`` with HELM_LABELS removed from every label set and selector in it."""
    if isinstance(value, dict):
        result = {k: without_helm_labels(v, k) for k, v in value.items()}
        is_label_set = key in ("labels", "matchLabels") or (
            key == "selector" and all(isinstance(v, str) for v in value.values())
        )
        if is_label_set:
            result = {k: v for k, v in result.items() if k not in HELM_LABELS}
        return result
    if isinstance(value, list):
        return [without_helm_labels(item) for item in value]
    return value


def by_identity(docs: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for doc in docs:
        identity = (doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"])
        assert identity not in found, f"two objects {identity}"
        found[identity] = doc
    return found


@dataclass(frozen=True)
class StaticCerts:
    """A copy of deploy/ whose static-certs overlay holds the output of `imagegate certs`."""

    deploy: Path
    out: Path
    stdout: str

    @property
    def overlay(self) -> Path:
        return self.deploy / "overlays" / "static-certs"


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def server_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]  # type: ignore[no-any-return]


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Kubernetes LabelSelector semantics (matchLabels AND matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        assert op in {"In", "NotIn", "Exists", "DoesNotExist"}, op
    return True


def namespace_labels(name: str) -> dict[str, str]:
    """The labels every namespace carries from the API server itself (since Kubernetes 1.21)."""
    return {"kubernetes.io/metadata.name": name}


# Keys of a Secret that cert-manager writes for a Certificate (content exists only in a cluster).
CERT_MANAGER_SECRET_KEYS = ("tls.crt", "tls.key", "ca.crt")


def _object_files(obj: dict[str, Any]) -> dict[str, bytes | None]:
    files: dict[str, bytes | None] = {}
    for key, value in (obj.get("data") or {}).items():
        files[key] = base64.b64decode(value) if obj["kind"] == "Secret" else value.encode()
    for key, value in (obj.get("stringData") or {}).items():
        files[key] = value.encode()
    for key, value in (obj.get("binaryData") or {}).items():
        files[key] = base64.b64decode(value)
    return files


def pod_files(docs: list[dict[str, Any]]) -> dict[str, bytes | None]:
    """The files the server container sees under its ConfigMap/Secret mounts, by absolute path.

    Content is None for a Secret that cert-manager creates in the cluster (its keys are known).
    """
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    namespace = one(docs, "Deployment")["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    issued = {c["spec"]["secretName"] for c in kinds(docs, "Certificate")}
    files: dict[str, bytes | None] = {}
    for mount in server_container(docs)["volumeMounts"]:
        volume = volumes[mount["name"]]
        assert "subPath" not in mount, "subPath mounts never receive ConfigMap/Secret updates"
        if "configMap" in volume:
            source = volume["configMap"]
            content = _object_files(one(docs, "ConfigMap", source["name"]))
        elif "secret" in volume:
            source = volume["secret"]
            name = source["secretName"]
            found = [
                d
                for d in kinds(docs, "Secret")
                if d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace
            ]
            if found:
                content = _object_files(found[0])
            elif name in issued:
                content = dict.fromkeys(CERT_MANAGER_SECRET_KEYS)
            else:
                continue
        else:
            continue
        items = source.get("items")
        if items:
            content = {item["path"]: content[item["key"]] for item in items}
        for key, data in content.items():
            files[f"{mount['mountPath'].rstrip('/')}/{key}"] = data
    return files


MOUNT_ROOT = "/etc/imagegate/"


@dataclass(frozen=True)
class PodView:
    """The server pod's mounted files written below ``root`` (``/etc/imagegate/x`` -> ``root/x``), with the
    container's arguments and environment rewritten to match."""

    root: Path
    args: list[str]
    env: dict[str, str]

    def local(self, path: str) -> Path:
        assert path.startswith(MOUNT_ROOT), path
        return self.root / path[len(MOUNT_ROOT) :]


def localise(value: str, root: Path) -> str:
    return value.replace(MOUNT_ROOT, f"{root}/")


def materialise(docs: list[dict[str, Any]], root: Path) -> PodView:
    for path, data in pod_files(docs).items():
        assert data is not None, path
        assert path.startswith(MOUNT_ROOT), path
        target = root / path[len(MOUNT_ROOT) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        # The policy names files by their in-pod absolute paths: point them at this copy.
        if target.suffix in (".yaml", ".yml"):
            data = localise(data.decode(), root).encode()
        target.write_bytes(data)
    container = server_container(docs)
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    return PodView(root=root, args=[localise(a, root) for a in container["args"]], env=env)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def static_certs(tmp_path_factory: pytest.TempPathFactory) -> StaticCerts:
    """A copy of deploy/ with `imagegate certs` output in overlays/static-certs/certs."""
    from webhook.cli import main

    root = tmp_path_factory.mktemp("deploy-copy")
    deploy = root / "deploy"
    shutil.copytree(DEPLOY, deploy, ignore=shutil.ignore_patterns("certs"))
    out = deploy / "overlays" / "static-certs" / "certs"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main(["certs", "--namespace", NAMESPACE, "--service", SERVICE, "--out", str(out)])
    assert code == 0
    return StaticCerts(deploy=deploy, out=out, stdout=stdout.getvalue())


@pytest.fixture(scope="session")
def rendered(static_certs: StaticCerts) -> dict[str, list[dict[str, Any]]]:
    """Every kustomization of deploy/, rendered: the base and each overlay."""
    return {
        "base": kustomize(DEPLOY / "base"),
        "cert-manager": kustomize(DEPLOY / "overlays" / "cert-manager"),
        "static-certs": kustomize(static_certs.overlay),
    }


@pytest.fixture(scope="session")
def pod_view(rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> PodView:
    """The files the server pod of the static-certs installation sees, laid out in a temporary directory."""
    return materialise(rendered["static-certs"], tmp_path_factory.mktemp("etc-imagegate"))
