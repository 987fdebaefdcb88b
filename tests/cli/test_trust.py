"""``imagegate trust refresh --out`` against a local TUF repository served over loopback HTTP."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.refresh_world import RefreshWorld, Run, fixture_world  # noqa: F401 - pytest fixture
from tests.support.trust_roots import (
    PUBLIC_GOOD_NEWER,
    PUBLIC_GOOD_OLDER,
    REKOR_2021_LOG_ID,
    REKOR_2025_LOG_ID,
    refused_by_serve,
)
from tests.support.tuf_repository import Fault, TufRepository
from webhook.policy.material import TrustedRootMaterial
from webhook.policy.model import TrustRoot
from webhook.trust_refresh.repository import INSTANCES
from webhook.verify.trust import load_root

TARGET = "trusted_root.json"


def _snapshot(path: Path) -> tuple[bytes, int, int, int]:
    """Content, inode, mtime and mode: all stay as they were when a refresh must not touch the file."""
    status = path.stat()
    return path.read_bytes(), status.st_ino, status.st_mtime_ns, stat.S_IMODE(status.st_mode)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != TARGET)


def _installed_older(world: RefreshWorld) -> tuple[bytes, int, int, int]:
    world.repo.publish({TARGET: PUBLIC_GOOD_OLDER})
    first = world.refresh()
    assert first.code == 0, first.err
    return _snapshot(world.out)


def _assert_failed_untouched(run: Run, world: RefreshWorld, before: tuple[bytes, int, int, int]) -> None:
    assert run.code == 1, (run.out, run.err)
    assert f"{world.out} was not changed" in run.err
    assert run.out == ""
    assert _snapshot(world.out) == before
    assert _leftovers(world.out.parent) == []


# --- success ----------------------------------------------------------------------------------------------


def test_first_refresh_creates_the_file_from_the_initial_root(world: RefreshWorld) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_OLDER})

    run = world.refresh()

    assert run.code == 0, run.err
    assert world.out.read_bytes() == PUBLIC_GOOD_OLDER
    assert stat.S_IMODE(world.out.stat().st_mode) == 0o644
    lines = run.out.splitlines()
    assert lines[0].startswith(f"{world.out}: created from {world.server.url} (TUF root version 1), sha256:")
    assert (
        f"  added    tlog  {REKOR_2021_LOG_ID} https://rekor.sigstore.dev  valid from 2021-01-12T11:53:27Z"
        in lines
    )
    assert sum(line.startswith("  added    CA    https://fulcio.sigstore.dev") for line in lines) == 2
    assert sum(line.startswith("  added    ctlog ") for line in lines) == 2
    # The metadata came from the server, the target by its hash-prefixed (consistent snapshot) name.
    target_hash = world.repo.targets.signed.targets[TARGET].hashes["sha256"]
    assert f"/targets/{target_hash}.{TARGET}" in world.server.requests
    assert "/2.root.json" in world.server.requests
    # What was installed loads as a policy trust root does.
    installed = TrustedRootMaterial.read(world.out)
    assert len(load_root(TrustRoot(name="public-good", material=installed)).tlog_keys) == 1


def test_a_changed_trusted_root_is_reported_and_replaced_atomically(world: RefreshWorld) -> None:
    _installed_older(world)
    world.out.chmod(0o640)
    inode = world.out.stat().st_ino
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = world.refresh()

    assert run.code == 0, run.err
    assert world.out.read_bytes() == PUBLIC_GOOD_NEWER
    # A rename put a new file in place (readers saw the old or the new one), with the old permissions.
    assert world.out.stat().st_ino != inode
    assert stat.S_IMODE(world.out.stat().st_mode) == 0o640
    assert _leftovers(world.out.parent) == []
    lines = run.out.splitlines()
    assert lines[0].startswith(f"{world.out}: updated from {world.server.url}")
    # Only what really changed: the two CAs differ only in how their times are written (".000Z").
    assert lines[1:] == [
        f"  added    tlog  {REKOR_2025_LOG_ID} https://log2025-1.rekor.sigstore.dev  "
        "valid from 2025-09-23T00:00:00Z",
        "  added    TSA   https://timestamp.sigstore.dev/api/v1/timestamp "
        "(sigstore.dev/sigstore-tsa-selfsigned) sha256:85f927bc07ab62ca  valid from 2025-07-04T00:00:00Z",
    ]


def test_an_unchanged_trusted_root_leaves_the_file_alone(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.repo.publish({"signing_config.v0.2.json": b"{}"})  # new targets metadata, same trusted root

    run = world.refresh()

    assert run.code == 0, run.err
    assert run.out == (f"{world.out}: unchanged ({TARGET} from {world.server.url} (TUF root version 1))\n")
    assert _snapshot(world.out) == before


def test_a_root_rotation_of_the_repository_is_followed(world: RefreshWorld, tmp_path: Path) -> None:
    _installed_older(world)
    world.repo.rotate_root()  # new root and timestamp keys, vouched for by the old root keys
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    cached = world.refresh()
    fresh = world.refresh(out=tmp_path / "trust" / "fresh.json", metadata_dir=tmp_path / "fresh-metadata")

    assert cached.code == 0, cached.err
    assert "(TUF root version 2)" in cached.out
    assert world.out.read_bytes() == PUBLIC_GOOD_NEWER
    # From the initial root alone, the client walks 1 -> 2 itself.
    assert fresh.code == 0, fresh.err
    assert "(TUF root version 2)" in fresh.out
    assert os.readlink(world.metadata_dir / "root.json") == "root_history/2.root.json"


def test_a_new_root_not_signed_by_the_old_root_keys_is_refused(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.repo.signers["root"] = [world.repo.signers["root"][2]]  # below the old threshold of 2
    world.repo.rotate_root()
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})

    run = world.refresh()

    _assert_failed_untouched(run, world, before)
    assert "is not signed by enough trusted keys" in run.err


def test_a_tampered_target_fails_and_leaves_the_file(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})
    evil = json.loads(PUBLIC_GOOD_NEWER)
    evil["tlogs"] = evil["tlogs"][:1]
    world.repo.tamper(TARGET, json.dumps(evil).encode())

    run = world.refresh()

    _assert_failed_untouched(run, world, before)
    assert "does not match the length and hashes its signed targets metadata lists" in run.err


def test_expired_timestamp_metadata_fails_and_leaves_the_file(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.repo.publish({TARGET: PUBLIC_GOOD_NEWER})
    world.repo.expire_timestamp()

    run = world.refresh()

    _assert_failed_untouched(run, world, before)
    assert "has expired (timestamp.json is expired)" in run.err


@pytest.mark.sigstore
def test_a_trusted_root_serve_would_refuse_is_not_installed(world: RefreshWorld, tmp_path: Path) -> None:
    before = _installed_older(world)
    world.repo.publish({TARGET: refused_by_serve(tmp_path)})

    run = world.refresh()

    _assert_failed_untouched(run, world, before)
    assert "serves a trusted_root.json that imagegate serve would refuse" in run.err
    assert "has no CT log keys" in run.err


def test_a_repository_without_the_target_fails(world: RefreshWorld) -> None:
    world.repo.publish({"signing_config.v0.2.json": b"{}"})

    run = world.refresh()

    assert run.code == 1
    assert f"has no target {TARGET}" in run.err
    assert not world.out.exists()


def test_an_unreachable_repository_fails_with_a_clear_message(world: RefreshWorld, tmp_path: Path) -> None:
    before = _installed_older(world)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe is closed

    run = world.run(
        "trust", "refresh", "--url", f"http://127.0.0.1:{port}", "--root", str(world.root_file),
        "--metadata-dir", str(tmp_path / "other-metadata"), "--out", str(world.out),
    )  # fmt: skip

    _assert_failed_untouched(run, world, before)
    assert f"GET http://127.0.0.1:{port}/2.root.json: connection refused" in run.err


def test_another_repository_than_the_initial_roots_is_refused(world: RefreshWorld, tmp_path: Path) -> None:
    stranger = TufRepository(tmp_path / "stranger")
    root_file = tmp_path / "stranger-root.json"
    root_file.write_bytes(stranger.initial_root)
    world.repo.publish({TARGET: PUBLIC_GOOD_OLDER})

    run = world.run(
        "trust", "refresh", "--url", world.server.url, "--root", str(root_file),
        "--metadata-dir", str(tmp_path / "stranger-metadata"), "--out", str(world.out),
    )  # fmt: skip

    assert run.code == 1
    assert "is not signed by enough trusted keys" in run.err
    assert not world.out.exists()


def test_without_root_the_embedded_public_good_root_is_trusted(world: RefreshWorld, tmp_path: Path) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_OLDER})

    run = world.run(
        "trust", "refresh", "--url", world.server.url,
        "--metadata-dir", str(tmp_path / "embedded-metadata"), "--out", str(world.out),
    )  # fmt: skip

    # The embedded public-good root (version 15) was the starting point: the client asked for its successor.
    embedded = INSTANCES["public-good"].initial_root()
    assert (tmp_path / "embedded-metadata" / "root_history" / "15.root.json").read_bytes() == embedded
    assert "/16.root.json" in world.server.requests
    # The test repository is not Sigstore's: its metadata does not verify against Sigstore's root (or, once
    # that root has expired, there is no newer one here to move to).
    assert run.code == 1
    assert "give its root with --root" in run.err
    assert not world.out.exists()


def test_a_symlinked_file_is_replaced_behind_the_link(world: RefreshWorld, tmp_path: Path) -> None:
    world.repo.publish({TARGET: PUBLIC_GOOD_OLDER})
    real = tmp_path / "trust" / "real.json"
    real.write_bytes(b"{}")
    link = tmp_path / "trust" / "link.json"
    link.symlink_to(real.name)

    run = world.refresh(out=link)

    assert run.code == 0, run.err
    assert link.is_symlink()
    assert real.read_bytes() == PUBLIC_GOOD_OLDER


# --- limits -----------------------------------------------------------------------------------------------


def test_a_stalled_server_ends_at_the_time_limit(world: RefreshWorld) -> None:
    before = _installed_older(world)
    # Longer than --timeout, shorter than the 10 s a single read may otherwise wait.
    world.server.faults["/timestamp.json"] = Fault(stall=4)

    run = world.refresh("--timeout", "1")

    _assert_failed_untouched(run, world, before)
    # The request itself timed out at the limit (not the read loop after the server finally answered).
    assert f"TUF download failed: GET {world.server.url}/timestamp.json: timed out;" in run.err


def test_a_dripping_server_ends_at_the_time_limit(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.server.faults["/timestamp.json"] = Fault(drip=0.2)

    run = world.refresh("--timeout", "1")

    _assert_failed_untouched(run, world, before)
    assert "ran out of time while reading" in run.err


def test_oversized_metadata_is_refused(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.server.faults["/timestamp.json"] = Fault(pad_to=17 * 1024)

    run = world.refresh()

    _assert_failed_untouched(run, world, before)
    assert "larger than allowed" in run.err
    assert "16384" in run.err


def test_a_server_error_is_reported(world: RefreshWorld) -> None:
    before = _installed_older(world)
    world.server.faults["/timestamp.json"] = Fault(status=503)

    run = world.refresh()

    _assert_failed_untouched(run, world, before)
    assert f"GET {world.server.url}/timestamp.json: HTTP 503" in run.err


# --- usage and configuration errors (exit 2) ----------------------------------------------------------------


def test_an_initial_root_that_is_not_tuf_root_metadata_is_a_configuration_error(
    world: RefreshWorld, tmp_path: Path
) -> None:
    world.root_file.write_bytes(PUBLIC_GOOD_OLDER)

    run = world.refresh()

    assert run.code == 2
    assert "the initial root is not TUF root metadata" in run.err
    assert world.server.requests == []


def test_an_initial_root_with_a_broken_signature_is_a_configuration_error(world: RefreshWorld) -> None:
    document = json.loads(world.repo.initial_root)
    document["signed"]["expires"] = "2099-01-01T00:00:00Z"
    world.root_file.write_text(json.dumps(document))

    run = world.refresh()

    assert run.code == 2
    assert "is not signed by a threshold of its own root keys" in run.err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--out", "{tmp}/missing/trusted_root.json"], "does not exist"),
        (["--out", "{tmp}"], "is a directory"),
        (["--out", "{tmp}/t.json", "--key", "x"], "--key goes with --configmap"),
        (["--out", "{tmp}/t.json", "--root", "{tmp}/none.json"], "cannot read --root"),
        (["--configmap", "imagegate/imagegate-trust"], "works inside a cluster only"),
        (["--configmap", "Imagegate/x"], "is not NAMESPACE/NAME"),
        (["--out", "{tmp}/t.json", "--timeout", "0"], "must be more than 0"),
        (["--url", "x"], "one of the arguments --out --configmap is required"),
    ],
)
def test_usage_and_configuration_errors_exit_2(
    world: RefreshWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], message: str
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    run = world.run(
        "trust", "refresh", "--url", world.server.url, *[a.format(tmp=tmp_path) for a in arguments]
    )

    assert run.code == 2
    assert message in run.err
    assert world.server.requests == []


def test_help_ends_with_examples(run_cli: Callable[..., Run]) -> None:
    run = run_cli("trust", "refresh", "--help")

    assert run.code == 0
    examples = run.out[run.out.index("\nexamples:\n") :]
    assert run.out.rstrip().endswith(examples.rstrip())
    assert "imagegate trust refresh --out deploy/base/trust/trusted_root.json" in examples
    assert "--configmap imagegate/imagegate-trust" in examples


def test_trust_without_a_subcommand_shows_usage(run_cli: Callable[..., Run]) -> None:
    run = run_cli("trust")

    assert run.code == 2
    assert "refresh" in run.err
    assert "examples:" in run.err
