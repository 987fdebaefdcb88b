"""The operator guide's "which commit is running" queries, run as written against pods imagegate annotated.

The pods get their provenance annotations from the patch ``/mutate`` sends
(:func:`webhook.admission.provenance.provenance_patch`); the guide's commands run in bash with the real
``kubectl`` (and ``jq``), talking to a stand-in for the API server's pod reads (``FakePodsApi``), so
kubectl's own jsonpath, custom-columns and JSON printers answer.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from tests.support.fake_pods_api import FakePodsApi
from tests.support.guide_shell import guide_blocks
from tests.support.reviews import KINDS, kubectl, review
from webhook.admission.provenance import ProvenanceRecord, provenance_patch
from webhook.admission.workloads import image_slots


def _record(commit: str) -> ProvenanceRecord:
    return ProvenanceRecord(
        digest="sha256:" + commit[0] * 64,
        repository="github.com/acme/app",
        ref="refs/tags/v1.4.2",
        commit=commit,
        policy="production",
        rule="acme-release",
    )


def _pod(name: str, namespace: str, commits: dict[str, str | None]) -> dict[str, Any]:
    """A Pod as ``/mutate`` leaves it: its containers ``commits`` (None: no verified provenance)."""
    obj: dict[str, Any] = review(
        "Pod", [(c, f"ghcr.io/acme/{c}:1") for c in commits], name=name, namespace=namespace
    )["request"]["object"]
    obj["metadata"]["name"] = name
    slots = image_slots("Pod", obj, group=KINDS["Pod"][0])
    ops, _ = provenance_patch(
        kind="Pod",
        group="",
        obj=obj,
        old=None,
        old_slots=(),
        records=[(s, _record(c) if (c := commits[s.name]) else None) for s in slots],
        running=frozenset(),
    )
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(obj), ops)
    return patched


def _queries() -> list[str]:
    """The guide's shell blocks that read the provenance annotations."""
    return [
        block
        for block in guide_blocks("sh")
        if "provenance\\.imagegate\\.dev/" in block or "provenance.imagegate.dev/" in block
    ]


@pytest.fixture
def run(tmp_path: Path) -> Any:
    pods = [
        _pod("web-7d9f8-x2k4j", "default", {"app": "a" * 40, "proxy": None}),
        _pod("web-7d9f8-q8zrt", "default", {"app": "b" * 40, "proxy": None}),
        _pod("worker-0", "batch", {"worker": "c" * 40}),
    ]
    real = kubectl()
    jq = shutil.which("jq")
    if jq is None:
        pytest.fail("jq is required for the operator guide's query (Debian package jq)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def run(script: str) -> str:
        with FakePodsApi(pods).serve() as server:
            shim = bin_dir / "kubectl"
            shim.write_text(f'#!/bin/sh\nexec "{real}" --server "{server}" "$@"\n')
            shim.chmod(0o755)
            env = {
                **os.environ,
                "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                "KUBECONFIG": os.devnull,
            }
            result = subprocess.run(
                ["bash", "-c", "set -o pipefail\n" + script],
                capture_output=True,
                text=True,
                timeout=60,
                env=env,
                check=False,
            )
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


def test_the_guide_shows_three_queries() -> None:
    assert len(_queries()) == 3


def test_one_pods_container_answers_with_its_commit(run: Any) -> None:
    [query] = [q for q in _queries() if "jsonpath=" in q]
    recorded = json.loads(run(query))
    assert recorded["commit"] == "a" * 40 and recorded["repository"] == "github.com/acme/app"


def test_every_pod_of_a_namespace_is_one_row(run: Any) -> None:
    [query] = [q for q in _queries() if "custom-columns" in q]
    rows = [line.split(None, 1) for line in run(query).splitlines()]
    assert rows[0] == ["POD", "APP"]
    assert {name: json.loads(value)["commit"] for name, value in rows[1:]} == {
        "web-7d9f8-x2k4j": "a" * 40,
        "web-7d9f8-q8zrt": "b" * 40,
    }


def test_every_container_of_every_pod_with_jq(run: Any) -> None:
    [query] = [q for q in _queries() if "jq" in q]
    lines = sorted(run(query).splitlines())
    assert lines == [
        f"batch\tworker-0\tworker\tgithub.com/acme/app\t{'c' * 40}",
        f"default\tweb-7d9f8-q8zrt\tapp\tgithub.com/acme/app\t{'b' * 40}",
        f"default\tweb-7d9f8-x2k4j\tapp\tgithub.com/acme/app\t{'a' * 40}",
    ]  # proxy: no verified provenance, no annotation, no row
