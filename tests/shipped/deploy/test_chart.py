"""The Helm chart (deploy/chart/imagegate), rendered by Helm's own engine offline.

Its default render is the kustomize cert-manager overlay, object for object (Helm's conventional labels
aside), and with a provided TLS Secret it is the static-certs overlay: the invariants tests/shipped/deploy
checks on the kustomizations therefore hold for the chart, and the two installs cannot drift. Every toggle's
render is valid for Kubernetes 1.29-1.33.
"""

from __future__ import annotations

import base64
import difflib
import json
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.support.deploy import (
    CHART,
    DEPLOY,
    HELM_LABELS,
    KUBERNETES_VERSIONS,
    StaticCerts,
    by_identity,
    helm_render,
    kinds,
    kustomize,
    namespace_labels,
    one,
    pod_files,
    selector_matches,
    server_container,
    without_helm_labels,
)

CUSTOM_KINDS = {"Issuer", "Certificate", "ServiceMonitor", "PrometheusRule"}
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
TRUST_REFRESH = {"trustRefresh": {"enabled": True}}
MONITORING_ON = {
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    }
}


def static_values(certs: StaticCerts) -> dict[str, Any]:
    return {
        "tls": {
            "certManager": {"enabled": False},
            "existingSecret": "imagegate-tls",
            "caBundle": certs.stdout.strip(),
        },
    }


def assert_same_objects(chart: list[dict[str, Any]], kustomized: list[dict[str, Any]]) -> None:
    ours, theirs = by_identity([without_helm_labels(d) for d in chart]), by_identity(kustomized)
    assert sorted(ours) == sorted(theirs)
    for identity, expected in theirs.items():
        if ours[identity] != expected:
            diff = difflib.unified_diff(
                yaml.safe_dump(expected).splitlines(),
                yaml.safe_dump(ours[identity]).splitlines(),
                "kustomize",
                "helm",
                lineterm="",
            )
            pytest.fail(f"{identity} differs between the kustomize base and the chart:\n" + "\n".join(diff))


@pytest.fixture(scope="module")
def chart_default() -> list[dict[str, Any]]:
    return helm_render()


# --- the chart is the kustomize installation -----------------------------------------------------------


def test_defaults_are_the_cert_manager_overlay(
    rendered: dict[str, list[dict[str, Any]]], chart_default: list[dict[str, Any]]
) -> None:
    kustomized = rendered["cert-manager"]
    # A chart does not own the namespace its release lives in unless asked (helm install --create-namespace).
    assert_same_objects(chart_default, [d for d in kustomized if d["kind"] != "Namespace"])
    assert_same_objects(helm_render({"namespace": {"create": True}}), kustomized)


def test_a_provided_tls_secret_is_the_static_certs_overlay(
    rendered: dict[str, list[dict[str, Any]]], static_certs: StaticCerts
) -> None:
    kustomized = rendered["static-certs"]
    # The overlay carries the Secret `imagegate certs` wrote; with the chart it exists beforehand.
    secret = one(kustomized, "Secret", "imagegate-tls")
    chart = helm_render({**static_values(static_certs), "namespace": {"create": True}})
    assert_same_objects(chart, [d for d in kustomized if d is not secret])


def test_monitoring_is_deploy_monitoring() -> None:
    chart = [
        d
        for d in helm_render(MONITORING_ON)
        if d["kind"] in ("ServiceMonitor", "PrometheusRule")
        or (d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-grafana-dashboard"))
    ]
    assert len(chart) == 3
    assert_same_objects(chart, kustomize(DEPLOY / "monitoring"))


def test_trust_refresh_is_deploy_trust_refresh(chart_default: list[dict[str, Any]]) -> None:
    # Off by default, as the kustomize component is opt-in; on: deploy/trust-refresh, object by object.
    default = by_identity(chart_default)
    added = [d for d in helm_render(TRUST_REFRESH) if next(iter(by_identity([d]))) not in default]
    assert sorted(d["kind"] for d in added) == [
        "CronJob",
        "NetworkPolicy",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    assert_same_objects(added, kustomize(DEPLOY / "trust-refresh"))


def test_the_chart_files_are_the_deploy_files() -> None:
    # The chart reads the base's policy, quarantine list, credentials and trust root and the monitoring
    # files through symbolic links (Helm follows them and `helm package` stores their content).
    for link in sorted((CHART / "files").iterdir()):
        assert link.is_symlink(), f"{link.name}: link to the file under deploy/ instead of copying it"
        target = link.resolve()
        assert target.is_file(), link
        assert DEPLOY in target.parents and CHART not in target.parents, target


def test_the_packaged_chart_carries_the_linked_files(
    tmp_path: Any, chart_default: list[dict[str, Any]]
) -> None:
    # `helm package` stores the content of the links: the archive renders the same objects on its own.
    from helm_python import Chart, package

    archive = package(CHART, destination=tmp_path)
    with Chart.load(archive) as chart:
        rendered = chart.render({}, name="imagegate", namespace="imagegate")
        names = {f["name"] for f in chart.files}
    assert {"files/policy.yaml", "files/trusted_root.json", "files/prometheusrule.yaml"} <= names
    docs = [
        d
        for name, text in sorted(rendered.items())
        if name.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if d
    ]
    assert docs == chart_default


# --- every render is valid -----------------------------------------------------------------------------

TOGGLES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespace": {"namespace": {"create": True}},
    "monitoring": MONITORING_ON,
    "credentials-secret": {"registryCredentials": {"existingSecret": "acme-pull"}},
    "no-webhooks": {"webhook": {"enabled": False}},
    "tuned": {
        "image": {"digest": "sha256:" + "ab" * 32},
        "replicas": 5,
        "imagePullSecrets": ["acme-pull"],
        "env": [{"name": "IMAGEGATE_WORKERS", "value": "4"}],
        "webhook": {
            "timeoutSeconds": 15,
            "failurePolicy": "Ignore",
            "excludedNamespaces": ["kube-system", "calico-system"],
        },
        "networkPolicy": {"extraEgressPorts": [{"protocol": "TCP", "port": 5000}]},
        "trust": {"publicGoodRoot": False, "files": {"release.pub": "-----BEGIN PUBLIC KEY-----\n"}},
        "priorityClass": {"create": False, "name": "system-cluster-critical"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}],
    },
    "no-network-policy": {"networkPolicy": {"enabled": False}},
    "trust-refresh": TRUST_REFRESH,
    "trust-refresh-tuned": {
        "trustRefresh": {
            "enabled": True,
            "schedule": "5 * * * *",
            "url": "https://tuf.acme.test",
            "resources": {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        },
        "image": {"digest": "sha256:" + "ab" * 32},
        "imagePullSecrets": ["acme-pull"],
        "networkPolicy": {"enabled": False},
        "nodeSelector": {"kubernetes.io/os": "linux"},
    },
}


@pytest.fixture(scope="module")
def toggled(static_certs: StaticCerts) -> dict[str, list[dict[str, Any]]]:
    renders = {name: helm_render(values) for name, values in TOGGLES.items()}
    renders["provided-tls"] = helm_render({**static_values(static_certs), **MONITORING_ON})
    renders["other-release"] = helm_render(
        {**MONITORING_ON, **TRUST_REFRESH, "namespace": {"create": True}},
        release="gate",
        namespace="security",
    )
    return renders


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_render_is_valid_for_kubernetes(toggled: dict[str, list[dict[str, Any]]], version: str) -> None:
    unique: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, docs in toggled.items():
        for doc in docs:
            unique.setdefault(json.dumps(doc, sort_keys=True), (name, doc))
    validated = 0
    for name, doc in unique.values():
        if doc["kind"] in CUSTOM_KINDS:
            continue  # custom resources: their shape is checked below and against deploy/ above
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(
                f"{name}: {doc['kind']}/{doc['metadata']['name']} invalid for {version}: "
                f"{error.message} at {list(error.path)}"
            )
        validated += 1
    assert validated > 20


def test_custom_resources_are_well_formed(toggled: dict[str, list[dict[str, Any]]]) -> None:
    for name, docs in toggled.items():
        for doc in docs:
            if doc["kind"] in ("Issuer", "Certificate"):
                assert doc["apiVersion"] == "cert-manager.io/v1", name
            elif doc["kind"] in ("ServiceMonitor", "PrometheusRule"):
                assert doc["apiVersion"] == "monitoring.coreos.com/v1", name
            else:
                continue
            assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, name
            assert set(doc["metadata"]) == {"name", "namespace", "labels"}, name


# --- toggles ----------------------------------------------------------------------------------------------


def test_cert_manager_or_a_provided_secret(
    toggled: dict[str, list[dict[str, Any]]], static_certs: StaticCerts
) -> None:
    cert_manager = toggled["defaults"]
    serving = one(cert_manager, "Certificate", "imagegate-serving")
    assert serving["spec"]["secretName"] == "imagegate-tls"
    for kind in WEBHOOK_KINDS:
        config = one(cert_manager, kind, "imagegate")
        assert (
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            == "imagegate/imagegate-serving"
        )
        assert "caBundle" not in config["webhooks"][0]["clientConfig"]

    provided = toggled["provided-tls"]
    assert not kinds(provided, "Certificate") and not kinds(provided, "Issuer")
    assert not kinds(provided, "Secret") or all(
        s["metadata"]["name"] != "imagegate-tls" for s in kinds(provided, "Secret")
    )
    ca = (static_certs.out / "ca.crt").read_bytes()
    for kind in WEBHOOK_KINDS:
        config = one(provided, kind, "imagegate")
        assert "annotations" not in config["metadata"]
        assert base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]) == ca
        # cert-manager's namespace is excluded only when cert-manager issues our certificate.
        assert selector_matches(config["webhooks"][0]["namespaceSelector"], namespace_labels("cert-manager"))
    tls = [
        v for v in one(provided, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "tls"
    ]
    assert tls[0]["secret"]["secretName"] == "imagegate-tls"
    monitor = one(provided, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["tlsConfig"]["ca"]["secret"] == {
        "name": "imagegate-tls",
        "key": "ca.crt",
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"tls": {"certManager": {"enabled": False}, "existingSecret": "imagegate-tls"}}, "tls.caBundle"),
        ({"tls": {"certManager": {"enabled": False}, "caBundle": "QUJD"}}, "tls.existingSecret"),
    ],
)
def test_a_provided_secret_needs_its_ca(values: dict[str, Any], message: str) -> None:
    from helm_python import HelmError

    with pytest.raises(HelmError, match=message):
        helm_render(values)


def test_an_existing_credentials_secret_replaces_the_placeholder(
    toggled: dict[str, list[dict[str, Any]]],
) -> None:
    assert (
        one(toggled["defaults"], "Secret", "imagegate-registry")["type"] == "kubernetes.io/dockerconfigjson"
    )
    docs = toggled["credentials-secret"]
    assert not kinds(docs, "Secret")
    volumes = {v["name"]: v for v in one(docs, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["registry"]["secret"]["secretName"] == "acme-pull"
    assert volumes["registry"]["secret"]["items"] == [{"key": ".dockerconfigjson", "path": "config.json"}]


def test_monitoring_is_off_unless_asked(toggled: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("defaults", "credentials-secret", "tuned"):
        assert not kinds(toggled[name], "ServiceMonitor") and not kinds(toggled[name], "PrometheusRule"), name
        assert not [
            c for c in kinds(toggled[name], "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]
        ]
    docs = toggled["monitoring"]
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert selector_matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    dashboard = one(docs, "ConfigMap", "imagegate-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["imagegate-dashboard.json"])["uid"] == "imagegate"


def test_webhooks_can_be_held_back(toggled: dict[str, list[dict[str, Any]]]) -> None:
    # The first step of a safe install and the last step before an uninstall.
    docs = toggled["no-webhooks"]
    assert not [d for d in docs if d["kind"] in WEBHOOK_KINDS]
    assert one(docs, "Deployment")


def test_tuned_values_reach_the_objects(toggled: dict[str, list[dict[str, Any]]]) -> None:
    docs = toggled["tuned"]
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = server_container(docs)
    assert deployment["spec"]["replicas"] == 5
    assert container["image"] == "registry.example.com/imagegate/imagegate@sha256:" + "ab" * 32
    assert pod["imagePullSecrets"] == [{"name": "acme-pull"}]
    env = {e["name"]: e["value"] for e in container["env"]}
    # The server's deadline stays 2 s under the API server's timeout, and the grace period covers both.
    assert env["IMAGEGATE_DEADLINE_SECONDS"] == "13" and env["IMAGEGATE_WORKERS"] == "4"
    from webhook.settings import Settings

    assert Settings.from_env(env).deadline_seconds == 13
    assert pod["terminationGracePeriodSeconds"] >= 5 + 15
    for kind in WEBHOOK_KINDS:
        hook = one(docs, kind)["webhooks"][0]
        assert (hook["timeoutSeconds"], hook["failurePolicy"]) == (15, "Ignore")
        assert not selector_matches(hook["namespaceSelector"], namespace_labels("calico-system"))
        assert selector_matches(hook["namespaceSelector"], namespace_labels("cert-manager")) is False
    assert pod["priorityClassName"] == "system-cluster-critical" and not kinds(docs, "PriorityClass")
    assert {"protocol": "TCP", "port": 5000} in [
        p for r in one(docs, "NetworkPolicy")["spec"]["egress"] for p in r["ports"]
    ]
    assert set(pod_files(docs)) >= {"/etc/imagegate/trust/release.pub"}
    assert "/etc/imagegate/trust/trusted_root.json" not in pod_files(docs)
    assert (
        pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and pod["tolerations"][0]["key"] == "dedicated"
    )
    assert "IMAGEGATE_DEADLINE_SECONDS" not in {
        e["name"] for e in server_container(toggled["defaults"])["env"]
    }


def test_trust_refresh_values_reach_the_job(toggled: dict[str, list[dict[str, Any]]]) -> None:
    for name in ("defaults", "tuned", "monitoring"):
        assert not kinds(toggled[name], "CronJob"), name
    docs = toggled["trust-refresh-tuned"]
    cronjob = one(docs, "CronJob", "imagegate-trust-refresh")
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert cronjob["spec"]["schedule"] == "5 * * * *"
    # The server's image, pinned the same way.
    assert container["image"] == server_container(docs)["image"].split("@")[0] + "@sha256:" + "ab" * 32
    assert pod["imagePullSecrets"] == [{"name": "acme-pull"}]
    assert container["args"][-2:] == ["--url", "https://tuf.acme.test"]
    # Helm merges the given resources into the defaults (a default goes with `null`).
    assert container["resources"] == {
        "requests": {"cpu": "20m", "memory": "64Mi"},
        "limits": {"cpu": "500m", "memory": "128Mi"},
    }
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert not kinds(docs, "NetworkPolicy")


def test_trust_refresh_needs_the_root_it_refreshes() -> None:
    from helm_python import HelmError

    with pytest.raises(HelmError, match=r"trust\.publicGoodRoot"):
        helm_render({**TRUST_REFRESH, "trust": {"publicGoodRoot": False}})


def test_another_release_name_and_namespace_stay_wired(toggled: dict[str, list[dict[str, Any]]]) -> None:
    docs = toggled["other-release"]
    assert {d["metadata"].get("namespace", "security") for d in docs} == {"security"}
    assert one(docs, "Namespace")["metadata"]["name"] == "security"
    service = one(docs, "Service", "gate-imagegate")
    serving = one(docs, "Certificate", "gate-imagegate-serving")
    assert "gate-imagegate.security.svc" in serving["spec"]["dnsNames"]
    for kind in WEBHOOK_KINDS:
        config = one(docs, kind, "gate-imagegate")
        assert (
            config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
            == "security/gate-imagegate-serving"
        )
        hook = config["webhooks"][0]
        assert hook["clientConfig"]["service"]["name"] == service["metadata"]["name"]
        assert hook["clientConfig"]["service"]["namespace"] == "security"
        assert not selector_matches(hook["namespaceSelector"], namespace_labels("security"))
    pod = one(docs, "Deployment", "gate-imagegate")["spec"]["template"]
    assert selector_matches({"matchLabels": service["spec"]["selector"]}, pod["metadata"]["labels"])
    assert (
        pod["spec"]["priorityClassName"]
        == one(docs, "PriorityClass")["metadata"]["name"]
        == "gate-imagegate-critical"
    )
    assert {
        "/etc/imagegate/policy/policy.yaml",
        "/etc/imagegate/tls/tls.crt",
        "/etc/imagegate/registry/config.json",
    } <= set(pod_files(docs))
    monitor = one(docs, "ServiceMonitor")
    # The alert rules select job="imagegate": the job comes from this label, not the release's name.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "imagegate"
    assert monitor["spec"]["endpoints"][0]["tlsConfig"]["serverName"] == "gate-imagegate.security.svc"
    # The refresh job patches this release's trust ConfigMap, the one the server mounts, and nothing of the
    # server (Service, PDB, NetworkPolicy) selects its pod, while its own NetworkPolicy does.
    trust = one(docs, "ConfigMap", "gate-imagegate-trust")["metadata"]["name"]
    cronjob = one(docs, "CronJob", "gate-imagegate-trust-refresh")
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = job_pod["spec"]["containers"]
    assert container["args"][container["args"].index("--configmap") + 1] == f"security/{trust}"
    assert one(docs, "Role", "gate-imagegate-trust-refresh")["rules"][0]["resourceNames"] == [trust]
    assert {v["configMap"]["name"] for v in pod["spec"]["volumes"] if "configMap" in v} >= {trust}
    assert (
        job_pod["spec"]["serviceAccountName"]
        == one(docs, "ServiceAccount", "gate-imagegate-trust-refresh")["metadata"]["name"]
    )
    labels = job_pod["metadata"]["labels"]
    assert not selector_matches({"matchLabels": service["spec"]["selector"]}, labels)
    assert not selector_matches(one(docs, "PodDisruptionBudget")["spec"]["selector"], labels)
    assert not selector_matches(one(docs, "NetworkPolicy", "gate-imagegate")["spec"]["podSelector"], labels)
    assert selector_matches(
        one(docs, "NetworkPolicy", "gate-imagegate-trust-refresh")["spec"]["podSelector"], labels
    )


@pytest.mark.parametrize(
    "values",
    [
        {},
        MONITORING_ON,
        TRUST_REFRESH,
        {"tls": {"certManager": {"enabled": False}, "existingSecret": "s", "caBundle": "QUJD"}},
    ],
)
def test_helm_lint_strict_finds_nothing(values: dict[str, Any]) -> None:
    from helm_python import lint

    report = lint(CHART, values, strict=True, kube_version="v1.29.0")
    # Severity 1 is informational (Helm suggests an icon); 2 and 3 are warnings and errors.
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_the_values_schema_rejects_what_the_templates_cannot_use() -> None:
    from helm_python import HelmValuesError

    for values in (
        {"replicas": "3"},
        {"webhook": {"failurePolicy": "Sometimes"}},
        {"webhook": {"timeoutSeconds": 31}},
        {"image": {"digest": "sha256:abc"}},
        {"tls": {"certmanager": {"enabled": False}}},
        {"env": [{"name": "IMAGEGATE_DEADLINE_SECONDS", "value": "3"}]},
        {"trustRefresh": {"enabled": True, "url": "http://tuf.acme.test"}},
        {"trustRefresh": {"enabled": True, "shedule": "5 * * * *"}},
    ):
        with pytest.raises(HelmValuesError):
            helm_render(values)


def test_values_and_schema_document_the_same_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def keys(node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for key, child in node.items():
            found.add(prefix + key)
            if isinstance(child, dict) and child.get("type") == "object" and "properties" in child:
                found |= keys(child["properties"], prefix + key + ".")
        return found

    def value_keys(node: dict[str, Any], schema_node: dict[str, Any], prefix: str = "") -> set[str]:
        found = set()
        for key, child in node.items():
            found.add(prefix + key)
            sub = schema_node.get("properties", {}).get(key, {})
            if isinstance(child, dict) and "properties" in sub:
                found |= value_keys(child, sub, prefix + key + ".")
        return found

    assert value_keys(values, schema) == keys(schema["properties"]) - {"global"}
    assert not HELM_LABELS & set(values)
