"""``imagegate test``: run policy test suites (``kind: PolicyTest``), hermetically or against live registries.

A suite names the policy under test, cases with the decision each expects, and the facts about the
images the cases admit (format: policies/README.md, "Policy test suites")::

    apiVersion: imagegate.dev/v1alpha1
    kind: PolicyTest
    policy: ../examples/promotion.yaml
    now: "2026-12-01T00:00:00Z"
    images:
      - name: ghcr.io/acme/app
        digest: sha256:...
        tags: ["1.4.2"]
        signatures:
          - keyless: {issuer: https://token.actions.githubusercontent.com, subject: https://github.com/...}
    cases:
      - name: a signed release is admitted to staging
        namespace: staging-shop
        images: ["ghcr.io/acme/app:1.4.2"]
        expect: {allowed: true, outcomes: [verified]}

Every case is admitted as the server admits it, /mutate then /validate (:class:`webhook.dryrun.DryRun`).
By default the run is hermetic: the registry and the cryptography are answered from the declared facts
(:mod:`webhook.declared`) and everything else is the webhook's own code, so the suite needs no network
and runs the same in CI. Each case starts from a fresh world
(:class:`~webhook.declared.DeclaredGatherer`). ``--live`` instead uses the real
registries and Sigstore verification, as ``imagegate evaluate`` does, and ignores the declarations.

Output: a PASS or FAIL line per case (a failing one shows what was expected, the decision per image
and the explanation of each check), ``-o json`` for the same as one JSON document, and ``--junit
FILE`` for a JUnit XML report CI systems read. Exit 0 when every case passes, 1 when one fails, 2 when
a suite cannot be loaded (its problems are printed as ``imagegate lint`` prints them) or none is found.
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from webhook.cli._options import add_output
from webhook.cli.suite_report import (
    Admission,
    CaseResult,
    ImageResult,
    SuiteResult,
    json_report,
    junit_report,
    text_report,
)
from webhook.declared import DeclaredGatherer, declared_runtime
from webhook.dryrun import DryRun, DryRunResult, RuntimeBuilder, load_text, review_for, reviews_from_text
from webhook.errors import BadRequest, ConfigError
from webhook.explain import explanation_lines
from webhook.policy.loader import load_suite
from webhook.policy.model import Policy
from webhook.policy.suite import Expectation, PolicySuite, SuiteCase
from webhook.service import FactGatherer
from webhook.settings import Settings

_EXAMPLES = """\
examples:
  # every suite in a directory (*.test.yaml), or one file
  imagegate test policies/tests
  imagegate test policies/tests/default.test.yaml

  # in CI: a JUnit report for the CI's test view, or one JSON document
  imagegate test --junit report.xml policies/tests
  imagegate test -o json policies/tests

  # the same cases against the real registries and Sigstore, not the declared facts
  imagegate test --live policies/tests/default.test.yaml
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "test",
        help="run policy test suites",
        description="Run PolicyTest suites: each case is admitted offline (mutate, then validate) and its "
        "decision compared with what the case expects. By default hermetically: the registry and the "
        "cryptography are answered from the facts the suite declares under `images`, and nothing is "
        "fetched. Exit 0 when every case passes, 1 when one fails, 2 when a suite cannot be loaded.",
        epilog=_EXAMPLES,
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="PolicyTest files, or directories searched for *.test.yaml"
    )
    p.add_argument(
        "--live",
        action="store_true",
        help="use the real registries and signature verification instead of the declared facts",
    )
    add_output(p, what="one document with every suite, case and check")
    p.add_argument("--junit", type=Path, metavar="FILE", help="also write a JUnit XML report to FILE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = list(_suite_files(args.paths))
    if not files:
        print("error: no PolicyTest files found", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    results = [_run_suite(path, live=args.live, started=started) for path in files]
    if args.output == "json":
        print(json_report(results))
    else:
        print(text_report(results), end="")
    if args.junit is not None:
        try:
            args.junit.write_bytes(junit_report(results, timestamp=started))
        except OSError as error:
            print(f"error: cannot write {args.junit}: {error.strerror}", file=sys.stderr)
            return 2
    if any(result.problems for result in results):
        return 2
    return 1 if any(not case.passed for result in results for case in result.cases) else 0


def _suite_files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(path.rglob("*.test.yaml"))
        else:
            yield path


def _run_suite(path: Path, *, live: bool, started: datetime) -> SuiteResult:
    mode = "live" if live else "hermetic"
    begun = time.monotonic()
    try:
        loaded = load_suite(path, now=started)
    except ConfigError as error:
        problems = tuple(str(p) for p in error.problems if p.severity == "error") or (error.user_message,)
        print(f"error: {error.user_message}", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return SuiteResult(path=path, name=path.name, policy="", mode=mode, problems=problems)
    for warning in loaded.warnings:
        print(str(warning), file=sys.stderr)
    suite = loaded.suite
    now = suite.now or started
    clock: Callable[[], datetime] = lambda: now  # noqa: E731
    if live and (suite.world.images or suite.world.quarantine):
        note = "--live: the declared images and quarantine entries are not used"
        print(f"note: {path}: {note}", file=sys.stderr)
    cases: list[CaseResult] = []
    if live:
        dry_run = DryRun(suite.policy, clock=clock)
        try:
            cases = [_run_case(dry_run, case) for case in suite.cases]
        finally:
            dry_run.close()
    else:
        worlds: list[DeclaredGatherer] = []
        dry_run = DryRun(suite.policy, clock=clock, runtime=_hermetic(suite, now=now, built=worlds))
        try:
            for case in suite.cases:
                # A fresh world per case: nothing one case does (markers seen, say) changes another.
                worlds[-1].reset()
                cases.append(_run_case(dry_run, case))
        finally:
            dry_run.close()
    return SuiteResult(
        path=path,
        name=suite.name,
        policy=str(suite.policy),
        mode=mode,
        cases=tuple(cases),
        seconds=time.monotonic() - begun,
    )


def _hermetic(suite: PolicySuite, *, now: datetime, built: list[DeclaredGatherer]) -> RuntimeBuilder:
    """Builds the declared world for the loaded policy, and keeps its gatherer in ``built``."""

    def build(policy: Policy, settings: Settings) -> tuple[Policy, FactGatherer]:
        policy, gatherer = declared_runtime(
            policy, world=suite.world, source=suite.path, settings=settings, now=now
        )
        built.append(gatherer)
        return policy, gatherer

    return build


def _reviews(case: SuiteCase) -> list[tuple[str, dict[str, Any]]]:
    if case.images is not None:
        old = _pod(case.old_images) if case.old_images is not None else None
        review = review_for(_pod(case.images), namespace=case.namespace, old=old)
        return [(_label(review), review)]
    if case.object is not None:
        review = review_for(case.object, namespace=case.namespace, old=case.old_object)
        return [(_label(review), review)]
    if case.manifest is None:  # the suite's schema requires one of the three
        raise ValueError("the case names no input")
    text = load_text(case.manifest)
    return list(reviews_from_text(text, source=str(case.manifest), namespace=case.namespace))


def _pod(images: tuple[str, ...]) -> dict[str, Any]:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "test"},
        "spec": {"containers": containers},
    }


def _label(review: dict[str, Any]) -> str:
    request = review["request"]
    return f"{request['kind']['kind']} {request['namespace']}/{request['name']} ({request['operation']})"


def _run_case(dry_run: DryRun, case: SuiteCase) -> CaseResult:
    begun = time.monotonic()

    def done(problems: list[str], admissions: list[Admission], *, error: bool = False) -> CaseResult:
        return CaseResult(
            name=case.name,
            line=case.line,
            expect=case.expect,
            problems=tuple(problems),
            admissions=tuple(admissions),
            error=error,
            seconds=time.monotonic() - begun,
        )

    try:
        reviews = _reviews(case)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as error:
        return done([f"input: {error}"], [], error=True)
    if not reviews:
        return done(["input: no objects with pod templates"], [], error=True)
    problems: list[str] = []
    admissions: list[Admission] = []
    for label, review in reviews:
        try:
            result = dry_run.admit(review)
        except (BadRequest, ConfigError) as error:
            return done([f"input: {error.user_message}"], admissions, error=True)
        admission = _admission(label, result)
        admissions.append(admission)
        problems += _compare(case.expect, admission)
    return done(problems, admissions)


def _admission(label: str, result: DryRunResult) -> Admission:
    final = result.final
    response = final.review["response"]
    decided_images = final.decision.images if final.decision is not None else ()
    explanations = final.explanations()
    images = tuple(
        ImageResult(
            slot=decided.slot.describe(),
            image=decided.slot.image,
            outcome=str(decided.outcome),
            status=decided.status,
            digest=decided.digest,
            rules=decided.rules,
            failures=tuple((str(f.code), f.message, str(mode)) for f, mode in decided.failures),
            explanation=tuple(explanation_lines(explained, indent="")),
        )
        for decided, explained in zip(decided_images, explanations, strict=True)
    )
    return Admission(
        label=label,
        allowed=result.allowed,
        message=response.get("status", {}).get("message", ""),
        warnings=tuple(response.get("warnings", [])),
        images=images,
    )


def _compare(expect: Expectation, admission: Admission) -> list[str]:
    problems = []
    if expect.allowed != admission.allowed:
        got = f"got {admission.allowed} {admission.message}".rstrip()
        problems.append(f"expected allowed={expect.allowed}, {got}")
    if expect.outcomes is not None:
        found = [image.outcome for image in admission.images]
        if list(expect.outcomes) != found:
            problems.append(f"expected outcomes {list(expect.outcomes)}, got {found}")
    if expect.message_contains is not None:
        text = "\n".join([admission.message, *admission.warnings])
        if expect.message_contains not in text:
            problems.append(f"expected the message to contain {expect.message_contains!r}, got {text!r}")
    if expect.warnings is not None and expect.warnings != len(admission.warnings):
        problems.append(f"expected {expect.warnings} warning(s), got {len(admission.warnings)}")
    return problems
