"""Fixtures for the installation tests: rendered kustomizations and generated static certificates."""

from __future__ import annotations

import contextlib
import io
import shutil
from typing import Any

import pytest

from tests.support.deploy import DEPLOY, NAMESPACE, SERVICE, PodView, StaticCerts, kustomize, materialise


@pytest.fixture(scope="session")
def static_certs(tmp_path_factory: pytest.TempPathFactory) -> StaticCerts:
    """A copy of deploy/ with `imagegate certs` output in overlays/static-certs/certs."""
    from webhook.cli import main

    root = tmp_path_factory.mktemp("deploy-copy")
    deploy = root / "deploy"
    shutil.copytree(DEPLOY, deploy, ignore=shutil.ignore_patterns("certs"))
    out = deploy / "overlays" / "static-certs" / "certs"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()):
        code = main(["certs", "--namespace", NAMESPACE, "--service", SERVICE, "--out", str(out)])
    assert code == 0
    return StaticCerts(deploy=deploy, out=out, stdout=stdout.getvalue())


@pytest.fixture(scope="session")
def rendered(static_certs: StaticCerts) -> dict[str, list[dict[str, Any]]]:
    """Every kustomization of deploy/, rendered: the base and each overlay."""
    return {
        "base": kustomize(DEPLOY / "base"),
        "cert-manager": kustomize(DEPLOY / "overlays" / "cert-manager"),
        "static-certs": kustomize(static_certs.overlay),
    }


@pytest.fixture(scope="session")
def pod_view(rendered: dict[str, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory) -> PodView:
    """The files the server pod of the static-certs installation sees, laid out in a temporary directory."""
    return materialise(rendered["static-certs"], tmp_path_factory.mktemp("etc-imagegate"))
