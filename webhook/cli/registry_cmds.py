"""CLI subcommands that talk to registries or edit quarantine lists: ``resolve`` and ``quarantine``.

``imagegate resolve [--policy FILE] IMAGE...`` prints ``IMAGE -> IMAGE-as-written@sha256:...`` (the
same text the mutating webhook writes into the pod). Registry settings come from the policy when
given. Without a policy exactly the registries of the given images are allowed, over HTTPS with
the system trust store, anonymously, unless ``--insecure-registry``, ``--ca-file`` or
``--credentials`` say otherwise (those options are refused together with ``--policy``).

``imagegate quarantine add|remove|list`` edits a Quarantine list (``--file FILE``; comments in the
file are not kept) or the quarantine markers in a registry (``--registry``, targets
``IMAGE@DIGEST``, settings as for ``resolve``). Exit codes: 0 done, 1 a target failed or was not
found, 2 usage or configuration error.
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from webhook.deadline import Deadline
from webhook.errors import ConfigError, ImagegateError, InvalidReference, RegistryError
from webhook.images.reference import ImageRef, pin_image_text
from webhook.registry.client import RegistryClient
from webhook.registry.credentials import DockerCredentials
from webhook.registry.markers import add_marker, list_markers, remove_marker
from webhook.registry.port import is_digest
from webhook.registry.settings import RegistrySettings

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE = 0, 1, 2
_API_VERSION = "imagegate.dev/v1alpha1"


class _UsageError(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``resolve`` and ``quarantine`` subcommands."""
    resolve = subparsers.add_parser(
        "resolve",
        help="print the digest-pinned reference of each image",
        description="Resolve each IMAGE's tag to its manifest digest (the index digest for multi-arch "
        "images) and print 'IMAGE -> IMAGE@sha256:...'. Exit 1 if any image fails.",
    )
    _registry_options(resolve)
    resolve.add_argument("images", nargs="+", metavar="IMAGE")
    resolve.set_defaults(func=run, registry_command="resolve")

    quarantine = subparsers.add_parser(
        "quarantine",
        help="manage quarantine lists and registry quarantine markers",
        description="Add, remove or list quarantined digests in a Quarantine list file (--file) or as "
        "quarantine markers stored next to the image in its registry (--registry).",
    )
    actions = quarantine.add_subparsers(dest="quarantine_action", metavar="{add,remove,list}")
    actions.required = True
    for action, summary in (
        ("add", "quarantine digests (requires --reason)"),
        ("remove", "lift the quarantine of digests"),
        ("list", "list quarantined digests"),
    ):
        parser = actions.add_parser(action, help=summary, description=summary)
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--file", type=Path, metavar="FILE", help="the Quarantine list (YAML) to edit")
        where.add_argument(
            "--registry", action="store_true", help="use quarantine markers in the registry of IMAGE@DIGEST"
        )
        _registry_options(parser)
        if action == "add":
            parser.add_argument("--reason", required=True, help="why the digest is quarantined")
            parser.add_argument("--by", default="", help="who quarantines it (team or person)")
        targets_help = "sha256:<hex> or IMAGE@sha256:<hex> (--file); IMAGE@sha256:<hex> (--registry)"
        parser.add_argument(
            "targets", nargs="*" if action == "list" else "+", metavar="TARGET", help=targets_help
        )
        parser.set_defaults(func=run, registry_command="quarantine")


def _registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, metavar="FILE", help="take registry settings from this policy")
    parser.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST",
        help="without --policy: reach HOST (host or host:port) over plain HTTP",
    )
    parser.add_argument(
        "--ca-file", type=Path, metavar="PEM", help="without --policy: extra trusted CA certificates"
    )
    parser.add_argument(
        "--credentials",
        type=Path,
        metavar="FILE",
        help="without --policy: dockerconfigjson with registry credentials",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="time budget per image (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``resolve`` or ``quarantine``; returns the exit code."""
    try:
        if args.registry_command == "resolve":
            return _resolve(args)
        if args.file is not None:
            return _quarantine_file(args)
        return _quarantine_registry(args)
    except _UsageError as error:
        print(f"imagegate {args.registry_command}: error: {error}", file=sys.stderr)
        return _EXIT_USAGE
    except ConfigError as error:
        print(f"imagegate {args.registry_command}: {error.user_message}", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return _EXIT_USAGE


# --- resolve -------------------------------------------------------------------------------------


def _resolve(args: argparse.Namespace) -> int:
    refs: list[tuple[str, ImageRef | None]] = []
    failed = False
    for text in args.images:
        try:
            refs.append((text, ImageRef.parse(text)))
        except InvalidReference as error:
            print(f"{text}: {error.user_message}", file=sys.stderr)
            refs.append((text, None))
            failed = True
    settings = _settings(args, [ref for _, ref in refs if ref is not None])
    with RegistryClient(settings) as client:
        for text, ref in refs:
            if ref is None:
                continue
            reference = ref.digest or ref.effective_tag or "latest"
            try:
                digest = client.resolve(ref, reference, deadline=Deadline.after(args.timeout))
            except RegistryError as error:
                print(f"{text}: [{error.code}] {error.user_message}", file=sys.stderr)
                failed = True
                continue
            if ref.digest is not None and digest != ref.digest:
                print(f"{text}: [digest-mismatch] the registry answered {digest}", file=sys.stderr)
                failed = True
                continue
            print(f"{text} -> {pin_image_text(text, digest)}")
    return _EXIT_FAILED if failed else _EXIT_OK


def _settings(args: argparse.Namespace, refs: list[ImageRef]) -> RegistrySettings:
    overrides = args.insecure_registry or args.ca_file is not None or args.credentials is not None
    if args.policy is not None:
        if overrides:
            raise _UsageError(
                "--insecure-registry, --ca-file and --credentials cannot be combined with --policy"
            )
        from webhook.policy.loader import load_policy

        loaded = load_policy(args.policy, now=datetime.now(UTC))
        return RegistrySettings.from_policy(loaded.policy)
    credentials = DockerCredentials.from_file(args.credentials) if args.credentials is not None else None
    if args.ca_file is not None and not args.ca_file.is_file():
        raise ConfigError(f"--ca-file {args.ca_file} does not exist or is not a file")
    return RegistrySettings(
        allow=frozenset(ref.registry for ref in refs),
        insecure=frozenset(args.insecure_registry),
        ca_file=args.ca_file,
        credentials=credentials if credentials is not None else DockerCredentials(),
    )


# --- quarantine --registry -----------------------------------------------------------------------


def _registry_targets(args: argparse.Namespace) -> list[tuple[str, ImageRef, str]]:
    if not args.targets:
        raise _UsageError("--registry needs at least one IMAGE@sha256:<hex>")
    targets = []
    for text in args.targets:
        try:
            ref = ImageRef.parse(text)
        except InvalidReference as error:
            raise _UsageError(error.user_message) from None
        if ref.digest is None:
            raise _UsageError(f"{text}: --registry needs IMAGE@sha256:<hex> (the digest to quarantine)")
        targets.append((text, ref, ref.digest))
    return targets


def _quarantine_registry(args: argparse.Namespace) -> int:
    targets = _registry_targets(args)
    settings = _settings(args, [ref for _, ref, _ in targets])
    failed = False
    with RegistryClient(settings) as client:
        for text, ref, digest in targets:
            deadline = Deadline.after(args.timeout)
            try:
                if args.quarantine_action == "add":
                    marker = add_marker(
                        client, ref, digest, reason=args.reason, by=args.by, deadline=deadline
                    )
                    print(f"{text}: quarantine marker {marker} added")
                elif args.quarantine_action == "remove":
                    removed = remove_marker(client, ref, digest, deadline=deadline)
                    if not removed:
                        print(f"{text}: no quarantine marker found", file=sys.stderr)
                        failed = True
                    for marker in removed:
                        print(f"{text}: quarantine marker {marker} removed")
                else:
                    for found in list_markers(client, ref, digest, deadline=deadline):
                        entry = found.entry
                        since = _format_time(entry.since)
                        print(f"{text}\t{found.manifest_digest}\t{since}\t{entry.by or '-'}\t{entry.reason}")
            except (RegistryError, ValueError) as error:
                message = error.user_message if isinstance(error, ImagegateError) else str(error)
                print(f"{text}: {message}", file=sys.stderr)
                failed = True
    return _EXIT_FAILED if failed else _EXIT_OK


# --- quarantine --file ---------------------------------------------------------------------------


class _PlainTimestampLoader(yaml.SafeLoader):
    """SafeLoader that keeps timestamps as the strings written, so rewriting keeps their form."""


_PlainTimestampLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(slots=True)
class _Document:
    data: dict[str, Any]
    entries: list[Any]


def _file_digests(targets: list[str]) -> list[str]:
    digests = []
    for text in targets:
        digest = text.rsplit("@", 1)[-1]
        if not is_digest(digest):
            raise _UsageError(f"{text!r} is not sha256:<64 lower-case hex> or IMAGE@sha256:<64 hex>")
        digests.append(digest)
    return digests


def _quarantine_file(args: argparse.Namespace) -> int:
    path: Path = args.file
    if args.quarantine_action == "list":
        if args.targets:
            raise _UsageError("list --file takes no targets")
        for listed in _load_quarantine(path):
            print(f"{listed.digest}\t{_format_time(listed.since)}\t{listed.by or '-'}\t{listed.reason}")
        return _EXIT_OK
    digests = _file_digests(args.targets)
    if args.quarantine_action == "add" and not args.reason.strip():
        raise _UsageError("--reason must not be empty")
    document = _read_document(path, create=args.quarantine_action == "add")
    status = _EXIT_OK
    if args.quarantine_action == "add":
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for digest in digests:
            entry: dict[str, Any] = {"digest": digest, "reason": args.reason}
            if args.by:
                entry["by"] = args.by
            entry["since"] = since
            replaced = False
            for position, existing in enumerate(document.entries):
                if isinstance(existing, dict) and existing.get("digest") == digest:
                    document.entries[position] = entry
                    replaced = True
            if not replaced:
                document.entries.append(entry)
            print(f"{digest}: {'updated' if replaced else 'added'} in {path}")
    else:
        present = {e.get("digest") for e in document.entries if isinstance(e, dict)}
        for digest in digests:
            if digest not in present:
                print(f"{digest}: not in {path}", file=sys.stderr)
                status = _EXIT_FAILED
            else:
                print(f"{digest}: removed from {path}")
        document.entries[:] = [
            e for e in document.entries if not (isinstance(e, dict) and e.get("digest") in digests)
        ]
    _write_document(path, document)
    return status


def _load_quarantine(path: Path) -> tuple[Any, ...]:
    from webhook.policy.loader import load_quarantine

    return load_quarantine(path)


def _read_document(path: Path, *, create: bool) -> _Document:
    if not path.exists():
        if not create:
            raise ConfigError(f"quarantine list {path} does not exist")
        data: dict[str, Any] = {"apiVersion": _API_VERSION, "kind": "Quarantine", "entries": []}
        return _Document(data=data, entries=data["entries"])
    # Refuse to edit a file that is already invalid: the edit would hide what was wrong with it.
    _load_quarantine(path)
    try:
        with path.open("rb") as handle:
            loaded = yaml.load(handle, Loader=_PlainTimestampLoader)  # noqa: S506 - a SafeLoader subclass
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read quarantine list {path}: {error}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"quarantine list {path} is not a YAML mapping")
    entries = loaded.get("entries")
    if entries is None:
        entries = loaded["entries"] = []
    if not isinstance(entries, list):
        raise ConfigError(f"quarantine list {path}: /entries must be a list")
    return _Document(data=loaded, entries=entries)


def _write_document(path: Path, document: _Document) -> None:
    text = yaml.safe_dump(document.data, sort_keys=False, default_flow_style=False, allow_unicode=True)
    directory = path.parent if str(path.parent) else Path()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        # Validate what we are about to install with the same loader the webhook uses.
        try:
            _load_quarantine(Path(temporary))
        except ConfigError as error:
            raise ConfigError(
                f"refusing to write {path}: the edited list would be invalid", problems=error.problems
            ) from None
        with contextlib.suppress(OSError):
            os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _format_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"
