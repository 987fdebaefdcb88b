"""Parse in-toto Statements (v0.1 and v1) from a verified DSSE payload, strictly and without trust.

The payload handed in here has already been verified (DSSE signature, transparency log); this module
only decides whether it is a well-formed in-toto Statement and which digests it covers. sigstore-python's
``Statement`` and in-toto-attestation's ``validate()`` both refuse Statement v0.1, which slsa-github-generator
and legacy cosign attestations still use, so the JSON is parsed here by hand.

Strictness, and why:

* the payload type must be ``application/vnd.in-toto+json`` (a signature over any other type is not a
  claim about an image);
* duplicate JSON keys, ``NaN``/``Infinity`` and invalid UTF-8 are rejected: two parsers reading the same
  signed bytes differently is how verification is bypassed;
* ``subject`` is a non-empty list of objects with a non-empty ``digest`` map of strings; a ``sha256``
  value must be 64 lower-case hex digits (the in-toto DigestSet rule), so it can be compared exactly;
* ``name`` is optional (cosign's ``sign/v1`` statements have none), ``predicate`` may be absent or null
  (both mean ``{}``, as the in-toto parsing rules say) but otherwise must be an object;
* unknown top-level fields are ignored, as the in-toto parsing rules require (Cloud Build adds
  ``slsaProvenance`` next to ``predicate``).
"""

from __future__ import annotations

__all__ = [
    "IN_TOTO_PAYLOAD_TYPE",
    "MAX_STATEMENT_BYTES",
    "STATEMENT_V01",
    "STATEMENT_V1",
    "Statement",
    "Subject",
    "parse_statement",
]

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from webhook._json import json_kind
from webhook.errors import VerificationFailed
from webhook.images.reference import SHA256_HEX_RE, is_sha256_digest
from webhook.reasons import Reason
from webhook.text import first_line, show_value

_logger = logging.getLogger(__name__)

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_V01 = "https://in-toto.io/Statement/v0.1"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
_STATEMENT_TYPES = (STATEMENT_V01, STATEMENT_V1)
# Vulnerability reports (SARIF inside cosign's vuln predicate) run to a few MiB; anything far larger is
# not an attestation we want to hold in memory per admission.
MAX_STATEMENT_BYTES = 16 * 1024 * 1024

# How much of an offending value an error message quotes.
_SHOW = 80
# A value from outside, quoted (escaped, cut short) for a message.
_show = functools.partial(show_value, limit=_SHOW)


@dataclass(frozen=True, slots=True)
class Subject:
    """One subject of a Statement: an optional name and its digests by algorithm."""

    name: str
    digests: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Statement:
    """A structurally valid in-toto Statement (v0.1 or v1).

    Attributes:
        statement_type: the ``_type`` URI (``STATEMENT_V01`` or ``STATEMENT_V1``).
        subjects: at least one subject.
        predicate_type: the non-empty ``predicateType`` URI.
        predicate: the predicate object (empty when absent); read-only at the top level.
    """

    statement_type: str
    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: Mapping[str, Any]

    def covers(self, digest: str) -> bool:
        """Whether some subject's ``sha256`` equals the admitted digest ``sha256:<hex>``, exactly.

        A digest that is not ``sha256:`` followed by 64 lower-case hex digits never matches.
        """
        if not is_sha256_digest(digest):
            return False
        wanted = digest.removeprefix("sha256:")
        return any(subject.digests.get("sha256") == wanted for subject in self.subjects)


def parse_statement(payload_type: str, payload: bytes) -> Statement:
    """Parse a DSSE payload as an in-toto Statement v0.1 or v1.

    Args:
        payload_type: the DSSE ``payloadType``; must be ``application/vnd.in-toto+json``.
        payload: the verified payload bytes.

    Returns:
        The parsed :class:`Statement`.

    Raises:
        VerificationFailed: ``attestation-invalid``, with a message naming what was expected and
            what was found.
    """
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise _invalid(f"payload type is {_show(payload_type)}, expected {IN_TOTO_PAYLOAD_TYPE!r}")
    if len(payload) > MAX_STATEMENT_BYTES:
        raise _invalid(f"statement is {len(payload)} bytes, more than the {MAX_STATEMENT_BYTES} allowed")
    document = _load_json(payload)
    if not isinstance(document, dict):
        raise _invalid(f"statement is a JSON {json_kind(document)}, expected an object")

    statement_type = document.get("_type")
    if statement_type not in _STATEMENT_TYPES:
        raise _invalid(
            f"statement _type is {_show(statement_type)}, expected {STATEMENT_V01!r} or {STATEMENT_V1!r}"
        )
    subjects = _subjects(document.get("subject"))
    predicate_type = document.get("predicateType")
    if not isinstance(predicate_type, str) or not predicate_type:
        raise _invalid(f"statement predicateType is {_show(predicate_type)}, expected a non-empty string")
    predicate = document.get("predicate")
    if predicate is None:
        predicate = {}
    if not isinstance(predicate, dict):
        raise _invalid(f"statement predicate is a JSON {json_kind(predicate)}, expected an object")
    return Statement(
        statement_type=str(statement_type),
        subjects=subjects,
        predicate_type=predicate_type,
        predicate=MappingProxyType(predicate),
    )


def _load_json(payload: bytes) -> Any:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"statement is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _DuplicateKey as exc:
        raise _invalid(f"statement has the key {_show(exc.key)} twice in one object") from None
    except _BadConstant as exc:
        raise _invalid(f"statement contains {exc.constant}, which is not JSON") from None
    except json.JSONDecodeError as exc:
        raise _invalid(f"statement is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise _invalid("statement is nested too deeply to parse") from None
    except ValueError as exc:
        # e.g. an integer literal longer than Python's int conversion limit (sys.get_int_max_str_digits)
        raise _invalid(f"statement is not JSON that can be read ({first_line(exc)[:_SHOW]})") from None


def _subjects(value: object) -> tuple[Subject, ...]:
    if not isinstance(value, list) or not value:
        raise _invalid(f"statement subject is {_describe(value)}, expected a non-empty list")
    subjects = []
    for index, item in enumerate(value):
        where = f"subject[{index}]"
        if not isinstance(item, dict):
            raise _invalid(f"{where} is a JSON {json_kind(item)}, expected an object")
        name = item.get("name", "")
        if name is None:
            name = ""
        if not isinstance(name, str):
            raise _invalid(f"{where}.name is a JSON {json_kind(name)}, expected a string")
        digests = item.get("digest")
        if not isinstance(digests, dict) or not digests:
            raise _invalid(f"{where}.digest is {_describe(digests)}, expected a non-empty object")
        for algorithm, hexdigest in digests.items():
            if not isinstance(hexdigest, str) or not hexdigest:
                raise _invalid(
                    f"{where}.digest.{algorithm} is {_describe(hexdigest)}, expected a non-empty string"
                )
        sha256 = digests.get("sha256")
        if sha256 is not None and not SHA256_HEX_RE.fullmatch(sha256):
            raise _invalid(f"{where}.digest.sha256 is {_show(sha256)}, expected 64 lower-case hex digits")
        subjects.append(Subject(name=name, digests=MappingProxyType(dict(digests))))
    return tuple(subjects)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _BadConstant(ValueError):
    def __init__(self, constant: str) -> None:
        super().__init__(constant)
        self.constant = constant


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constants(constant: str) -> Any:
    raise _BadConstant(constant)


def _invalid(message: str) -> VerificationFailed:
    _logger.debug("invalid in-toto statement: %s", message)
    return VerificationFailed(f"invalid in-toto statement: {message}", code=Reason.ATTESTATION_INVALID)


def _describe(value: object) -> str:
    if value is None:
        return "missing"
    if isinstance(value, list | dict) and not value:
        return f"an empty {json_kind(value)}"
    return f"a JSON {json_kind(value)}"
