"""``imagegate evaluate``: the offline dry-run. Runs /mutate then /validate exactly as the server would.

``--json`` prints a JSON array with, per input, the AdmissionReview /mutate answers and then the one
/validate answers, each as the server sends it plus three keys beside ``response``: ``stage``
(``mutate`` or ``validate``), ``input`` (:meth:`webhook.dryrun.Input.as_json`: the file, the YAML
document's number, the List item, and the object's kind, namespace, name, operation and request uid)
and, when the answer carries a patch, ``patch``: the JSONPatch decoded (``response.patch`` keeps the
base64 the API server gets).
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from webhook.admission.review import AdmissionReviewResponse
from webhook.decision import RUNNING_NOTE, ImageDecision
from webhook.dryrun import DryRun, DryRunResult, Input, inputs_from_text, load_text
from webhook.errors import BadRequest
from webhook.explain import explanation_lines
from webhook.text import escape

_EXAMPLES = """\
examples:
  # a manifest kubectl makes, from stdin
  kubectl create deployment web --image=nginx:1.27 --dry-run=client -o yaml \\
    | imagegate evaluate --policy policies/default.yaml -

  # files (several documents, Lists, AdmissionReviews), for a namespace
  imagegate evaluate --policy policy.yaml --namespace prod-shop web.yaml review.json

  # every check of each image, with its evidence (signers, provenance fields, quarantine lookups)
  imagegate evaluate --policy policy.yaml --explain web.yaml

  # the answers as JSON: what /validate said about each input
  imagegate evaluate --policy policy.yaml --json web.yaml \\
    | jq '.[] | select(.stage == "validate") | .response.allowed'
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="dry-run AdmissionReviews or manifests against a policy",
        description="Run /mutate then /validate offline, exactly as the server would, and print per image: "
        "decision, reason code, rule, resolved digest and patch. Objects with no image imagegate checks "
        "(other kinds, no pod spec) are listed as 'not checked' with the reason. "
        "Exit 1 if anything is denied.",
        epilog=_EXAMPLES,
    )
    p.add_argument("--policy", required=True, type=Path, help="ImagePolicy file")
    p.add_argument("--namespace", help="namespace for manifests that name none (default: default)")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the AdmissionReview answers as a JSON array, each labelled with its stage and input, "
        "patches decoded",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="under each image, print every check with its outcome and evidence: the rules that govern it "
        "(and those that would in another namespace), the digest, the quarantine lookups, and per rule "
        "each signature or attestation found, who signed it, which signer it satisfies and the "
        "predicate fields compared with the policy",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="AdmissionReview JSON or YAML/JSON manifests ('-' = stdin)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    dry_run = DryRun(args.policy.resolve())
    try:
        reviews = [
            review
            for source in args.inputs
            for review in inputs_from_text(
                load_text(source, stdin=lambda: sys.stdin.buffer),
                source=source,
                namespace=args.namespace,
                unchecked=True,
            )
        ]
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not reviews:
        print("error: no Kubernetes objects found in the input", file=sys.stderr)
        return 2
    answers: list[dict[str, Any]] = []
    denied = False
    try:
        for found, review in reviews:
            try:
                result = dry_run.admit(review)
            except BadRequest as error:
                print(f"error: {escape(found.label)}: {error.user_message}", file=sys.stderr)
                return 2
            answers += [
                _labelled(result.mutated.review, stage="mutate", found=found),
                _labelled(result.validated.review, stage="validate", found=found),
            ]
            denied |= not result.allowed
            if not args.json:
                _print_human(found.label, result, explain=args.explain)
    finally:
        dry_run.close()
    if args.json:
        print(json.dumps(answers, indent=2))
    return 1 if denied else 0


def _labelled(review: AdmissionReviewResponse, *, stage: str, found: Input) -> dict[str, Any]:
    """The answer as the server sends it, with its stage, its input and its patch decoded."""
    labelled: dict[str, Any] = {**review, "stage": stage, "input": found.as_json()}
    patch = review["response"].get("patch")
    if patch:
        labelled["patch"] = json.loads(base64.b64decode(patch))
    return labelled


def _print_human(label: str, result: DryRunResult, *, explain: bool = False) -> None:
    """Per image, the decision of the stage that settles it, plus what /mutate pinned (and with
    ``explain``, every check of the image with its evidence).

    The heading (kind, namespace and name) and the reasons come from the input, which is often not the
    reader's own: they are escaped (:func:`webhook.text.escape`), so none can forge a line.
    """
    print(escape(label))
    mutated, final = result.mutated, result.final
    pins = {d.slot.pointer: d.pin for d in (mutated.decision.images if mutated.decision else ()) if d.pin}
    response = final.review["response"]
    not_checked = response.get("auditAnnotations", {}).get("notChecked")
    if final.decision is None and not_checked:
        print(f"  not checked: {escape(not_checked)}")
    elif final.decision is None:
        message = response.get("status", {}).get("message", "")
        print(f"  {'allowed' if response['allowed'] else 'denied'} {escape(message)}".rstrip())
    else:
        explanations = final.explanations() if explain else ()
        for index, image in enumerate(final.decision.images):
            print("  " + _image_line(image, pins.get(image.slot.pointer)))
            if explanations:
                print("\n".join(explanation_lines(explanations[index], indent="      ")))
    patch = mutated.review["response"].get("patch")
    if patch:
        print("  patch: " + base64.b64decode(patch).decode())
    print(f"  result: {'allowed' if response['allowed'] else 'denied'}")


def _image_line(image: ImageDecision, pin: str | None) -> str:
    head = f"{image.slot.describe()} image {json.dumps(image.slot.image)}: {image.status}"
    if image.failures:
        detail = "; ".join(f"[{f.code}] {escape(f.message)}" for f, _ in image.failures)
        if image.running:
            detail += f"; {RUNNING_NOTE}"
        head += f" {detail}"
    else:
        head += f" ({image.outcome})"
    extras = []
    if image.rules and not image.failures:  # failure messages already name their rule
        extras.append(f"rule {', '.join(image.rules)}")
    if image.digest:
        extras.append(f"digest {image.digest}")
    if pin:
        extras.append(f"pinned to {pin}")
    return head + (f" [{'; '.join(extras)}]" if extras else "")
