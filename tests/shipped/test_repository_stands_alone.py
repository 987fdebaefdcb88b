"""The repository stands alone: its code and docs cite no document a clone of it does not have."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Documents that lived beside the repository while it was written; its own docs carry their contracts.
OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|shared/notes|notes/(?:infra|sigstore|conventions|anchors)\.md")


def test_no_file_cites_a_document_outside_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, check=True, capture_output=True
    ).stdout.split(b"\0")
    files = [REPO / name.decode() for name in listed if name]
    assert len(files) > 100, "git ls-files listed too little: the check would see nothing"
    citing = []
    for path in files:
        if path.resolve() == Path(__file__).resolve() or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary test data
        citing += [f"{path.relative_to(REPO)}: {found}" for found in OUTSIDE.findall(text)]
    assert not citing, "\n".join(citing)
