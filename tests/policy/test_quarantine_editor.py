"""``imagegate quarantine add|remove --file``: what the list editor keeps, creates and refuses.

Through the command line as operators run it (no registry: bare digests, and listings passed to the
editor directly where an index is concerned).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from webhook.cli import main
from webhook.policy.loader import load_quarantine

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
HEAD = "apiVersion: imagegate.dev/v1alpha1\nkind: Quarantine\n"


def add(path: Path, *extra: str) -> int:
    return main(["quarantine", "add", "--file", str(path), *extra])


def test_add_creates_the_missing_directories_of_a_new_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "new" / "lists" / "quarantine.yaml"

    assert add(path, "--reason", "CVE-1", DIGEST_A) == 0

    assert [e.digest for e in load_quarantine(path)] == [DIGEST_A]
    assert capsys.readouterr().out == f"{DIGEST_A}: added in {path}\n"
    assert [p.name for p in path.parent.iterdir()] == ["quarantine.yaml"]  # no temporary file left


def test_add_that_cannot_write_says_so_and_claims_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    path = blocker / "quarantine.yaml"

    assert add(path, "--reason", "CVE-1", DIGEST_A) == 2

    captured = capsys.readouterr()
    assert "added" not in captured.out
    assert f"quarantine list {path}: Not a directory" in captured.err
    assert "Traceback" not in captured.err


def test_re_adding_a_digest_keeps_its_author_and_since_unless_told(tmp_path: Path) -> None:
    path = tmp_path / "quarantine.yaml"
    path.write_text(
        HEAD + "entries:\n"
        f'  - {{digest: "{DIGEST_A}", reason: "old", by: "ops", since: "2026-11-20T10:00:00Z"}}\n'
    )

    assert add(path, "--reason", "new", DIGEST_A) == 0
    (entry,) = load_quarantine(path)
    assert (entry.reason, entry.by, entry.since and entry.since.isoformat()) == (
        "new",
        "ops",
        "2026-11-20T10:00:00+00:00",
    )
    assert '"2026-11-20T10:00:00Z"' in path.read_text()  # written as it was

    assert add(path, "--reason", "new", "--by", "sec-team", DIGEST_A) == 0
    (entry,) = load_quarantine(path)
    assert (entry.by, entry.since and entry.since.isoformat()) == ("sec-team", "2026-11-20T10:00:00+00:00")


def test_edits_keep_the_comments_of_the_list(tmp_path: Path) -> None:
    path = tmp_path / "quarantine.yaml"
    path.write_text(
        "# Quarantined digests: reviewed weekly by sec-team.\n"
        + HEAD
        + "entries:\n"
        + "  # INC-42: base image shipped a backdoored libfoo\n"
        + f"  - digest: {DIGEST_A}\n"
        + "    reason: CVE-2026-1234  # see the advisory\n"
        + "    by: ops\n"
    )

    assert add(path, "--reason", "bad build", DIGEST_B) == 0
    assert main(["quarantine", "remove", "--file", str(path), DIGEST_B]) == 0
    assert add(path, "--reason", "CVE-2026-1234 (confirmed)", DIGEST_A) == 0

    text = path.read_text()
    assert text.startswith("# Quarantined digests: reviewed weekly by sec-team.\n")
    assert "  # INC-42: base image shipped a backdoored libfoo\n" in text
    assert "# see the advisory" in text
    assert [(e.digest, e.reason, e.by) for e in load_quarantine(path)] == [
        (DIGEST_A, "CVE-2026-1234 (confirmed)", "ops")
    ]


def test_re_adding_an_index_keeps_what_its_manifests_recorded(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from webhook.policy.quarantine_editor import Listed, QuarantineListEditor

    path = tmp_path / "quarantine.yaml"
    first = datetime(2026, 11, 1, tzinfo=UTC)
    manifest = Listed("sha256:" + "c" * 64, "linux/amd64")
    editor = QuarantineListEditor.open(path, create=True)
    editor.add(DIGEST_A, reason="CVE-1", by="sec", now=first, listed=[manifest])
    path.write_bytes(editor.render())

    editor = QuarantineListEditor.open(path, create=False)
    notices = editor.add(DIGEST_B, reason="CVE-2", now=datetime(2026, 12, 1, tzinfo=UTC), listed=[manifest])
    path.write_bytes(editor.render())

    assert [n.text.split(": ", 1)[1] for n in notices] == [
        f"added in {path}",
        f"updated in {path} (platform linux/amd64 of index {DIGEST_B})",
    ]
    listed = {e.digest: e for e in load_quarantine(path)}
    recorded = listed[manifest.digest]
    assert (recorded.reason, recorded.by, recorded.since) == ("CVE-2", "sec", first)
    assert recorded.indexes == (DIGEST_A, DIGEST_B)
    assert listed[DIGEST_B].since == datetime(2026, 12, 1, tzinfo=UTC)
