"""The kustomizations in deploy/ render, validate against Kubernetes 1.29-1.33, and keep their invariants."""

from __future__ import annotations

import base64
import copy
import json
import re
import textwrap
from pathlib import PurePosixPath
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from tests.support.deploy import (
    DEPLOY,
    KUBERNETES_VERSIONS,
    NAMESPACE,
    SERVICE,
    kinds,
    kustomize,
    namespace_labels,
    one,
    pod_files,
    selector_matches,
    server_container,
)

OVERLAYS = ("base", "cert-manager", "static-certs")
DEPLOYABLE = ("cert-manager", "static-certs")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
CERT_MANAGER_KINDS = {"Issuer", "Certificate"}

# (apiGroup, resource) pairs that carry pod specs: each must be sent to both webhooks on CREATE and UPDATE.
COVERED = {
    ("", "pods"),
    ("", "pods/ephemeralcontainers"),
    ("", "replicationcontrollers"),
    ("", "podtemplates"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
}


def webhooks(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    hooks = one(docs, kind, "imagegate")["webhooks"]
    assert hooks, f"{kind} has no webhooks"
    return hooks  # type: ignore[no-any-return]


def pod_template(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return one(docs, "Deployment", "imagegate")["spec"]["template"]  # type: ignore[no-any-return]


def container_port(docs: list[dict[str, Any]], port: int | str) -> int:
    """Resolves a (possibly named) port of the server container to its number."""
    for p in server_container(docs)["ports"]:
        if port in (p["containerPort"], p.get("name")):
            return int(p["containerPort"])
    raise AssertionError(f"port {port!r} is not a port of the server container")


# --- schema validation ---------------------------------------------------------------------------------


def test_kubernetes_validate_offers_the_supported_versions() -> None:
    offered = set(kubernetes_validate.utils.all_versions())
    assert set(KUBERNETES_VERSIONS) <= offered


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_for_kubernetes(
    rendered: dict[str, list[dict[str, Any]]], version: str
) -> None:
    # Objects that several overlays share identically are validated once (each call costs ~0.1 s).
    unique: dict[str, tuple[str, dict[str, Any]]] = {}
    for overlay in OVERLAYS:
        for doc in rendered[overlay]:
            unique.setdefault(json.dumps(doc, sort_keys=True), (overlay, doc))
    checked: dict[str, set[str]] = {overlay: set() for overlay in OVERLAYS}
    for overlay, doc in unique.values():
        if doc["kind"] in CERT_MANAGER_KINDS:
            continue  # custom resources: checked in test_cert_manager_resources_are_well_formed
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(
                f"{overlay}: {doc['kind']}/{doc['metadata']['name']} invalid for {version}: "
                f"{error.message} at {list(error.path)}"
            )
        checked[overlay].add(doc["kind"])
    assert set().union(*checked.values()) >= {
        "Namespace",
        "ServiceAccount",
        "PriorityClass",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        *WEBHOOK_KINDS,
    }
    # Each overlay changes the webhook configurations (caBundle, annotations): those were validated too.
    for overlay in DEPLOYABLE:
        assert set(WEBHOOK_KINDS) <= checked[overlay], overlay


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_strict_validation_rejects_an_unknown_field(
    rendered: dict[str, list[dict[str, Any]]], version: str
) -> None:
    deployment = copy.deepcopy(one(rendered["base"], "Deployment", "imagegate"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, version, strict=True)


def test_everything_namespaced_lives_in_the_imagegate_namespace(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    cluster_scoped = {"Namespace", "PriorityClass", *WEBHOOK_KINDS}
    for overlay in OVERLAYS:
        for doc in rendered[overlay]:
            if doc["kind"] in cluster_scoped:
                assert "namespace" not in doc["metadata"]
            else:
                assert doc["metadata"].get("namespace") == NAMESPACE, (
                    overlay,
                    doc["kind"],
                    doc["metadata"]["name"],
                )
    assert one(rendered["base"], "Namespace")["metadata"]["name"] == NAMESPACE


# --- webhook configurations ----------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("kind", WEBHOOK_KINDS)
def test_webhooks_fail_closed_within_ten_seconds(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, kind: str
) -> None:
    for hook in webhooks(rendered[overlay], kind):
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["sideEffects"] == "None"
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] == 10
        assert hook["matchPolicy"] == "Equivalent"
        assert "objectSelector" not in hook, "an objectSelector would let object labels bypass the webhook"
        if kind == "MutatingWebhookConfiguration":
            assert hook["reinvocationPolicy"] == "IfNeeded"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_webhooks_call_the_service_paths(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    service = one(docs, "Service", SERVICE)
    for kind, path in zip(WEBHOOK_KINDS, ("/mutate", "/validate"), strict=True):
        for hook in webhooks(docs, kind):
            target = hook["clientConfig"]["service"]
            assert "url" not in hook["clientConfig"]
            assert target["name"] == service["metadata"]["name"]
            assert target["namespace"] == service["metadata"]["namespace"]
            assert target["path"] == path
            assert target.get("port", 443) in [p["port"] for p in service["spec"]["ports"]]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("kind", WEBHOOK_KINDS)
def test_rules_cover_every_pod_bearing_resource_on_create_and_update(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, kind: str
) -> None:
    for hook in webhooks(rendered[overlay], kind):
        covered = set()
        for rule in hook["rules"]:
            assert set(rule["operations"]) == {"CREATE", "UPDATE"}, "only CREATE and UPDATE carry new images"
            assert "v1" in rule["apiVersions"] or "*" in rule["apiVersions"]
            assert rule.get("scope", "*") in ("Namespaced", "*")
            for op in rule["operations"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        covered.add((op, group, resource))
        for op in ("CREATE", "UPDATE"):
            for group, resource in COVERED:
                assert (op, group, resource) in covered, f"{kind} misses {op} {group or 'core'}/{resource}"


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("kind", WEBHOOK_KINDS)
def test_namespace_selector_spares_kube_system_and_our_own_namespace(
    rendered: dict[str, list[dict[str, Any]]], overlay: str, kind: str
) -> None:
    docs = rendered[overlay]
    own = one(docs, "Deployment", "imagegate")["metadata"]["namespace"]
    for hook in webhooks(docs, kind):
        selector = hook["namespaceSelector"]
        assert not selector_matches(selector, namespace_labels("kube-system"))
        assert not selector_matches(selector, namespace_labels(own))
        for covered in ("default", "team-a", "prod-payments"):
            assert selector_matches(selector, namespace_labels(covered)), covered
        # No opt-out label: a namespace label must not switch enforcement off.
        assert selector_matches(selector, {**namespace_labels("team-a"), "imagegate.dev/ignore": "true"})


@pytest.mark.parametrize("kind", WEBHOOK_KINDS)
def test_cert_manager_namespace_is_not_gated_by_the_webhook_it_serves(
    rendered: dict[str, list[dict[str, Any]]], kind: str
) -> None:
    for hook in webhooks(rendered["cert-manager"], kind):
        assert not selector_matches(hook["namespaceSelector"], namespace_labels("cert-manager"))


def test_base_alone_has_no_ca_bundle(rendered: dict[str, list[dict[str, Any]]]) -> None:
    # The base must be combined with a TLS overlay; this documents (and pins) that it has no trust anchor.
    for kind in WEBHOOK_KINDS:
        for hook in webhooks(rendered["base"], kind):
            assert "caBundle" not in hook["clientConfig"]


# --- Deployment ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_deployment_is_highly_available(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    deployment = one(docs, "Deployment", "imagegate")
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["replicas"] == 3
    assert selector_matches(spec["selector"], labels)
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    spreads = {c["topologyKey"]: c for c in pod["topologySpreadConstraints"]}
    assert "kubernetes.io/hostname" in spreads
    for constraint in spreads.values():
        assert selector_matches(constraint["labelSelector"], labels)
    anti = pod["affinity"]["podAntiAffinity"]
    terms = [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
    terms += anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname" and selector_matches(t["labelSelector"], labels)
        for t in terms
    )
    priority = pod["priorityClassName"]
    assert not priority.startswith("system-"), (
        "system-* classes are refused outside kube-system on many clusters"
    )
    assert one(docs, "PriorityClass", priority)["value"] > 0


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_deployment_is_hardened(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    pod = pod_template(docs)["spec"]
    assert pod["automountServiceAccountToken"] is False
    account = one(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    # The server needs no API access.
    assert not kinds(docs, "RoleBinding")
    assert not kinds(docs, "ClusterRoleBinding")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(flag)
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert (pod_sc["runAsUser"], pod_sc["runAsGroup"]) == (65532, 65532)
    assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = server_container(docs)["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert (sc["runAsUser"], sc["runAsGroup"]) == (65532, 65532)
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc.get("privileged", False) is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    labels = one(docs, "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_resources_requests_and_limits(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    resources = server_container(rendered[overlay])["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[part]), part


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_probes_use_https_health_endpoints(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    container = server_container(docs)
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": None}
    for probe_name, path in expected.items():
        probe = container[probe_name]["httpGet"]
        assert probe["scheme"] == "HTTPS", probe_name
        assert container_port(docs, probe["port"]) == 8443, probe_name
        if path:
            assert probe["path"] == path, probe_name
        else:
            assert probe["path"] in ("/healthz", "/readyz")


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_writable_directories_are_memory_backed(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    pod = pod_template(docs)["spec"]
    container = server_container(docs)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    metrics_dir = env["PROMETHEUS_MULTIPROC_DIR"]
    assert metrics_dir == "/tmp/metrics"
    for path in ("/dev/shm", metrics_dir):
        assert mounts[path]["emptyDir"]["medium"] == "Memory", path
        assert "sizeLimit" in mounts[path]["emptyDir"], path
    for mount in container["volumeMounts"]:
        if "emptyDir" not in volumes[mount["name"]]:
            assert mount.get("readOnly") is True, mount["mountPath"]


def test_environment_is_accepted_by_the_server_settings(rendered: dict[str, list[dict[str, Any]]]) -> None:
    from webhook.settings import Settings

    env = {e["name"]: e["value"] for e in server_container(rendered["static-certs"]).get("env", [])}
    Settings.from_env(env)  # raises ConfigError on a value the server would refuse at start-up
    assert all(name.startswith(("IMAGEGATE_", "PROMETHEUS_", "PYTHON")) for name in env)


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_shutdown_lets_in_flight_admissions_finish(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    pre_stop = server_container(docs)["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        seconds = int(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        # The image has Python but no guarantee of coreutils' sleep.
        assert PurePosixPath(command[0]).name in ("python3", "python")
        match = re.fullmatch(r"import time; time\.sleep\((\d+)\)", command[-1])
        assert match, command
        seconds = int(match.group(1))
    assert seconds >= 3
    timeout = max(h["timeoutSeconds"] for k in WEBHOOK_KINDS for h in webhooks(docs, k))
    assert pod_template(docs)["spec"]["terminationGracePeriodSeconds"] >= seconds + timeout


def test_prestop_does_not_use_the_sleep_action_alpha_in_129(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    # lifecycle.preStop.sleep validates against the 1.29 schema, but 1.29 has it behind the alpha
    # PodLifecycleSleepAction feature gate (off by default): its API server would drop it, reject the pod.
    assert "sleep" not in server_container(rendered["base"])["lifecycle"]["preStop"]


# --- Service, PDB, NetworkPolicy -------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_maps_443_to_the_server_port(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    service = one(docs, "Service", SERVICE)
    assert selector_matches(
        {"matchLabels": service["spec"]["selector"]}, pod_template(docs)["metadata"]["labels"]
    )
    ports = service["spec"]["ports"]
    assert len(ports) == 1
    assert ports[0]["port"] == 443
    assert ports[0].get("protocol", "TCP") == "TCP"
    assert container_port(docs, ports[0]["targetPort"]) == 8443


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_disruption_budget_keeps_two_replicas(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    pdb = one(docs, "PodDisruptionBudget", "imagegate")["spec"]
    replicas = one(docs, "Deployment", "imagegate")["spec"]["replicas"]
    assert selector_matches(pdb["selector"], pod_template(docs)["metadata"]["labels"])
    if "maxUnavailable" in pdb:
        assert pdb["maxUnavailable"] == 1
        kept = replicas - 1
    else:
        kept = pdb["minAvailable"]
        assert kept < replicas, "a budget that allows no disruption blocks node drains"
    assert kept >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_the_webhook_port(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    policy = one(docs, "NetworkPolicy", "imagegate")["spec"]
    assert selector_matches(policy["podSelector"], pod_template(docs)["metadata"]["labels"])
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ingress_ports = [
        (p.get("protocol", "TCP"), p["port"]) for rule in policy["ingress"] for p in rule["ports"]
    ]
    assert ingress_ports == [("TCP", 8443)]
    egress = policy["egress"]
    assert all(rule.get("ports") for rule in egress), "an egress rule without ports allows everything"
    egress_ports = {(p.get("protocol", "TCP"), p["port"]) for rule in egress for p in rule["ports"]}
    assert {("UDP", 53), ("TCP", 53), ("TCP", 443)} <= egress_ports


# --- TLS wiring -----------------------------------------------------------------------------------------


def tls_secret_name(docs: list[dict[str, Any]]) -> str:
    container = server_container(docs)
    volumes = {v["name"]: v for v in pod_template(docs)["spec"]["volumes"]}
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/imagegate/tls"]
    return volumes[mount["name"]]["secret"]["secretName"]  # type: ignore[no-any-return]


def test_cert_manager_resources_are_well_formed(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["cert-manager"]
    allowed_spec = {
        "Issuer": {"selfSigned", "ca"},
        "Certificate": {
            "secretName",
            "secretTemplate",
            "commonName",
            "dnsNames",
            "duration",
            "renewBefore",
            "privateKey",
            "usages",
            "issuerRef",
            "isCA",
        },
    }
    usages = {"digital signature", "key encipherment", "server auth", "cert sign", "crl sign"}
    for doc in docs:
        if doc["kind"] not in CERT_MANAGER_KINDS:
            continue
        assert doc["apiVersion"] == "cert-manager.io/v1"
        assert set(doc["spec"]) <= allowed_spec[doc["kind"]], doc["metadata"]["name"]
        if doc["kind"] == "Certificate":
            spec = doc["spec"]
            assert set(spec["issuerRef"]) <= {"name", "kind", "group"}
            assert spec["issuerRef"]["kind"] == "Issuer"
            assert set(spec["privateKey"]) <= {"algorithm", "size", "rotationPolicy", "encoding"}
            assert spec["privateKey"]["algorithm"] == "ECDSA"
            assert spec["privateKey"]["rotationPolicy"] in ("Always", "Never")
            assert set(spec.get("usages", [])) <= usages
            for field in ("duration", "renewBefore"):
                assert re.fullmatch(r"\d+h", spec[field]), field


def test_cert_manager_chain_issues_the_mounted_secret(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["cert-manager"]
    issuers = {d["metadata"]["name"]: d for d in kinds(docs, "Issuer")}
    certificates = {d["metadata"]["name"]: d for d in kinds(docs, "Certificate")}
    annotations = {
        one(docs, k, "imagegate")["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        for k in WEBHOOK_KINDS
    }
    assert len(annotations) == 1
    namespace, name = annotations.pop().split("/")
    assert namespace == NAMESPACE
    serving = certificates[name]["spec"]
    assert serving["secretName"] == tls_secret_name(docs)
    assert {f"{SERVICE}.{NAMESPACE}.svc", f"{SERVICE}.{NAMESPACE}.svc.cluster.local"} <= set(
        serving["dnsNames"]
    )
    assert "server auth" in serving["usages"]
    assert not serving.get("isCA")
    ca_issuer = issuers[serving["issuerRef"]["name"]]["spec"]["ca"]
    (ca_cert,) = [
        c["spec"] for c in certificates.values() if c["spec"]["secretName"] == ca_issuer["secretName"]
    ]
    assert ca_cert["isCA"] is True
    assert "selfSigned" in issuers[ca_cert["issuerRef"]["name"]]["spec"]


def test_static_certs_overlay_injects_the_generated_ca(
    rendered: dict[str, list[dict[str, Any]]], static_certs: Any
) -> None:
    import base64

    docs = rendered["static-certs"]
    ca = (static_certs.out / "ca.crt").read_bytes()
    for kind in WEBHOOK_KINDS:
        for hook in webhooks(docs, kind):
            assert base64.b64decode(hook["clientConfig"]["caBundle"]) == ca
    secret = one(docs, "Secret", tls_secret_name(docs))
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == (static_certs.out / "tls.crt").read_bytes()


# --- files the server reads -----------------------------------------------------------------------------


def serve_args(docs: list[dict[str, Any]]) -> Any:
    from webhook.cli import build_parser

    return build_parser().parse_args(["serve", *server_container(docs)["args"]])


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_server_arguments_name_mounted_files(rendered: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    docs = rendered[overlay]
    args = serve_args(docs)
    files = pod_files(docs)
    assert str(args.policy) == "/etc/imagegate/policy/policy.yaml"
    assert str(args.cert) == "/etc/imagegate/tls/tls.crt"
    assert str(args.key) == "/etc/imagegate/tls/tls.key"
    for path in (args.policy, args.cert, args.key):
        assert str(path) in files, path
    assert args.host == "0.0.0.0"
    assert args.port == container_port(docs, "https") == 8443


def policy_paths(policy: dict[str, Any], policy_dir: PurePosixPath) -> list[PurePosixPath]:
    spec = policy["spec"]
    raw = [spec.get("registries", {}).get(k) for k in ("caFile", "credentialsFile")]
    raw += [r["file"] for r in spec.get("trust", {}).get("roots", [])]
    raw += [k["file"] for k in spec.get("trust", {}).get("keys", []) if "file" in k]
    raw += spec.get("quarantine", {}).get("files", [])
    return [policy_dir / p for p in raw if p]  # an absolute p replaces policy_dir


@pytest.mark.parametrize("overlay", DEPLOYABLE)
def test_every_file_the_policy_names_is_mounted(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    docs = rendered[overlay]
    files = pod_files(docs)
    policy_file = PurePosixPath(str(serve_args(docs).policy))
    policy = yaml.safe_load(files[str(policy_file)] or b"")
    paths = policy_paths(policy, policy_file.parent)
    assert len(paths) >= 2  # at least the registry credentials and the quarantine list
    for path in paths:
        assert str(path) in files, f"policy names {path}, which no volume provides"


def test_shipped_trusted_root_loads(rendered: dict[str, list[dict[str, Any]]], tmp_path: Any) -> None:
    from sigstore.models import TrustedRoot

    data = pod_files(rendered["static-certs"])["/etc/imagegate/trust/trusted_root.json"]
    assert data
    path = tmp_path / "trusted_root.json"
    path.write_bytes(data)
    root = TrustedRoot.from_file(str(path))
    assert root is not None


# --- the operator guide's recipes ------------------------------------------------------------------------


def readme_yaml_blocks() -> list[str]:
    text = (DEPLOY / "README.md").read_text()
    blocks = re.findall(r"^( *)```yaml\n(.*?)^\1```", text, flags=re.MULTILINE | re.DOTALL)
    return [textwrap.dedent(body) for _indent, body in blocks]


def test_two_step_install_selector_holds_back_only_the_webhook_configurations(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    # deploy/README.md: kubectl apply -k ... -l 'app.kubernetes.io/component!=webhook-configuration'
    for overlay in DEPLOYABLE:
        held_back = [
            d["kind"]
            for d in rendered[overlay]
            if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "webhook-configuration"
        ]
        assert sorted(held_back) == sorted(WEBHOOK_KINDS), overlay


def test_the_guides_production_overlay_renders(static_certs: Any) -> None:
    blocks = readme_yaml_blocks()
    (overlay_text,) = [b for b in blocks if b.startswith("# deploy/overlays/production/kustomization.yaml")]
    (namespace_patch,) = [b for b in blocks if "value: calico-system" in b]
    (egress_patch,) = [b for b in blocks if "path: /spec/egress/-" in b]
    digest = "sha256:" + "ab" * 32
    kustomization = yaml.safe_load(overlay_text.replace("sha256:<digest printed by the push>", digest))
    kustomization["resources"] = ["../static-certs"]
    for snippet in (namespace_patch, egress_patch):
        kustomization["patches"] = kustomization.get("patches", []) + yaml.safe_load(snippet)["patches"]
    production = static_certs.deploy / "overlays" / "production"
    production.mkdir()
    (production / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    policy = (DEPLOY / "base" / "policy.yaml").read_text().replace("name: default", "name: production")
    (production / "policy.yaml").write_text(policy)
    credentials = '{"auths": {"registry.acme.test": {"auth": "aW1hZ2VnYXRlOnRva2Vu"}}}'
    (production / "registry").mkdir()
    (production / "registry" / "config.json").write_text(credentials)

    docs = kustomize(production)
    for doc in docs:
        if doc["kind"] not in CERT_MANAGER_KINDS:
            kubernetes_validate.validate(doc, KUBERNETES_VERSIONS[0], strict=True)
    assert server_container(docs)["image"] == f"registry.acme.test/platform/imagegate@{digest}"
    secret = one(docs, "Secret", "imagegate-registry")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert base64.b64decode(secret["data"][".dockerconfigjson"]).decode() == credentials
    assert pod_files(docs)["/etc/imagegate/registry/config.json"] == credentials.encode()
    assert b"name: production" in (pod_files(docs)["/etc/imagegate/policy/policy.yaml"] or b"")
    for kind in WEBHOOK_KINDS:
        selector = webhooks(docs, kind)[0]["namespaceSelector"]
        assert not selector_matches(selector, namespace_labels("calico-system"))
        assert selector_matches(selector, namespace_labels("team-a"))
    egress = one(docs, "NetworkPolicy", "imagegate")["spec"]["egress"]
    assert {"protocol": "TCP", "port": 5000} in [p for rule in egress for p in rule["ports"]]
