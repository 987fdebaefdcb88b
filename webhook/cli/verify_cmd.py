"""``imagegate verify --policy FILE IMAGE...``: the full admission check for single images, explained.

For each IMAGE it runs the same steps, in the same order, with the same adapters as the webhook
(:mod:`webhook.decision` and :class:`webhook.wiring.Gatherer`): registry allowlist, exemption,
denied tag, matching rules, tag resolution, quarantine (lists and registry markers), then every
signature and attestation requirement of every matching rule, and prints each step with its outcome
and evidence (:mod:`webhook.explain`): the rules that govern the image (and those that would in
another namespace), the digest, every quarantine lookup (an index's manifests too), and per
requirement every signature or attestation found, who signed it, which signer it satisfies and the
predicate fields compared with the policy.

Text from outside (image strings, registry answers, certificate identities, marker reasons) is
printed escaped as in the webhook's answers (:mod:`webhook.text`).

Exit codes: 0 every image passes every check; 1 some check failed for some image (whatever the
mode of the rule: ``warn`` and ``audit`` failures are failures here, marked as such); 2 the policy or
its trust material is invalid, or the command line is wrong.

``-o json`` prints one JSON document instead: the ``policy`` (name, file, mode, trust roots and keys
loaded) and per image its decision (``image``, ``namespace``, ``reference``, ``rules``, ``exemption``,
``digest``, ``pinned``, ``outcome``, ``status``, ``mode`` and ``rule`` of the deciding failure,
``passed``, ``failures`` with code, message and mode), ``explanation``: every check with its evidence,
as the text shows it (:func:`webhook.explain.explanation_json`), and ``steps``: the text's lines.
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from webhook.admission.workloads import ImageSlot
from webhook.cli._options import add_output, seconds
from webhook.deadline import Deadline
from webhook.decision import ImageDecision, evaluate, plan_image
from webhook.explain import ImageExplanation, explain_image, explanation_json, explanation_lines
from webhook.facts import ImageFacts
from webhook.fanout import FanOut
from webhook.policy.loader import load_policy
from webhook.policy.model import Policy
from webhook.quarantine_facts import QuarantineReader
from webhook.reasons import ALLOWED_OUTCOMES
from webhook.registry.client import RegistryClient
from webhook.registry.settings import RegistrySettings
from webhook.seen_markers import SeenMarkers
from webhook.text import escape
from webhook.times import format_rfc3339
from webhook.verify.cached import CachedVerifier
from webhook.verify.trust import TrustMaterial
from webhook.verify.verifier import ImageVerifier
from webhook.wiring import Gatherer

_EXIT_OK, _EXIT_FAILED = 0, 1


_EXAMPLES = """\
examples:
  # every check for one image, explained
  imagegate verify --policy policies/examples/promotion.yaml ghcr.io/acme/app:1.4.2

  # as admitted to a namespace (rules and exemptions match by namespace), with a longer budget
  imagegate verify --policy policy.yaml --namespace prod-shop --timeout 2m ghcr.io/acme/app:1.4.2

  # the decisions as JSON, e.g. for a CI gate
  imagegate verify --policy policy.yaml -o json ghcr.io/acme/app@$DIGEST | jq '.images[].passed'
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "verify",
        help="run the full admission check for images and explain every step",
        description="Check each IMAGE as the webhook would (registry allowlist, exemptions, denied tags, "
        "tag resolution, quarantine, signatures and attestations of every matching rule) and print "
        "every step with its outcome. Exit 0 if every check passes, 1 if any fails, 2 on a policy or "
        "configuration error.",
        epilog=_EXAMPLES,
    )
    p.add_argument("--policy", required=True, type=Path, metavar="FILE", help="ImagePolicy file")
    p.add_argument(
        "--namespace",
        default="default",
        help="namespace the image is admitted to, for rule and exemption matching (default: default)",
    )
    p.add_argument(
        "--timeout",
        type=seconds(),
        default=30.0,
        metavar="SECONDS",
        help="time budget per image: seconds or a duration like 45s or 2m (default 30)",
    )
    add_output(p, what="the policy and, per image, its decision and every step")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Verify every image; ConfigError (exit 2) propagates to the CLI's entry point."""
    now = datetime.now(UTC)
    loaded = load_policy(args.policy, now=now)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    policy = loaded.policy
    trust = TrustMaterial.from_policy(policy)
    as_json = args.output == "json"
    out = sys.stdout
    if not as_json:
        print(
            f"policy {policy.name} ({args.policy}): {len(trust.roots)} trust root(s), "
            f"{len(trust.keys)} key(s), mode {policy.mode}",
            file=out,
        )
    failed = False
    images: list[dict[str, Any]] = []
    with (
        RegistryClient(RegistrySettings.from_policy(policy)) as client,
        ThreadPoolExecutor(max_workers=4, thread_name_prefix="imagegate-lookups") as pool,
    ):
        fanout = FanOut(pool)
        gatherer = Gatherer(
            policy,
            client,
            CachedVerifier(ImageVerifier(trust), ttl=0.0, failure_ttl=0.0, fanout=fanout),
            QuarantineReader(policy, client, SeenMarkers(None), pool),
            fanout,
        )
        for image in args.images:
            steps = io.StringIO() if as_json else out
            decision, explanation, passed = _verify_one(
                image,
                policy=policy,
                gatherer=gatherer,
                namespace=args.namespace,
                timeout=args.timeout,
                out=steps,
            )
            failed = failed or not passed
            if isinstance(steps, io.StringIO):
                images.append(
                    _decision_json(
                        decision, explanation, namespace=args.namespace, passed=passed, steps=steps.getvalue()
                    )
                )
    if as_json:
        document = {
            "policy": {
                "name": policy.name,
                "file": str(args.policy),
                "mode": policy.mode,
                "trustRoots": len(trust.roots),
                "keys": len(trust.keys),
            },
            "images": images,
        }
        print(json.dumps(document, indent=2), file=out)
    return _EXIT_FAILED if failed else _EXIT_OK


def _verify_one(
    image: str, *, policy: Policy, gatherer: Gatherer, namespace: str, timeout: float, out: TextIO
) -> tuple[ImageDecision, ImageExplanation, bool]:
    print("\n" + escape(f"image {image} (namespace {namespace})"), file=out)
    decision, explanation = _check_one(
        image, policy=policy, gatherer=gatherer, namespace=namespace, timeout=timeout
    )
    for line in explanation_lines(explanation):
        print(line, file=out)
    failed = sorted({check.mode for check in explanation.checks if check.outcome == "failed" and check.mode})
    if not failed and explanation.outcome in ALLOWED_OUTCOMES:
        verdict = "PASS"
    elif explanation.status != "denied":
        verdict = f"FAIL (checks failed in {'/'.join(failed)} mode: admitted)"
    else:
        verdict = "FAIL (denied)"
    print(f"  result: {verdict}: {explanation.outcome}", file=out)
    return decision, explanation, verdict == "PASS"


def _check_one(
    image: str, *, policy: Policy, gatherer: Gatherer, namespace: str, timeout: float
) -> tuple[ImageDecision, ImageExplanation]:
    """The decision ``/mutate`` would make for a new container of ``image`` in ``namespace``, explained."""
    now = datetime.now(UTC)
    plan = plan_image(image, policy=policy, namespace=namespace, now=now, stage="mutate")
    facts = ImageFacts()
    if plan.needs_facts:
        facts = gatherer(plan, deadline=Deadline.after(timeout), now=now)
    slot = ImageSlot(pointer="/image", location="containers", name="", image=image)
    decision = evaluate(
        (slot,),
        policy=policy,
        namespace=namespace,
        facts={image: facts},
        now=now,
        stage="mutate",
        plans={image: plan},
    ).images[0]
    explanation = explain_image(decision, plan=plan, facts=facts, policy=policy, namespace=namespace)
    return decision, explanation


def _decision_json(
    decision: ImageDecision,
    explanation: ImageExplanation,
    *,
    namespace: str,
    passed: bool,
    steps: str,
) -> dict[str, Any]:
    """One image of ``-o json``: the decision's fields, every check with its evidence, and the text's
    lines for it (unindented)."""
    exemption = decision.exemption
    return {
        "image": decision.slot.image,
        "namespace": namespace,
        "reference": str(decision.ref) if decision.ref is not None else None,
        "rules": list(decision.rules),
        "exemption": (
            {"reason": exemption.reason, "expires": format_rfc3339(exemption.expires)} if exemption else None
        ),
        "digest": decision.digest,
        "pinned": decision.pin,
        "outcome": decision.outcome,
        "status": decision.status,
        "mode": decision.mode,
        "rule": decision.rule,
        "passed": passed,
        "failures": [{"code": f.code, "message": f.message, "mode": m} for f, m in decision.failures],
        "explanation": explanation_json(explanation),
        "steps": [line.strip() for line in steps.splitlines()[2:]],
    }
