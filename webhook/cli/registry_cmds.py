"""CLI subcommands that talk to registries or edit quarantine lists: ``resolve`` and ``quarantine``.

``imagegate resolve [--policy FILE] IMAGE...`` prints ``IMAGE -> IMAGE-as-written@sha256:...`` (the
same text the mutating webhook writes into the pod). Registry settings come from the policy when
given. Without a policy exactly the registries of the given images are allowed, over HTTPS with
the system trust store, anonymously, unless ``--insecure-registry``, ``--ca-file`` or
``--credentials`` say otherwise (those options are refused together with ``--policy``).

``imagegate quarantine add|remove|list`` edits a Quarantine list (``--file FILE``, with
:mod:`webhook.policy.quarantine_editor`) or the quarantine markers in a registry (``--registry``, targets
``IMAGE@DIGEST``, settings as for ``resolve``). A node pulls one manifest of a multi-arch image, so
``add IMAGE@DIGEST`` of an index also records (or marks) every manifest the index lists, noting the
index (``indexes``/``platform`` in the list, ``dev.imagegate.quarantine/index``/``platform`` marker
annotations); ``remove`` of the index removes what it added, and ``list`` shows the relation. Reading
the index needs its registry: when it cannot be read, nothing is written. A bare ``sha256:...`` given to
``--file add`` is recorded alone, with a warning. Exit codes: 0 done, 1 a target failed or was not
found, 2 usage or configuration error.

``quarantine list -o json`` prints one JSON array of the entries (``--file``) or the markers found
(``--registry``): ``digest``, ``reason``, ``by``, ``since`` (RFC 3339, or null), ``indexes`` and
``platform`` (for the manifests of an index) and their ``relation`` in words; a marker also has the
``target`` it was listed for, the ``image`` it quarantines and its own ``marker`` digest.
"""

from __future__ import annotations

__all__ = ["register", "run"]

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from webhook.cli._options import add_output, seconds
from webhook.deadline import Deadline
from webhook.errors import ConfigError, ImagegateError, InvalidReference, RegistryError
from webhook.facts import ListedManifest
from webhook.images.reference import ImageRef, pin_image_text
from webhook.policy.loader import load_policy, load_quarantine
from webhook.policy.model import QuarantineEntry
from webhook.policy.quarantine_editor import Listed, Notice, QuarantineListEditor, lifted_warning
from webhook.registry.client import RegistryClient
from webhook.registry.credentials import DockerCredentials
from webhook.registry.listing import listed_manifests
from webhook.registry.markers import add_marker, list_markers, remove_marker
from webhook.registry.port import is_digest
from webhook.registry.settings import RegistrySettings
from webhook.times import format_rfc3339
from webhook.trust_refresh.files import replace_file

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE = 0, 1, 2

_RESOLVE_EXAMPLES = """\
examples:
  # a public image, without a policy
  imagegate resolve nginx:1.27

  # with the registries, credentials and CA of a policy, and a longer budget
  imagegate resolve --policy policy.yaml --timeout 30s ghcr.io/acme/app:1.4.2

  # a local registry over plain HTTP
  imagegate resolve --insecure-registry 127.0.0.1:5000 127.0.0.1:5000/team/app:1.0
"""
_QUARANTINE_EXAMPLES = {
    "add": """\
  # record a digest in a quarantine list (an index: with every platform manifest it lists)
  imagegate quarantine add --file quarantine.yaml --reason "CVE-2026-1234 in base layer" \\
    --by sec-team "ghcr.io/acme/app@$DIGEST"

  # or mark it in its registry, with the policy's registry settings
  imagegate quarantine add --registry --policy policy.yaml --reason "CVE-2026-1234" "ghcr.io/acme/app@$DIGEST"
""",
    "remove": """\
  # lift a quarantine (of an index: also what was recorded for its manifests)
  imagegate quarantine remove --file quarantine.yaml "ghcr.io/acme/app@$DIGEST"
  imagegate quarantine remove --registry --policy policy.yaml "ghcr.io/acme/app@$DIGEST"
""",
    "list": """\
  # what a list holds, as a table or as JSON
  imagegate quarantine list --file quarantine.yaml
  imagegate quarantine list --file quarantine.yaml -o json

  # the markers of a digest (and of the manifests it lists)
  imagegate quarantine list --registry --policy policy.yaml "ghcr.io/acme/app@$DIGEST"
""",
}


class _UsageError(Exception):
    pass


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``resolve`` and ``quarantine`` subcommands."""
    resolve = subparsers.add_parser(
        "resolve",
        help="print the digest-pinned reference of each image",
        description="Resolve each IMAGE's tag to its manifest digest (the index digest for multi-arch "
        "images) and print 'IMAGE -> IMAGE@sha256:...'. Exit 1 if any image fails.",
        epilog=_RESOLVE_EXAMPLES,
    )
    _registry_options(resolve)
    resolve.add_argument("images", nargs="+", metavar="IMAGE")
    resolve.set_defaults(func=run, registry_command="resolve")

    quarantine = subparsers.add_parser(
        "quarantine",
        help="manage quarantine lists and registry quarantine markers",
        description="Add, remove or list quarantined digests in a Quarantine list file (--file) or as "
        "quarantine markers stored next to the image in its registry (--registry).",
        epilog="examples:\n" + "\n".join(_QUARANTINE_EXAMPLES.values()),
    )
    actions = quarantine.add_subparsers(dest="quarantine_action", metavar="{add,remove,list}")
    actions.required = True
    for action, summary in (
        ("add", "quarantine digests (requires --reason)"),
        ("remove", "lift the quarantine of digests"),
        ("list", "list quarantined digests"),
    ):
        parser = actions.add_parser(
            action, help=summary, description=summary, epilog="examples:\n" + _QUARANTINE_EXAMPLES[action]
        )
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--file", type=Path, metavar="FILE", help="the Quarantine list (YAML) to edit")
        where.add_argument(
            "--registry", action="store_true", help="use quarantine markers in the registry of IMAGE@DIGEST"
        )
        _registry_options(parser)
        if action == "add":
            parser.add_argument("--reason", required=True, help="why the digest is quarantined")
            parser.add_argument("--by", default="", help="who quarantines it (team or person)")
        targets_help = (
            "sha256:<hex> or IMAGE@sha256:<hex> (--file); IMAGE@sha256:<hex> (--registry). For an index, "
            "IMAGE@sha256:<hex> also covers every platform manifest it lists (read from the registry)"
        )
        parser.add_argument(
            "targets", nargs="*" if action == "list" else "+", metavar="TARGET", help=targets_help
        )
        if action == "list":
            add_output(parser, what="an array of the entries or markers, each with all its fields")
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
        "--timeout",
        type=seconds(),
        default=10.0,
        metavar="SECONDS",
        help="time budget per image: seconds or a duration like 30s or 1m (default 10)",
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
    listed: list[dict[str, Any]] = []
    with RegistryClient(settings) as client:
        for text, ref, digest in targets:
            try:
                if args.quarantine_action == "add":
                    _add_markers(client, args, text=text, ref=ref, digest=digest)
                elif args.quarantine_action == "remove":
                    failed |= not _remove_markers(client, args, text=text, ref=ref, digest=digest)
                else:
                    listed += _list_markers(client, args, text=text, ref=ref, digest=digest)
            except (RegistryError, ValueError) as error:
                message = error.user_message if isinstance(error, ImagegateError) else str(error)
                print(f"{text}: {message}", file=sys.stderr)
                failed = True
    if args.quarantine_action == "list" and args.output == "json":
        print(json.dumps(listed, indent=2))
    return _EXIT_FAILED if failed else _EXIT_OK


def _listed(
    client: RegistryClient, ref: ImageRef, digest: str, *, timeout: float
) -> tuple[ListedManifest, ...]:
    """The manifests the index ``digest`` lists (``()`` for a single manifest).

    Raises:
        RegistryError: the image cannot be read, with a message that says what is at stake.
    """
    try:
        return listed_manifests(client, ref, digest, deadline=Deadline.after(timeout))
    except RegistryError as error:
        raise RegistryError(
            f"cannot read it to find the manifests it lists (an index quarantines every platform "
            f"manifest): {error.user_message}",
            code=error.code,
        ) from None


def _add_markers(
    client: RegistryClient, args: argparse.Namespace, *, text: str, ref: ImageRef, digest: str
) -> None:
    # Read what it lists first: a marker on the index alone would miss pods pinned to one platform.
    listed = _listed(client, ref, digest, timeout=args.timeout)
    marker = add_marker(
        client, ref, digest, reason=args.reason, by=args.by, deadline=Deadline.after(args.timeout)
    )
    print(f"{text}: quarantine marker {marker} added")
    for manifest in listed:
        marker = add_marker(
            client,
            ref,
            manifest.digest,
            reason=args.reason,
            by=args.by,
            index=digest,
            platform=manifest.platform,
            deadline=Deadline.after(args.timeout),
        )
        print(
            f"{ref.name}@{manifest.digest}: quarantine marker {marker} added ({_relation(manifest, digest)})"
        )


def _remove_markers(
    client: RegistryClient, args: argparse.Namespace, *, text: str, ref: ImageRef, digest: str
) -> bool:
    """Remove the markers of ``digest`` and those added with it for what it lists.

    Returns False when there were none, or what it lists could not be read.
    """
    try:
        listed, unreadable = _listed(client, ref, digest, timeout=args.timeout), None
    except RegistryError as error:
        listed, unreadable = (), error
    own = list_markers(client, ref, digest, deadline=Deadline.after(args.timeout))
    removed = remove_marker(client, ref, digest, deadline=Deadline.after(args.timeout))
    for marker in removed:
        print(f"{text}: quarantine marker {marker} removed")
    lifted = [index for found in own for index in found.entry.indexes]
    if lifted:
        print(lifted_warning(text, lifted).text, file=sys.stderr)
    count = len(removed)
    for manifest in listed:
        for found in list_markers(client, ref, manifest.digest, deadline=Deadline.after(args.timeout)):
            if digest not in found.entry.indexes:
                continue  # quarantined on its own, or for another index: stays
            for marker in remove_marker(
                client,
                ref,
                manifest.digest,
                deadline=Deadline.after(args.timeout),
                only=found.manifest_digest,
            ):
                print(
                    f"{ref.name}@{manifest.digest}: quarantine marker {marker} removed "
                    f"({found.entry.relation})"
                )
                count += 1
    if unreadable is not None:
        print(
            f"{text}: {unreadable.user_message}; markers of those manifests were not removed", file=sys.stderr
        )
        return False
    if not count:
        print(f"{text}: no quarantine marker found", file=sys.stderr)
    return count > 0


def _list_markers(
    client: RegistryClient, args: argparse.Namespace, *, text: str, ref: ImageRef, digest: str
) -> list[dict[str, Any]]:
    """Print the markers of ``digest`` and of what it lists (text), or return them (``-o json``)."""
    found_all: list[dict[str, Any]] = []

    def show(shown: str, subject: str) -> None:
        for found in list_markers(client, ref, subject, deadline=Deadline.after(args.timeout)):
            entry = found.entry
            if args.output == "json":
                found_all.append(
                    {"target": text, "image": shown, "marker": found.manifest_digest, **_entry_json(entry)}
                )
                continue
            print(
                f"{shown}\t{found.manifest_digest}\t{_format_time(entry.since)}\t{entry.by or '-'}\t"
                f"{entry.relation or '-'}\t{entry.reason}"
            )

    show(text, digest)  # also when the image itself is gone and only its markers are left
    for manifest in _listed(client, ref, digest, timeout=args.timeout):
        show(f"{ref.name}@{manifest.digest}", manifest.digest)
    return found_all


def _entry_json(entry: QuarantineEntry) -> dict[str, Any]:
    """A quarantine entry (of a list, or a marker's) as ``quarantine list -o json`` prints it."""
    return {
        "digest": entry.digest,
        "reason": entry.reason,
        "by": entry.by,
        "since": format_rfc3339(entry.since) if entry.since is not None else None,
        "indexes": list(entry.indexes),
        "platform": entry.platform,
        "relation": entry.relation,
    }


def _relation(manifest: ListedManifest, index: str) -> str:
    return QuarantineEntry(manifest.digest, "", indexes=(index,), platform=manifest.platform).relation


# --- quarantine --file ---------------------------------------------------------------------------


def _file_targets(targets: list[str]) -> list[tuple[str, ImageRef | None, str]]:
    """``(text, image or None, digest)`` per target: ``sha256:<hex>`` or ``IMAGE@sha256:<hex>``."""
    parsed: list[tuple[str, ImageRef | None, str]] = []
    for text in targets:
        if "@" not in text:
            if not is_digest(text):
                raise _UsageError(f"{text!r} is not sha256:<64 lower-case hex> or IMAGE@sha256:<64 hex>")
            parsed.append((text, None, text))
            continue
        try:
            ref = ImageRef.parse(text)
        except InvalidReference as error:
            raise _UsageError(f"{text!r}: {error.user_message}") from None
        if ref.digest is None:  # pragma: no cover - '@' always introduces a digest in the grammar
            raise _UsageError(f"{text!r} is not IMAGE@sha256:<64 hex>")
        parsed.append((text, ref, ref.digest))
    return parsed


def _file_listings(
    args: argparse.Namespace, targets: list[tuple[str, ImageRef | None, str]]
) -> dict[str, tuple[ListedManifest, ...]] | None:
    """What each target lists (read from its registry); None when one cannot be read (all reported)."""
    listings: dict[str, tuple[ListedManifest, ...]] = {}
    refs = [ref for _, ref, _ in targets if ref is not None]
    for text, ref, _ in targets:
        if ref is None:
            print(
                f"{text}: warning: without an image name imagegate cannot read it to tell whether it is an "
                "index; if it is, give IMAGE@DIGEST so that the manifests it lists are recorded too",
                file=sys.stderr,
            )
    if not refs:
        return listings
    failed = False
    with RegistryClient(_settings(args, refs)) as client:
        for text, ref, digest in targets:
            if ref is None:
                continue
            try:
                listings[digest] = _listed(client, ref, digest, timeout=args.timeout)
            except RegistryError as error:
                print(
                    f"{text}: [{error.code}] {error.user_message}; nothing was recorded (reach its registry "
                    "with --policy, or --credentials/--ca-file; or give the bare digest to record only it)",
                    file=sys.stderr,
                )
                failed = True
    return None if failed else listings


def _quarantine_file(args: argparse.Namespace) -> int:
    path: Path = args.file
    if args.quarantine_action == "list":
        if args.targets:
            raise _UsageError("list --file takes no targets")
        entries = load_quarantine(path)
        if args.output == "json":
            print(json.dumps([_entry_json(entry) for entry in entries], indent=2))
            return _EXIT_OK
        for entry in entries:
            print(
                f"{entry.digest}\t{_format_time(entry.since)}\t{entry.by or '-'}\t"
                f"{entry.relation or '-'}\t{entry.reason}"
            )
        return _EXIT_OK
    targets = _file_targets(args.targets)
    if args.quarantine_action == "add" and not args.reason.strip():
        raise _UsageError("--reason must not be empty")
    editor = QuarantineListEditor.open(path, create=args.quarantine_action == "add")
    notices: list[Notice] = []
    status = _EXIT_OK
    if args.quarantine_action == "add":
        listings = _file_listings(args, targets)
        if listings is None:
            return _EXIT_FAILED
        now = datetime.now(UTC)
        for _, _, digest in targets:
            listed = [Listed(m.digest, m.platform) for m in listings.get(digest, ())]
            notices += editor.add(digest, reason=args.reason, by=args.by, now=now, listed=listed)
    else:
        for _, _, digest in targets:
            found = editor.remove(digest)
            if not found:
                found = [Notice(f"{digest}: not in {path}", warning=True)]
                status = _EXIT_FAILED
            notices += found
    _write_list(path, editor.render())
    for notice in notices:
        print(notice.text, file=sys.stderr if notice.warning else sys.stdout)
    return status


def _write_list(path: Path, data: bytes) -> None:
    """Replace the list atomically, creating its directory when it is missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, data)
    except OSError as error:
        raise ConfigError(f"cannot write quarantine list {path}: {error.strerror or error}") from None


def _format_time(value: datetime | None) -> str:
    return format_rfc3339(value) if value is not None else "-"
