"""``imagegate test``: run declarative policy test suites (cases with expected decisions).

A suite is a YAML file of kind ``PolicyTest``::

    apiVersion: imagegate.dev/v1alpha1
    kind: PolicyTest
    metadata: {name: default-policy}
    policy: ../default.yaml            # relative to this file
    now: "2026-11-26T00:00:00Z"        # optional: the clock for exemption expiry
    cases:
      - name: latest is denied
        images: ["nginx:latest"]       # a Pod with these containers, or
        # manifest: web.yaml           # a manifest / AdmissionReview file, or
        # object: {kind: Deployment, ...}
        namespace: default             # optional
        expect:
          allowed: false
          outcomes: [tag-denied]       # optional: per image, in order (reason codes or allowed outcomes)
          messageContains: "mutable"   # optional
          warnings: 0                  # optional: number of warnings

Every case runs /mutate then /validate exactly as the server would (``imagegate evaluate``).
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import sys
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from webhook.dryrun import DryRun, DryRunResult, review_for, reviews_from_text
from webhook.errors import BadRequest, ConfigError
from webhook.formats import API_VERSION
from webhook.times import parse_rfc3339

_EXPECT_KEYS = {"allowed", "outcomes", "messageContains", "warnings"}
_CASE_KEYS = {"name", "images", "manifest", "object", "namespace", "expect"}


_EXAMPLES = """\
examples:
  # every suite in a directory (*.test.yaml), or one file
  imagegate test policies/tests
  imagegate test policies/tests/default.test.yaml
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "test",
        help="run policy test suites",
        description="Run PolicyTest suites: each case is admitted offline (mutate, then validate) and its "
        "decision compared with what the case expects. Exit 1 if any case fails.",
        epilog=_EXAMPLES,
    )
    p.add_argument(
        "paths", nargs="+", metavar="PATH", help="PolicyTest files, or directories searched for *.test.yaml"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    files = list(_suite_files(args.paths))
    if not files:
        print("error: no PolicyTest files found", file=sys.stderr)
        return 2
    passed = failed = 0
    for path in files:
        try:
            suite = _load_suite(path)
        except (OSError, ValueError, yaml.YAMLError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        dry_run = DryRun(suite["policy"], clock=_clock(suite["now"]))
        try:
            for case in suite["cases"]:
                problems = _run_case(dry_run, case, base=path.parent)
                label = f"{path.name}: {case['name']}"
                if problems:
                    failed += 1
                    print(f"FAIL {label}")
                    for problem in problems:
                        print(f"     {problem}")
                else:
                    passed += 1
                    print(f"PASS {label}")
        finally:
            dry_run.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def _clock(fixed: datetime | None) -> Callable[[], datetime]:
    return (lambda: fixed) if fixed is not None else (lambda: datetime.now(UTC))


def _suite_files(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(path.rglob("*.test.yaml"))
        else:
            yield path


def _load_suite(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if not isinstance(doc, dict) or doc.get("kind") != "PolicyTest":
        raise ValueError("not a PolicyTest (expected kind: PolicyTest)")
    if doc.get("apiVersion") != API_VERSION:
        raise ValueError(f"apiVersion must be {API_VERSION}")
    if not isinstance(doc.get("policy"), str):
        raise ValueError("policy: the path of the ImagePolicy under test is required")
    cases = doc.get("cases")
    if not isinstance(cases, list) or not cases:
        raise ValueError("cases: a non-empty list is required")
    for index, case in enumerate(cases):
        where = f"cases[{index}]"
        if not isinstance(case, dict) or not isinstance(case.get("name"), str):
            raise ValueError(f"{where}: each case needs a name")
        unknown = set(case) - _CASE_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        if sum(k in case for k in ("images", "manifest", "object")) != 1:
            raise ValueError(f"{where}: give exactly one of images, manifest or object")
        expect = case.get("expect")
        if not isinstance(expect, dict) or "allowed" not in expect or set(expect) - _EXPECT_KEYS:
            raise ValueError(
                f"{where}: expect needs 'allowed' and may have {sorted(_EXPECT_KEYS - {'allowed'})}"
            )
    now = doc.get("now")
    policy = Path(doc["policy"])
    return {
        "policy": (policy if policy.is_absolute() else path.parent / policy).resolve(),
        "now": parse_rfc3339(now) if isinstance(now, str) else None,
        "cases": cases,
    }


def _reviews(case: Mapping[str, Any], *, base: Path) -> list[dict[str, Any]]:
    namespace = case.get("namespace")
    if "images" in case:
        containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(case["images"])]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "test"},
            "spec": {"containers": containers},
        }
        return [review_for(pod, namespace=namespace)]
    if "object" in case:
        return [review_for(case["object"], namespace=namespace)]
    manifest = Path(case["manifest"])
    source = manifest if manifest.is_absolute() else base / manifest
    return [r for _, r in reviews_from_text(source.read_text(), source=str(source), namespace=namespace)]


def _run_case(dry_run: DryRun, case: Mapping[str, Any], *, base: Path) -> list[str]:
    try:
        reviews = _reviews(case, base=base)
    except (OSError, ValueError, KeyError, yaml.YAMLError) as error:
        return [f"input: {error}"]
    if not reviews:
        return ["input: no objects with pod templates"]
    problems = []
    for review in reviews:
        try:
            result = dry_run.admit(review)
        except (BadRequest, ConfigError) as error:
            return [f"input: {error.user_message}"]
        problems += _compare(case["expect"], result)
    return problems


def _compare(expect: Mapping[str, Any], result: DryRunResult) -> list[str]:
    final = result.final
    response = final.review["response"]
    problems = []
    if bool(expect["allowed"]) != result.allowed:
        message = response.get("status", {}).get("message", "")
        problems.append(f"expected allowed={expect['allowed']}, got {result.allowed} {message}".rstrip())
    if "outcomes" in expect:
        found = [str(d.outcome) for d in final.decision.images] if final.decision else []
        if list(expect["outcomes"]) != found:
            problems.append(f"expected outcomes {list(expect['outcomes'])}, got {found}")
    if "messageContains" in expect:
        text = "\n".join([response.get("status", {}).get("message", ""), *response.get("warnings", [])])
        if str(expect["messageContains"]) not in text:
            problems.append(f"expected the message to contain {expect['messageContains']!r}, got {text!r}")
    if "warnings" in expect:
        count = len(response.get("warnings", []))
        if int(expect["warnings"]) != count:
            problems.append(f"expected {expect['warnings']} warning(s), got {count}")
    return problems
