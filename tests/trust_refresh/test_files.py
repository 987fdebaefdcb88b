"""Atomic file replacement, and the embedded initial TUF roots."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sigstore

from webhook.errors import ConfigError
from webhook.trust_refresh.files import replace_file
from webhook.trust_refresh.repository import INSTANCES, check_initial_root


def test_a_new_file_is_created_world_readable(tmp_path: Path) -> None:
    target = tmp_path / "trusted_root.json"

    assert replace_file(target, b"new") == target

    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["trusted_root.json"]


def test_an_existing_file_is_renamed_over_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "trusted_root.json"
    target.write_bytes(b"old")
    target.chmod(0o600)
    inode = target.stat().st_ino
    reader = target.open("rb")  # a reader that opened the old file keeps reading the old bytes

    replace_file(target, b"new")

    assert target.read_bytes() == b"new"
    assert target.stat().st_ino != inode
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert reader.read() == b"old"
    reader.close()


def test_a_failed_replacement_leaves_the_target_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "trusted_root.json"
    target.mkdir()  # renaming a file over a directory fails after the temporary file is written
    (target / "keep").write_bytes(b"x")

    with pytest.raises(IsADirectoryError):
        replace_file(target, b"new")

    assert [p.name for p in tmp_path.iterdir()] == ["trusted_root.json"]
    assert (target / "keep").read_bytes() == b"x"


def test_a_symlink_is_followed(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    link = tmp_path / "link.json"
    link.symlink_to(real.name)

    assert replace_file(link, b"new") == real

    assert link.is_symlink()
    assert real.read_bytes() == b"new"


@pytest.mark.parametrize(
    ("instance", "store", "version"),
    [
        ("public-good", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", 15),
        ("staging", "https%3A%2F%2Ftuf-repo-cdn.sigstage.dev", 14),
    ],
)
def test_embedded_roots_are_the_ones_sigstore_python_ships(instance: str, store: str, version: int) -> None:
    """Copies of sigstore-python's roots: when an upgrade of sigstore ships newer ones, copy them."""
    shipped = Path(sigstore.__file__).parent / "_store" / store / "root.json"

    embedded = INSTANCES[instance].initial_root()

    assert embedded == shipped.read_bytes()
    assert check_initial_root(embedded, source=instance) == version


def test_a_root_signed_below_its_threshold_is_refused(tmp_path: Path) -> None:
    document = json.loads(INSTANCES["public-good"].initial_root())
    document["signatures"] = document["signatures"][:2]  # threshold is 3

    with pytest.raises(ConfigError, match="not signed by a threshold of its own root keys"):
        check_initial_root(json.dumps(document).encode(), source="root.json")
