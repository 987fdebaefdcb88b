"""``imagegate lint --root DIR``: a policy written for the cluster (``/etc/imagegate/...`` paths) lints
against local files laid out as the pod sees them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from webhook.cli import lint

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "base"
QUARANTINE = "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\nentries: []\n"


def _run(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="imagegate")
    lint.register(parser.add_subparsers())
    args = parser.parse_args(["lint", *map(str, argv)])
    return int(args.func(args))


def _policy(directory: Path, *, quarantine: list[str], credentials: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "policy.yaml"
    path.write_text(
        "apiVersion: imagegate.dev/v1alpha1\nkind: ImagePolicy\nmetadata: {name: t}\nspec:\n"
        f"  registries: {{allow: [ghcr.io], credentialsFile: {credentials}}}\n"
        f"  quarantine: {{files: {json.dumps(quarantine)}}}\n"
        '  rules: [{name: all, images: ["ghcr.io/**"]}]\n'
    )
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_shipped_policy_needs_the_cluster_files(capsys: pytest.CaptureFixture[str]) -> None:
    # Why --root exists: the paths in deploy/base/policy.yaml exist only inside the pod.
    code = _run(BASE / "policy.yaml")
    out, _ = capsys.readouterr()
    assert code == 1
    assert "'/etc/imagegate/registry/config.json' does not exist" in out


def test_the_shipped_policy_lints_clean_with_the_base_as_root(capsys: pytest.CaptureFixture[str]) -> None:
    code = _run("--root", BASE, BASE / "policy.yaml", BASE / "quarantine" / "quarantine.yaml")
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out == ""
    assert "2 file(s), 0 error(s), 0 warning(s)" in err


def test_the_first_root_that_has_the_file_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay, base = tmp_path / "overlay", tmp_path / "base"
    _write(overlay / "quarantine" / "mine.yaml", QUARANTINE)
    _write(base / "quarantine" / "shared.yaml", QUARANTINE)
    _write(base / "registry" / "config.json", '{"auths": {}}')
    # The overlay's own credentials shadow the base's (which are not even valid JSON).
    _write(overlay / "registry" / "config.json", '{"auths": {}}')
    _write(base / "registry" / "config.json", "not json")
    policy = _policy(
        overlay,
        quarantine=["/etc/imagegate/quarantine/mine.yaml", "/etc/imagegate/quarantine/shared.yaml"],
        credentials="/etc/imagegate/registry/config.json",
    )
    code = _run("--root", overlay, "--root", base, policy)
    out, err = capsys.readouterr()
    assert code == 0, out + err


def test_a_file_in_no_root_is_reported_under_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overlay, base = tmp_path / "overlay", tmp_path / "base"
    _write(base / "registry" / "config.json", '{"auths": {}}')
    policy = _policy(
        overlay,
        quarantine=["/etc/imagegate/quarantine/gone.yaml"],
        credentials="/etc/imagegate/registry/config.json",
    )
    code = _run("--root", overlay, "--root", base, policy)
    out, _ = capsys.readouterr()
    assert code == 1
    assert f"{str(overlay / 'quarantine' / 'gone.yaml')!r} does not exist" in out
    assert "--root" in out, "the hint says where the file was looked for"


def test_a_shadowing_file_is_checked_not_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    overlay, base = tmp_path / "overlay", tmp_path / "base"
    _write(overlay / "registry" / "config.json", "not json")
    _write(base / "registry" / "config.json", '{"auths": {}}')
    policy = _policy(overlay, quarantine=[], credentials="/etc/imagegate/registry/config.json")
    code = _run("--root", overlay, "--root", base, policy)
    out, _ = capsys.readouterr()
    assert code == 1
    assert str(overlay / "registry" / "config.json") in out


def test_only_paths_below_etc_imagegate_are_mapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    _write(root / "registry" / "config.json", '{"auths": {}}')
    outside = _write(tmp_path / "elsewhere" / "q.yaml", QUARANTINE)
    _write(tmp_path / "policy-dir" / "relative.yaml", QUARANTINE)
    # An absolute path elsewhere is read as written; a relative one from the policy's directory.
    policy = _policy(
        tmp_path / "policy-dir",
        quarantine=[str(outside), "relative.yaml"],
        credentials="/etc/imagegate/registry/config.json",
    )
    assert _run("--root", root, policy) == 0, capsys.readouterr()
    # A look-alike prefix is not the mount directory.
    _write(root / "-other" / "q.yaml", QUARANTINE)
    policy = _policy(
        tmp_path / "policy-dir",
        quarantine=["/etc/imagegate-other/q.yaml"],
        credentials="/etc/imagegate/registry/config.json",
    )
    assert _run("--root", root, policy) == 1
    assert "'/etc/imagegate-other/q.yaml' does not exist" in capsys.readouterr().out


def test_root_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = _policy(tmp_path, quarantine=[], credentials="/etc/imagegate/registry/config.json")
    assert _run("--root", tmp_path / "missing", policy) == 2
    assert "--root" in capsys.readouterr().err
