"""deploy/trust-refresh: the CronJob that keeps the trust ConfigMap fresh renders, validates and runs.

Its command is run as the manifest writes it (plus a local TUF repository and its root, since the test
cannot reach Sigstore) against a TLS stand-in of the API server that holds the base's trust ConfigMap.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.deploy import (
    DEPLOY,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    kinds,
    kustomize,
    one,
    selector_matches,
)
from tests.support.fake_kube_api import FakeKubeApi
from tests.support.fake_sigstore import FakeSigstore
from tests.support.tuf_repository import TufRepository
from webhook.cli import main
from webhook.trust_refresh import configmap

NAME = "imagegate-trust-refresh"
TRUST_FILE = "/etc/imagegate/trust/trusted_root.json"


@pytest.fixture(scope="module")
def refresh_docs() -> list[dict[str, Any]]:
    return kustomize(DEPLOY / "trust-refresh")


@pytest.fixture(scope="module")
def base_docs() -> list[dict[str, Any]]:
    return kustomize(DEPLOY / "base")


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "CronJob", NAME)["spec"]["jobTemplate"]["spec"]["template"]  # type: ignore[no-any-return]


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _pod(docs)["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def _option(arguments: list[str], name: str) -> str:
    return arguments[arguments.index(name) + 1]


def _trust_configmap(base_docs: list[dict[str, Any]]) -> tuple[str, str]:
    """The ConfigMap (name) and key the server reads TRUST_FILE from, as the base mounts it."""
    pod = one(base_docs, "Deployment", "imagegate")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    directory, _, key = TRUST_FILE.rpartition("/")
    (mount,) = [m for c in pod["containers"] for m in c["volumeMounts"] if m["mountPath"] == directory]
    return volumes[mount["name"]]["configMap"]["name"], key


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_kubernetes(refresh_docs: list[dict[str, Any]], version: str) -> None:
    assert sorted(d["kind"] for d in refresh_docs) == [
        "CronJob",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    for doc in refresh_docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for {version}: {error.message}")
        assert doc["metadata"]["namespace"] == NAMESPACE


def test_rbac_allows_patching_only_the_trust_configmap(
    refresh_docs: list[dict[str, Any]], base_docs: list[dict[str, Any]]
) -> None:
    trust_configmap, _ = _trust_configmap(base_docs)
    assert one(base_docs, "ConfigMap", trust_configmap)
    role = one(refresh_docs, "Role", NAME)
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [trust_configmap],
            "verbs": ["get", "patch"],
        }
    ]
    binding = one(refresh_docs, "RoleBinding", NAME)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME}
    account = _pod(refresh_docs)["spec"]["serviceAccountName"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]
    assert not kinds(refresh_docs, "ClusterRole") and not kinds(refresh_docs, "ClusterRoleBinding")
    # The server's own account still has no API access, and the token is only mounted for this pod.
    server_pod = one(base_docs, "Deployment", "imagegate")["spec"]["template"]["spec"]
    assert account != server_pod["serviceAccountName"]
    assert one(refresh_docs, "ServiceAccount", account)["automountServiceAccountToken"] is False
    assert _pod(refresh_docs)["spec"]["automountServiceAccountToken"] is True


def test_the_job_updates_the_configmap_and_key_the_server_reads(
    refresh_docs: list[dict[str, Any]], base_docs: list[dict[str, Any]]
) -> None:
    container = _container(refresh_docs)
    assert container["command"] == ["imagegate"]
    arguments = container["args"]
    assert arguments[:2] == ["trust", "refresh"]
    trust_configmap, key = _trust_configmap(base_docs)
    assert _option(arguments, "--configmap") == f"{NAMESPACE}/{trust_configmap}"
    configured_key = _option(arguments, "--key") if "--key" in arguments else "trusted_root.json"
    assert configured_key == key
    assert key in one(base_docs, "ConfigMap", trust_configmap)["data"]
    # Same image as the server: one `images:` entry of an overlay pins both.
    (server,) = one(base_docs, "Deployment", "imagegate")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == server["image"]


def test_the_pod_is_hardened_and_writes_only_to_empty_dirs(refresh_docs: list[dict[str, Any]]) -> None:
    pod = _pod(refresh_docs)["spec"]
    container = _container(refresh_docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][part])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert set(mounts) == {_option(container["args"], "--metadata-dir"), "/tmp"}
    assert all("emptyDir" in volume and volume["emptyDir"].get("sizeLimit") for volume in mounts.values())


def test_runs_one_at_a_time_within_a_deadline(refresh_docs: list[dict[str, Any]]) -> None:
    cronjob = one(refresh_docs, "CronJob", NAME)["spec"]
    assert cronjob["concurrencyPolicy"] == "Forbid"
    job = cronjob["jobTemplate"]["spec"]
    timeout = float(_option(_container(refresh_docs)["args"], "--timeout"))
    # Every attempt can use its whole --timeout before the Job's own deadline cuts it off.
    assert job["activeDeadlineSeconds"] >= (job["backoffLimit"] + 1) * timeout
    assert _pod(refresh_docs)["spec"]["restartPolicy"] in ("Never", "OnFailure")


def test_the_server_objects_never_select_the_job_pod(
    refresh_docs: list[dict[str, Any]], base_docs: list[dict[str, Any]]
) -> None:
    labels = _pod(refresh_docs)["metadata"]["labels"]
    selectors = [
        {"matchLabels": one(base_docs, "Service", "imagegate")["spec"]["selector"]},
        one(base_docs, "PodDisruptionBudget", "imagegate")["spec"]["selector"],
        one(base_docs, "NetworkPolicy", "imagegate")["spec"]["podSelector"],
        one(base_docs, "Deployment", "imagegate")["spec"]["selector"],
    ]
    assert not any(selector_matches(selector, labels) for selector in selectors)
    policy = one(refresh_docs, "NetworkPolicy", NAME)["spec"]
    assert selector_matches(policy["podSelector"], labels)
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy  # no connections in
    ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 6443)}


@pytest.mark.sigstore
def test_the_jobs_command_refreshes_the_configmap(
    refresh_docs: list[dict[str, Any]],
    base_docs: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trust_configmap, key = _trust_configmap(base_docs)
    shipped = one(base_docs, "ConfigMap", trust_configmap)["data"][key]
    api = FakeKubeApi(tmp_path / "kube", namespace=NAMESPACE, name=trust_configmap, data={key: shipped})
    # The next root: the shipped one plus a new transparency log (here a test Sigstore's).
    newer = json.loads(shipped)
    new_log = FakeSigstore.create(tmp_path / "sigstore", name="rekor-next").trusted_root()["tlogs"][0]
    newer["tlogs"].append(new_log)
    served = json.dumps(newer, indent=2).encode()
    repository = TufRepository(tmp_path / "repository")
    repository.publish({"trusted_root.json": served})
    root_file = tmp_path / "root.json"
    root_file.write_bytes(repository.initial_root)
    arguments = list(_container(refresh_docs)["args"])
    arguments[arguments.index("--metadata-dir") + 1] = str(tmp_path / "tuf")
    stdout = io.StringIO()
    with repository.serve() as server, api.serve() as (host, port):
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        monkeypatch.setattr(configmap, "SERVICE_ACCOUNT_DIR", api.service_account_dir)
        with contextlib.redirect_stdout(stdout):
            # Sigstore's CDN is out of reach here: the same command against a local repository.
            code = main([*arguments, "--url", server.url, "--root", str(root_file)])

    assert code == 0
    assert api.data[key] == served.decode()
    new_log_id = base64.b64decode(new_log["logId"]["keyId"]).hex()
    assert stdout.getvalue().splitlines()[1:] == [
        f"  added    tlog  {new_log_id} https://rekor.rekor-next.invalid  valid from "
        f"{new_log['publicKey']['validFor']['start']}"
    ]


def test_the_guides_recipe_pins_the_jobs_image(static_certs: Any) -> None:
    guide = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", guide, flags=re.DOTALL)
    marker = "# trust refresh: deploy/overlays/production/kustomization.yaml"
    (recipe,) = [b for b in blocks if b.startswith(marker)]
    digest = "sha256:" + "cd" * 32
    kustomization = yaml.safe_load(recipe.replace("sha256:<digest>", digest))
    assert "../../trust-refresh" in kustomization["resources"]
    kustomization["resources"] = [
        "../static-certs" if r == "../cert-manager" else r for r in kustomization["resources"]
    ]
    production = static_certs.deploy / "overlays" / "production-refresh"
    production.mkdir()
    (production / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))

    docs = kustomize(production)

    pinned = f"registry.acme.test/platform/imagegate@{digest}"
    server = one(docs, "Deployment", "imagegate")["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in server] == [pinned]
    assert _container(docs)["image"] == pinned
    for doc in docs:
        if doc["kind"] not in ("Issuer", "Certificate"):
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[0], strict=True)


def test_the_guides_refresh_commands_parse() -> None:
    from webhook.cli import build_parser

    guide = (DEPLOY / "README.md").read_text()
    commands = re.findall(r"^imagegate trust refresh [^\n]*$", guide, flags=re.MULTILINE)
    assert len(commands) >= 2
    parser = build_parser("trust")
    for command in commands:
        arguments = shlex.split(command.split("#")[0])[1:]
        parsed = parser.parse_args(arguments)
        assert parsed.func.__name__ == "run_refresh", command
