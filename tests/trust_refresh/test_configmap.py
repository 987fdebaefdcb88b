"""``imagegate trust refresh --configmap``: the in-cluster path of the CronJob, against a TLS API stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.support.fake_kube_api import FakeKubeApi
from tests.support.refresh_world import RefreshWorld, Run, fixture_world  # noqa: F401 - pytest fixture
from tests.support.trust_roots import (
    PUBLIC_GOOD_NEWER,
    PUBLIC_GOOD_OLDER,
    REKOR_2025_LOG_ID,
    refused_by_serve,
)
from webhook.trust_refresh import configmap

TARGET = "trusted_root.json"


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    api = FakeKubeApi(tmp_path / "kube", data={TARGET: PUBLIC_GOOD_OLDER.decode()})
    with api.serve() as (host, port):
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
        monkeypatch.setattr(configmap, "SERVICE_ACCOUNT_DIR", api.service_account_dir)
        yield api


def _refresh(world: RefreshWorld, *extra: str) -> Run:
    return world.run(
        "trust", "refresh", "--url", world.server.url, "--root", str(world.root_file),
        "--metadata-dir", str(world.metadata_dir), "--configmap", "imagegate/imagegate-trust", *extra,
    )  # fmt: skip


def _patches(kube: FakeKubeApi) -> list[object]:
    return [r.body for r in kube.requests if r.method == "PATCH"]


def test_a_changed_trusted_root_patches_the_configmap_key(world: RefreshWorld, kube: FakeKubeApi) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = _refresh(world)

    assert run.code == 0, run.err
    assert kube.data[TARGET] == PUBLIC_GOOD_NEWER.decode()
    # One GET, then one merge patch of that key only, conditional on the version read.
    assert [(r.method, r.path) for r in kube.requests] == [("GET", kube.path), ("PATCH", kube.path)]
    patch = kube.requests[1]
    assert patch.content_type == "application/merge-patch+json"
    assert patch.body == {
        "metadata": {"resourceVersion": "100"},
        "data": {TARGET: PUBLIC_GOOD_NEWER.decode()},
    }
    assert patch.query == {"fieldManager": ["imagegate-trust-refresh"]}
    assert run.out.startswith(
        f"configmap imagegate/imagegate-trust key {TARGET}: updated from {world.server.url}"
    )
    assert f"  added    tlog  {REKOR_2025_LOG_ID} https://log2025-1.rekor.sigstore.dev" in run.out
    assert kube.token not in run.out + run.err


def test_an_unchanged_trusted_root_is_not_patched(world: RefreshWorld, kube: FakeKubeApi) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_OLDER})

    run = _refresh(world)

    assert run.code == 0, run.err
    assert "unchanged" in run.out
    assert _patches(kube) == []


def test_another_key_can_be_named(world: RefreshWorld, kube: FakeKubeApi) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = _refresh(world, "--key", "public-good.json")

    assert run.code == 0, run.err
    assert f"{world.out.name}" not in run.out
    assert kube.data == {TARGET: PUBLIC_GOOD_OLDER.decode(), "public-good.json": PUBLIC_GOOD_NEWER.decode()}
    assert "created" in run.out


def test_a_concurrent_change_is_not_overwritten(world: RefreshWorld, kube: FakeKubeApi) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    def someone_edits() -> None:
        kube.data[TARGET] = "edited by someone else"
        kube.resource_version += 1

    kube.after_get = someone_edits

    run = _refresh(world)

    assert run.code == 1
    assert "changed while the refresh ran" in run.err
    assert kube.data[TARGET] == "edited by someone else"
    assert len(_patches(kube)) == 1


def test_missing_rbac_fails_before_any_download(world: RefreshWorld, kube: FakeKubeApi) -> None:
    kube.forbid.add("get")
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = _refresh(world)

    assert run.code == 2
    assert "the service account may not get ConfigMap imagegate/imagegate-trust (HTTP 403)" in run.err
    assert world.server.requests == []


def test_a_missing_configmap_is_a_configuration_error(world: RefreshWorld, kube: FakeKubeApi) -> None:
    run = world.run(
        "trust", "refresh", "--url", world.server.url, "--root", str(world.root_file),
        "--metadata-dir", str(world.metadata_dir), "--configmap", "imagegate/other",
    )  # fmt: skip

    assert run.code == 2
    assert "ConfigMap imagegate/other does not exist" in run.err


@pytest.mark.sigstore
def test_a_refused_trusted_root_is_not_patched(
    world: RefreshWorld, kube: FakeKubeApi, tmp_path: Path
) -> None:
    world.repo.publish({TARGET: refused_by_serve(tmp_path)})

    run = _refresh(world)

    assert run.code == 1
    assert "would refuse" in run.err
    assert "configmap imagegate/imagegate-trust key trusted_root.json was not changed" in run.err
    assert _patches(kube) == []
    assert kube.data[TARGET] == PUBLIC_GOOD_OLDER.decode()


def test_a_wrong_token_is_refused(world: RefreshWorld, kube: FakeKubeApi) -> None:
    (kube.service_account_dir / "token").write_text("stale-token")
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = _refresh(world)

    assert run.code == 2
    assert "(HTTP 401)" in run.err
    assert "stale-token" not in run.err


def test_a_tuf_failure_leaves_the_configmap(world: RefreshWorld, kube: FakeKubeApi) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})
    world.repo.tamper(TARGET, PUBLIC_GOOD_OLDER)

    run = _refresh(world)

    assert run.code == 1
    assert _patches(kube) == []


def test_the_api_server_certificate_is_verified(world: RefreshWorld, kube: FakeKubeApi) -> None:
    trustme.CA().cert_pem.write_to_path(str(kube.service_account_dir / "ca.crt"))
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = _refresh(world)

    assert run.code == 1
    assert "cannot reach the API server: TLS certificate not trusted" in run.err
    assert kube.requests == []
