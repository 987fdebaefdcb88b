"""Editing a quarantine list file: ``imagegate quarantine add|remove --file``.

The list is read once, checked as the server checks it (an invalid list is refused, not edited: the
edit would hide what was wrong with it), and edited as a YAML round trip (ruamel.yaml), so comments,
key order, quoting and the flow or block style of each entry stay as written. What is recorded stays
unless the edit asks to change it: re-adding a digest updates its reason (``--reason`` is required),
its author only when one is given, and never the time it has been quarantined ``since``.

An index brings the manifests it lists (read from the registry by the caller): each is recorded with
the index in ``indexes`` and its ``platform``; removing the index removes the entries it alone brought.
A digest named itself is quarantined on its own (no ``indexes``), and no index removal lifts it.

:meth:`QuarantineListEditor.render` checks the edited list again before the command line replaces the
file with it (atomically, creating the list's directory when it is missing). Each edit returns
:class:`Notice` lines to print once the file is written.
"""

from __future__ import annotations

__all__ = ["Listed", "Notice", "QuarantineListEditor"]

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.util import load_yaml_guess_indent

from webhook.errors import ConfigError
from webhook.policy.loader import API_VERSION
from webhook.policy.material import read_bounded
from webhook.policy.model import QuarantineEntry
from webhook.policy.quarantine import check_quarantine

# Lists this editor creates are indented as the documented examples are: "  - digest: ...".
_NEW_SEQUENCE_INDENT, _NEW_SEQUENCE_OFFSET = 4, 2


@dataclass(frozen=True, slots=True)
class Listed:
    """A manifest an index lists: its digest and its platform (``linux/amd64``; ``""`` when unnamed)."""

    digest: str
    platform: str = ""


@dataclass(frozen=True, slots=True)
class Notice:
    """One line about an edit; ``warning`` lines go to stderr."""

    text: str
    warning: bool = False


class QuarantineListEditor:
    """A quarantine list opened for editing; :meth:`render` gives the edited file."""

    def __init__(self, path: Path, *, document: CommentedMap, yaml: YAML) -> None:
        self.path = path
        self._document = document
        self._yaml = yaml

    @classmethod
    def open(cls, path: Path, *, create: bool) -> QuarantineListEditor:
        """Open the list at ``path``; a missing one is an empty new list when ``create``.

        Raises:
            ConfigError: the list is missing (and not ``create``), unreadable or invalid.
        """
        try:
            data = read_bounded(path)
        except FileNotFoundError:
            if not create:
                raise ConfigError(f"quarantine list {path} does not exist") from None
            yaml = _yaml(_NEW_SEQUENCE_INDENT, _NEW_SEQUENCE_OFFSET)
            document = CommentedMap([("apiVersion", API_VERSION), ("kind", "Quarantine")])
            document["entries"] = CommentedSeq()
            return cls(path, document=document, yaml=yaml)
        except OSError as error:
            raise ConfigError(f"cannot read quarantine list {path}: {error.strerror or error}") from None
        check_quarantine(data, source=str(path))
        text = data.decode("utf-8-sig")
        try:
            _, indent, offset = load_yaml_guess_indent(text)
            yaml = _yaml(indent or _NEW_SEQUENCE_INDENT, offset if indent else _NEW_SEQUENCE_OFFSET)
            document = yaml.load(text)
        except YAMLError as error:  # pragma: no cover - the check above parsed the same text
            raise ConfigError(f"cannot read quarantine list {path}: {error}") from None
        if document.get("entries") is None:
            document["entries"] = CommentedSeq()
        return cls(path, document=document, yaml=yaml)

    @property
    def _entries(self) -> CommentedSeq:
        entries: CommentedSeq = self._document["entries"]
        return entries

    def add(
        self, digest: str, *, reason: str, by: str = "", now: datetime, listed: Sequence[Listed] = ()
    ) -> list[Notice]:
        """Quarantine ``digest`` on its own, and each manifest it ``listed`` (when it is an index).

        ``by`` replaces the recorded author when given; ``since`` is set only on new entries.
        """
        since = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        notices = []
        existing = self._find(digest)
        if existing is None:
            self._append(_new_entry(digest, reason=reason, by=by, since=since))
        else:
            _update(existing, reason=reason, by=by)
            # Named itself, the digest is quarantined on its own: no index removal lifts it.
            for key in ("indexes", "platform"):
                existing.pop(key, None)
        notices.append(Notice(f"{digest}: {'updated' if existing is not None else 'added'} in {self.path}"))
        for manifest in listed:
            relation = _relation(manifest.digest, index=digest, platform=manifest.platform)
            found = self._find(manifest.digest)
            if found is None:
                entry = _new_entry(manifest.digest, reason=reason, by=by, since=since)
                entry["indexes"] = CommentedSeq([digest])
                if manifest.platform:
                    entry["platform"] = manifest.platform
                self._append(entry)
                notices.append(Notice(f"{manifest.digest}: added in {self.path} ({relation})"))
                continue
            indexes = found.get("indexes")
            if not isinstance(indexes, list):
                notices.append(
                    Notice(
                        f"{manifest.digest}: already quarantined on its own in {self.path}, kept ({relation})"
                    )
                )
                continue
            _update(found, reason=reason, by=by)
            if digest not in indexes:
                indexes.append(digest)
            if manifest.platform:
                found["platform"] = manifest.platform
            notices.append(Notice(f"{manifest.digest}: updated in {self.path} ({relation})"))
        return notices

    def remove(self, digest: str) -> list[Notice]:
        """Lift the quarantine of ``digest`` and of the manifests recorded for it as an index.

        Returns no notice at all when ``digest`` is neither listed nor an index of a listed entry.
        """
        notices = []
        existing = self._find(digest)
        if existing is not None:
            self._entries.remove(existing)
            notices.append(Notice(f"{digest}: removed from {self.path}"))
            indexes = existing.get("indexes")
            if isinstance(indexes, list) and indexes:
                notices.append(lifted_warning(digest, [str(index) for index in indexes]))
        for entry in list(self._entries):
            indexes = entry.get("indexes") if isinstance(entry, dict) else None
            if not isinstance(indexes, list) or digest not in indexes:
                continue
            relation = _relation(
                str(entry.get("digest")), index=digest, platform=str(entry.get("platform") or "")
            )
            indexes.remove(digest)
            if indexes:
                notices.append(
                    Notice(
                        f"{entry.get('digest')}: kept in {self.path}, still recorded for index {indexes[0]} "
                        f"({relation})"
                    )
                )
            else:
                self._entries.remove(entry)
                notices.append(Notice(f"{entry.get('digest')}: removed from {self.path} ({relation})"))
        return notices

    def render(self) -> bytes:
        """The edited list, checked as the server will read it.

        Raises:
            ConfigError: the edited list would be invalid.
        """
        out = io.StringIO()
        self._yaml.dump(self._document, out)
        data = out.getvalue().encode("utf-8")
        try:
            check_quarantine(data, source=str(self.path))
        except ConfigError as error:
            raise ConfigError(
                f"refusing to write {self.path}: the edited list would be invalid", problems=error.problems
            ) from None
        return data

    def _find(self, digest: str) -> CommentedMap | None:
        return next(
            (e for e in self._entries if isinstance(e, CommentedMap) and e.get("digest") == digest), None
        )

    def _append(self, entry: CommentedMap) -> None:
        entries = self._entries
        # A new entry takes the style of the one before it ({digest: ..., reason: ...} or a block).
        if entries and isinstance(entries[-1], CommentedMap) and entries[-1].fa.flow_style():
            entry.fa.set_flow_style()
        entries.append(entry)


def lifted_warning(text: str, indexes: Sequence[str]) -> Notice:
    """Lifting a manifest recorded for an index: the index stays quarantined, pods pinned to it do not."""
    return Notice(
        f"{text}: warning: it was quarantined as a manifest of index {', '.join(indexes)}; "
        "pods pinned to this manifest are admitted again, while that index stays quarantined",
        warning=True,
    )


def _yaml(sequence_indent: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long reason onto a second line
    yaml.indent(mapping=2, sequence=sequence_indent, offset=offset)
    return yaml


def _new_entry(digest: str, *, reason: str, by: str, since: str) -> CommentedMap:
    entry = CommentedMap([("digest", digest), ("reason", reason)])
    if by:
        entry["by"] = by
    entry["since"] = since
    return entry


def _update(entry: CommentedMap, *, reason: str, by: str) -> None:
    entry["reason"] = reason
    if by:
        entry["by"] = by


def _relation(digest: str, *, index: str, platform: str) -> str:
    return QuarantineEntry(digest, "", indexes=(index,), platform=platform).relation
