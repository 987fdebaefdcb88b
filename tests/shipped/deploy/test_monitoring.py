"""deploy/monitoring: the alert rules and the Grafana dashboard query what imagegate really exposes.

Every PromQL expression is parsed by a real PromQL parser (promql-parser, the Rust parser GreptimeDB
uses), and every metric name, label matcher and ``by`` label in it is looked up in the ``/metrics`` page
of a real server (gunicorn, TLS) after real admissions against a real registry: a metric renamed or a
label dropped in the server fails here, not silently in an operator's Prometheus.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.deploy import DEPLOY
from tests.support.registry import RegistryServer
from tests.support.reviews import review
from tests.support.server import running_server

MONITORING = DEPLOY / "monitoring"
# The labels the ServiceMonitor gives every scrape target: Prometheus adds them to each series it scrapes
# (and to `up`, the series it adds itself). A label of the same name on /metrics would be renamed
# exported_<name> (honorLabels is off), so no metric may carry one.
TARGET_LABELS = {"job", "instance", "namespace", "service", "pod", "container", "endpoint"}
SCRAPE_SERIES = {"up": TARGET_LABELS}
# Grafana's built-in variables, as Grafana substitutes them before sending a query.
GRAFANA_VARIABLES = {"$__rate_interval": "2m", "$__interval": "30s", "$__range": "6h"}


def rule_expressions() -> dict[str, str]:
    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    found = {}
    for group in rules["spec"]["groups"]:
        for rule in group["rules"]:
            found[rule.get("alert") or rule["record"]] = rule["expr"]
    return found


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads((MONITORING / "imagegate-dashboard.json").read_text())
    found = {}

    def visit(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found[f"{panel['title']} / {target['refId']}"] = target["expr"]
            visit(panel.get("panels", []))

    visit(dashboard["panels"])
    return found


def grafana_substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


EXPRESSIONS = {
    **{f"alert {name}": expr for name, expr in rule_expressions().items()},
    **{f"panel {name}": grafana_substituted(expr) for name, expr in dashboard_expressions().items()},
}


def test_the_rules_and_the_dashboard_cover_what_the_guide_recommends() -> None:
    alerts = rule_expressions()
    assert {
        "ImagegateDown",
        "ImagegateReplicasDown",
        "ImagegateAdmissionErrors",
        "ImagegateDenialRatioHigh",
        "ImagegateLatencyNearTimeout",
        "ImagegatePolicyReloadRejected",
        "ImagegateRegistryErrors",
    } <= set(alerts)
    assert len(dashboard_expressions()) >= 10


@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_parses(name: str) -> None:
    promql_parser.parse(EXPRESSIONS[name])


def test_the_parser_rejects_broken_promql() -> None:
    for broken, error in (
        ("sum(rate(imagegate_admission_requests_total[5m])", "unclosed left parenthesis"),
        ("rate(x[5q])", "bad number or duration"),
        ("sum by (a (x)", "unclosed left parenthesis"),
    ):
        with pytest.raises(ValueError, match=error):
            promql_parser.parse(broken)


# --- names and labels against a real /metrics page -----------------------------------------------------


def exposed_series(text: str) -> dict[str, set[str]]:
    """Sample name -> the label names its samples carry, from a Prometheus text exposition."""
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory, plain_registry: RegistryServer) -> Iterator[str]:
    """/metrics of `imagegate serve` after admissions that resolve a tag, fail at the registry, are denied
    before it, and a malformed request."""
    directory = tmp_path_factory.mktemp("monitoring")
    plain_registry.pusher().push_image("team/app", "1.0", content=uuid.uuid4().bytes)
    policy = {
        "apiVersion": "imagegate.dev/v1alpha1",
        "kind": "ImagePolicy",
        "metadata": {"name": "monitoring"},
        "spec": {
            "registries": {"allow": [plain_registry.host], "insecure": [plain_registry.host]},
            "tags": {"resolve": True, "deny": ["latest"]},
            "rules": [{"name": "team", "images": [f"{plain_registry.host}/team/**"]}],
        },
    }
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    # With the opt-in namespace label, so that its name is checked too.
    with running_server(directory, path, env={"IMAGEGATE_METRICS_NAMESPACES": "true"}) as server:
        images = [plain_registry.ref("team/app", tag) for tag in ("1.0", "missing", "latest")]
        for image in images:
            for endpoint in ("/mutate", "/validate"):
                server.admit(endpoint, review("Pod", [image], namespace="team-a"))
        assert server.post("/validate", b"not json").status_code == 400
        response = server.get("/metrics")
        assert response.status_code == 200
        yield response.text


def selectors_and_groupings(
    node: Any, grouped_by: tuple[str, ...] = ()
) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """(vector selector, labels an enclosing `by` groups its series by) for every selector in ``node``."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node, grouped_by
    elif isinstance(node, promql_parser.MatrixSelector):
        yield node.vector_selector, grouped_by
    elif isinstance(node, promql_parser.AggregateExpr):
        labels = grouped_by
        if node.modifier is not None and node.modifier.type == promql_parser.AggModifierType.By:
            labels = grouped_by + tuple(node.modifier.labels)
        yield from selectors_and_groupings(node.expr, labels)
    elif isinstance(node, promql_parser.Call):
        for arg in node.args:
            yield from selectors_and_groupings(arg, grouped_by)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from selectors_and_groupings(node.lhs, grouped_by)
        yield from selectors_and_groupings(node.rhs, grouped_by)
    elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        yield from selectors_and_groupings(node.expr, grouped_by)
    else:
        assert isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral), type(node)


@pytest.mark.e2e
@pytest.mark.registry
@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_names_only_exposed_metrics_and_labels(exposition: str, name: str) -> None:
    series = {**exposed_series(exposition), **SCRAPE_SERIES}
    found = list(selectors_and_groupings(promql_parser.parse(EXPRESSIONS[name])))
    assert found, "an expression without a metric"
    for selector, grouped_by in found:
        metric = selector.name
        assert metric in series, f"{metric} is not on /metrics (exposed: {sorted(series)})"
        stored = series[metric] | TARGET_LABELS
        for matcher in selector.matchers.matchers:
            assert matcher.name in stored, f"{metric} has no label {matcher.name!r}"
        for label in grouped_by:
            assert label in stored, f"{metric} has no label {label!r} to group by"


def label_values(exposition: str) -> dict[str, set[str]]:
    """Label -> every value imagegate can give it: the closed sets the code draws them from, and what the
    real page shows for the others (registry, rule, code, result, ...)."""
    from typing import get_args

    from webhook.admission.review import Operation
    from webhook.admission.workloads import SUPPORTED_KINDS
    from webhook.decision import Stage, Status
    from webhook.metrics import OTHER
    from webhook.policy.model import Mode
    from webhook.reasons import Allowed, Reason

    values: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for label, value in sample.labels.items():
                values.setdefault(label, set()).add(value)
    closed = {
        "stage": set(get_args(Stage)),
        "kind": SUPPORTED_KINDS | {OTHER},
        "operation": set(get_args(Operation)),
        "dry_run": {"true", "false"},
        # image decisions: a reason code or an allowed outcome; admissions: the status, or error
        "outcome": {*Reason, *Allowed, *get_args(Status), "error"},
        "mode": {*get_args(Mode), "none"},
        "code": {*Reason, *values.get("code", ())},
        "result": {"hit", "miss", "success", "rejected"},  # cache lookups; policy reloads
        "job": {"imagegate"},
    }
    return {**values, **closed}


@pytest.mark.e2e
@pytest.mark.registry
@pytest.mark.parametrize("name", sorted(EXPRESSIONS))
def test_expression_matches_only_label_values_imagegate_gives(exposition: str, name: str) -> None:
    # A misspelt value (outcome="verfied", mode="warning", kind="pod") selects nothing, silently.
    values = label_values(exposition)
    for selector, _ in selectors_and_groupings(promql_parser.parse(EXPRESSIONS[name])):
        for matcher in selector.matchers.matchers:
            wanted = matcher.value.split("|") if str(matcher.op) == "MatchOp.Re" else [matcher.value]
            assert str(matcher.op) in ("MatchOp.Equal", "MatchOp.Re"), (name, matcher.op)
            unknown = [v for v in wanted if v not in values.get(matcher.name, set())]
            assert not unknown, f"{selector.name}{{{matcher.name}}} is never {unknown}"


def test_a_misspelt_label_value_is_found() -> None:
    values = label_values("")
    for good, bad in (("verified", "verfied"), ("warned", "warning")):
        assert good in values["outcome"] and bad not in values["outcome"]
    assert "warn" in values["mode"] and "Pod" in values["kind"] and "pod" not in values["kind"]


@pytest.mark.e2e
@pytest.mark.registry
def test_no_metric_carries_a_label_prometheus_gives_the_target(exposition: str) -> None:
    clashes = {name: sorted(labels & TARGET_LABELS) for name, labels in exposed_series(exposition).items()}
    assert {name: found for name, found in clashes.items() if found} == {}
    # The namespace opt-in was on: its label is there, under a name of its own.
    assert "resource_namespace" in exposed_series(exposition)["imagegate_image_decisions_total"]


@pytest.mark.e2e
@pytest.mark.registry
def test_the_admissions_exposed_every_family_the_server_defines(exposition: str) -> None:
    # The check above is only as good as the page it reads: the admissions must have produced a sample
    # of every metric the server registers, so that no name is missing for lack of traffic.
    from webhook.metrics import Metrics

    defined = {family.name for family in Metrics().registry.collect()}
    exposed = {family.name for family in text_string_to_metric_families(exposition)}
    assert defined <= exposed, f"no samples for {sorted(defined - exposed)}"
    assert Path(MONITORING / "imagegate-dashboard.json").is_file()
