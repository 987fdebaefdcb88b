"""``imagegate audit --policy FILE INPUT...``: what already runs, judged as the webhook would judge it now.

INPUT is the JSON of ``kubectl get pods,deployments,statefulsets,daemonsets,cronjobs -A -o json``
(ReplicaSets, Jobs and the other pod-bearing kinds may be listed too), a YAML/JSON file of manifests,
``-`` for standard input, or a directory of manifests searched recursively
(:mod:`webhook.audit.inventory`). Every object is judged as a fresh CREATE, and every digest a pod's
status says runs is checked against the quarantine (:mod:`webhook.audit.judge`).

Output (``-o text``, the default): per namespace and workload, each image that would be denied or
warned, where it was found (the workload's own spec, the ReplicaSets or Jobs it controls, how many of
its pods) and why; ``--view images`` lists every image instead, with whether a governing rule verified
its SLSA provenance. ``-o json`` prints both views and every finding, ``audit``-mode ones included.

Pods are reported under the workload that owns them, not one by one: each distinct finding is one
line with the count of pods it was found in, so 300 replicas of a quarantined image are one line, and
a rollout half done shows as two (the new image in the spec and some pods, the old in the others).

Exit codes: 1 if anything would be denied (a spec, or a pod running a quarantined digest), else 0;
2 for a usage, policy or input error.
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, get_args

from webhook.audit.inventory import read_inventory
from webhook.audit.judge import (
    AuditFinding,
    AuditReport,
    ImageRow,
    Limits,
    Reported,
    WorkloadResult,
    run_audit,
)
from webhook.audit.lookups import LookupProgress
from webhook.audit.overrides import Overrides
from webhook.cli._options import add_output, seconds
from webhook.dryrun import load_text
from webhook.policy.model import Mode, Unmatched
from webhook.text import escape

_MODES: tuple[str, ...] = get_args(Mode)
_UNMATCHED: tuple[str, ...] = get_args(Unmatched)
# Progress lines: one every this many lookups, or after this many seconds, whichever comes first.
_PROGRESS_EVERY = 25
_PROGRESS_SECONDS = 2.0
_EXAMPLES = """\
examples:
  # what already runs in the cluster, judged by a policy
  kubectl get pods,deployments,statefulsets,daemonsets,cronjobs -A -o json > cluster.json
  imagegate audit --policy policy.yaml cluster.json

  # straight from kubectl, as one JSON document
  kubectl get pods -A -o json | imagegate audit --policy policy.yaml -o json -

  # what switching a warn rollout to enforce would deny, without editing the policy
  imagegate audit --policy policy.yaml --mode enforce cluster.json

  # every image with its provenance; slow registries get more time
  imagegate audit --policy policy.yaml --view images --lookup-timeout 1m --timeout 10m cluster.json
"""
_LOCATIONS = {
    "initContainers": " (init)",
    "ephemeralContainers": " (ephemeral)",
    "volumes": " (image volume)",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "audit",
        help="judge what already runs in a cluster under a policy",
        description="Judge every pod-bearing object of INPUT as the webhook would judge a fresh CREATE, and "
        "check the digests pods report running against the quarantine. Prints, per namespace and workload, "
        "what would be denied or warned and why (--view images: every image, with whether its SLSA "
        "provenance was verified). INPUT: `kubectl get pods,deployments,statefulsets,daemonsets,cronjobs "
        "-A -o json` output, manifests (YAML/JSON, multi-document), '-' for stdin, or a directory of "
        "manifests. Exit 1 if anything would be denied, 2 on a usage, policy or input error.",
        epilog=_EXAMPLES,
    )
    p.add_argument("--policy", required=True, type=Path, metavar="FILE", help="ImagePolicy file")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="kubectl JSON, manifests, '-' or a directory")
    add_output(p, what="one document with every workload, image and finding")
    p.add_argument(
        "--view",
        choices=("workloads", "images"),
        default="workloads",
        help="text output: what would be denied or warned per workload (default), or every image "
        "with its provenance (-o json prints both)",
    )
    p.add_argument("--namespace", help="namespace of manifests that name none (default: default)")
    what_if = p.add_argument_group("what if (the policy file is not changed)")
    what_if.add_argument(
        "--mode", choices=_MODES, help="judge as if spec.mode and every rule's mode were MODE"
    )
    what_if.add_argument(
        "--rule-mode",
        action="append",
        default=[],
        type=_rule_mode,
        metavar="RULE=MODE",
        help="judge as if rule RULE had mode MODE (repeatable; applied after --mode)",
    )
    what_if.add_argument("--unmatched", choices=_UNMATCHED, help="judge as if spec.unmatched were this")
    bounds = p.add_argument_group("registry lookups (each distinct image is looked up once)")
    bounds.add_argument(
        "--concurrency", type=_positive_int, default=8, metavar="N", help="lookups at a time (default 8)"
    )
    bounds.add_argument(
        "--lookup-timeout",
        type=seconds(),
        default=20.0,
        metavar="DURATION",
        help="time for one image's lookup, in seconds or as 20s, 1m (default 20)",
    )
    bounds.add_argument(
        "--timeout",
        type=seconds(),
        default=300.0,
        metavar="DURATION",
        help="time for all lookups, in seconds or as 5m; images not looked up by then are reported "
        "registry-error (default 300)",
    )
    bounds.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="report lookup progress on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run)


def _stdin_text() -> str:
    """Standard input, read as ``evaluate -`` reads it: bounded like a policy file."""
    return load_text("-", stdin=lambda: sys.stdin.buffer)


def run(args: argparse.Namespace) -> int:
    """Audit; a ConfigError (exit 2) propagates to the CLI's entry point."""
    overrides = Overrides(mode=args.mode, rule_modes=dict(args.rule_mode), unmatched=args.unmatched)
    try:
        inventory = read_inventory(
            args.inputs,
            stdin=_stdin_text,
            namespace=args.namespace,
        )
    except (OSError, ValueError) as error:
        print(f"error: {escape(str(error))}", file=sys.stderr)  # it quotes the input
        return 2
    for warning in inventory.warnings:
        print(f"warning: {escape(warning)}", file=sys.stderr)
    show_progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        report = run_audit(
            inventory,
            policy_path=args.policy.resolve(),
            overrides=overrides,
            limits=Limits(concurrency=args.concurrency, per_lookup=args.lookup_timeout, budget=args.timeout),
            now=datetime.now(UTC),
            on_progress=_Progress(sys.stderr) if show_progress else None,
        )
    except ValueError as error:
        print(f"error: {escape(str(error))}", file=sys.stderr)
        return 2
    if report.not_looked_up:
        print(
            f"warning: the audit is incomplete: {report.not_looked_up} lookup(s) were not made within "
            f"--timeout {args.timeout:g}s; their images are reported registry-error",
            file=sys.stderr,
        )
    if args.output == "json":
        print(json.dumps(_json_report(report, policy_file=str(args.policy)), indent=2))
    elif args.view == "images":
        _print_images(report, out=sys.stdout)
    else:
        _print_workloads(report, policy_file=str(args.policy), out=sys.stdout)
    return 1 if report.status == "denied" else 0


def _rule_mode(text: str) -> tuple[str, Mode]:
    name, _, mode = text.partition("=")
    if not name or mode not in _MODES:
        raise argparse.ArgumentTypeError(f"expected RULE=MODE with MODE one of {', '.join(_MODES)}: {text!r}")
    return name, mode  # type: ignore[return-value]  # checked against Mode's values above


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0: {text!r}")
    return value


class _Progress:
    """Lookup progress on stderr: every few lookups or seconds, and when they are all in."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown = 0
        self._at = time.monotonic()

    def __call__(self, progress: LookupProgress) -> None:
        finished = progress.done == progress.total
        due = (
            progress.done - self._shown >= _PROGRESS_EVERY or time.monotonic() - self._at >= _PROGRESS_SECONDS
        )
        if not (finished or due) or progress.done == self._shown:
            return
        self._shown, self._at = progress.done, time.monotonic()
        print(
            f"imagegate audit: looked up {progress.done}/{progress.total} images "
            f"({progress.failed} failed) in {progress.seconds:.1f}s",
            file=self._out,
            flush=True,
        )


# --- text ------------------------------------------------------------------------------------------


def _print_workloads(report: AuditReport, *, policy_file: str, out: TextIO) -> None:
    header = f"policy {report.policy} ({policy_file})"
    if report.overrides.active:
        header += f", judged with {report.overrides.describe()}"
    print(escape(header), file=out)
    rows = [
        _finding_row(result, reported)
        for result in report.workloads
        for reported in result.findings
        if reported.finding.status != "allowed"
    ]
    if rows:
        _table(("NAMESPACE", "WORKLOAD", "RESULT", "FOUND IN", "CONTAINER", "IMAGE", "REASON"), rows, out=out)
    for line in _summary(report):
        print(line, file=out)


def _finding_row(result: WorkloadResult, reported: Reported) -> tuple[str, ...]:
    finding = reported.finding
    workload = result.workload
    status: str = finding.status
    if finding.baseline is not None and finding.baseline != status:
        status += f" (was {finding.baseline})"
    reasons = "; ".join(f"[{f.code}] {f.message}" for f in finding.failures)
    if finding.source == "running":
        reasons = f"running: {reasons}"
    container = (
        finding.container + _LOCATIONS.get(finding.location, "") if finding.source != "object" else "-"
    )
    return (
        workload.namespace,
        f"{workload.kind}/{workload.name}",
        status,
        _found_in(result, reported),
        container or "-",
        finding.image or "-",
        reasons,
    )


def _found_in(result: WorkloadResult, reported: Reported) -> str:
    """Where a finding was found: ``Deployment, 1/2 ReplicaSets, 3/5 pods``."""
    workload = result.workload
    if workload.kind == "Pod":
        return "pod"
    parts = []
    for kind, count in sorted(
        reported.found_in.items(), key=lambda item: (item[0] == "Pod", item[0] != workload.kind)
    ):
        total = result.objects.get(kind, count)
        if kind == "Pod":
            parts.append(f"{count}/{total} pods")
        elif kind == workload.kind:
            parts.append("spec")
        else:
            parts.append(kind if total == 1 else f"{count}/{total} {kind}s")
    return ", ".join(parts)


def _summary(report: AuditReport) -> list[str]:
    inventory = report.inventory
    pods = sum(len(w.workload.pods) for w in report.workloads)
    skipped = ", ".join(f"{count} {escape(kind)}" for kind, count in inventory.skipped.items())
    lines = [
        f"checked {len(report.workloads)} workload(s) with {pods} pod(s) of {inventory.objects} object(s)"
        + (f"; not checked: {skipped}" if skipped else "")
    ]
    counts = []
    for status in ("denied", "warned"):
        hit = [w for w in report.workloads if w.status == status]
        if hit:
            verb = "would deny" if status == "denied" else "would warn on"
            counts.append(
                f"{verb} {len(hit)} workload(s) with {sum(len(w.workload.pods) for w in hit)} pod(s)"
            )
    counts = counts or ["nothing would be denied or warned"]
    newly = [w for w in report.workloads if w.status == "denied" and w.baseline not in (None, "denied")]
    if report.overrides.active:
        counts.append(f"{len(newly)} newly denied by the overrides")
    recorded = sum(
        1
        for w in report.workloads
        for r in w.findings
        if r.finding.status == "allowed" and r.finding.failures
    )
    if recorded:
        counts.append(f"{recorded} audit-mode finding(s) only recorded (-o json lists them)")
    lines.append("; ".join(counts))
    lookups = f"looked up {report.looked_up} image(s) ({report.failed_lookups} failed)"
    if report.not_looked_up:
        lookups += f"; {report.not_looked_up} not looked up within the time budget"
    lines.append(lookups)
    return lines


def _print_images(report: AuditReport, *, out: TextIO) -> None:
    rows = [
        (
            _image_text(row),
            " ".join(row.running) or "-",
            str(row.pods),
            str(row.workloads),
            ", ".join(use.namespace for use in row.namespaces),
            _provenance_text(row),
        )
        for row in report.images
    ]
    if rows:
        _table(("IMAGE", "RUNNING", "PODS", "WORKLOADS", "NAMESPACES", "PROVENANCE"), rows, out=out)
    without = sum(1 for row in report.images if not row.provenance)
    print(f"{len(report.images)} image(s); {without} without verified SLSA provenance", file=out)


def _image_text(row: ImageRow) -> str:
    return f"{row.name}@{row.digest}" if row.digest else ", ".join(row.written)


def _provenance_text(row: ImageRow) -> str:
    def one(rules: Sequence[str], detail: str, verified: bool) -> str:
        return f"verified (rule {', '.join(rules)})" if verified else f"none: {detail}"

    texts = {use.namespace: one(use.rules, use.detail, use.provenance) for use in row.namespaces}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"{namespace}: {text}" for namespace, text in texts.items())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, out: TextIO) -> None:
    """Columns padded to their widest cell, the last one not; every cell escaped (text from outside)."""
    cells = [list(headers), *([escape(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers) - 1)]
    for row in cells:
        print("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]), file=out)


# --- JSON ------------------------------------------------------------------------------------------


def _json_report(report: AuditReport, *, policy_file: str) -> dict[str, Any]:
    inventory = report.inventory
    overrides = report.overrides
    return {
        "policy": {
            "name": report.policy,
            "file": policy_file,
            "overrides": {
                "mode": overrides.mode,
                "ruleModes": dict(overrides.rule_modes),
                "unmatched": overrides.unmatched,
            },
        },
        "summary": {
            "status": report.status,
            "objects": inventory.objects,
            "notChecked": dict(inventory.skipped),
            "workloads": len(report.workloads),
            "pods": sum(len(w.workload.pods) for w in report.workloads),
            "denied": sum(1 for w in report.workloads if w.status == "denied"),
            "warned": sum(1 for w in report.workloads if w.status == "warned"),
            "images": len(report.images),
            "withoutProvenance": sum(1 for row in report.images if not row.provenance),
            "lookups": report.looked_up,
            "failedLookups": report.failed_lookups,
            "notLookedUp": report.not_looked_up,
            "seconds": round(report.seconds, 3),
        },
        "workloads": [_json_workload(result) for result in report.workloads],
        "images": [_json_image(row) for row in report.images],
    }


def _json_workload(result: WorkloadResult) -> dict[str, Any]:
    workload = result.workload
    document: dict[str, Any] = {
        "namespace": workload.namespace,
        "kind": workload.kind,
        "name": workload.name,
        "read": workload.read,
        "status": result.status,
        "objects": dict(result.objects),
        "findings": [_json_finding(r.finding, r.found_in) for r in result.findings],
    }
    if result.baseline is not None:
        document["baseline"] = result.baseline
    if result.not_checked:
        document["notChecked"] = list(result.not_checked)
    return document


def _json_finding(finding: AuditFinding, found_in: Mapping[str, int]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "source": finding.source,
        "status": finding.status,
        "failures": [{"code": f.code, "mode": f.mode, "message": f.message} for f in finding.failures],
        "foundIn": dict(found_in),
    }
    if finding.source != "object":
        document.update(
            location=finding.location, container=finding.container, image=finding.image, digest=finding.digest
        )
    if finding.image_id:
        document["imageID"] = finding.image_id
    if finding.baseline is not None:
        document["baseline"] = finding.baseline
    return document


def _json_image(row: ImageRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "digest": row.digest,
        "written": list(row.written),
        "running": list(row.running),
        "pods": row.pods,
        "workloads": row.workloads,
        "provenance": row.provenance,
        "namespaces": [
            {
                "namespace": use.namespace,
                "outcome": use.outcome,
                "provenance": use.provenance,
                **({"rules": list(use.rules)} if use.rules else {}),
                **({"detail": use.detail} if use.detail else {}),
            }
            for use in row.namespaces
        ],
    }
