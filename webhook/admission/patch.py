"""JSONPatch (RFC 6902) for pinned images: one ``replace`` per changed image, base64 for the response.

(Provenance annotations add their operations: :mod:`webhook.admission.provenance`.)
"""

from __future__ import annotations

__all__ = ["encode_patch", "json_pointer", "pin_patch"]

import base64
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from webhook._json import compact_json

if TYPE_CHECKING:
    from webhook.admission.workloads import ImageSlot


def json_pointer(segments: Iterable[str | int]) -> str:
    """The RFC 6901 pointer to ``segments``: ``~`` is written ``~0`` and ``/`` is written ``~1``.

    >>> json_pointer(["metadata", "annotations", "example.com/pinned"])
    '/metadata/annotations/example.com~1pinned'
    """
    # "~" first: escaping "/" first would turn its "~1" into "~01".
    return "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in segments)


def pin_patch(pins: Sequence[tuple[ImageSlot, str]]) -> list[dict[str, str]]:
    """JSONPatch operations that set each slot's image to its new value.

    ``replace`` (not ``add``) is used because the image is known to be there: the slot was read from
    the very object the API server applies the patch to, and ``replace`` fails instead of silently
    creating a field if that ever stops being true. Slots whose value does not change get no operation,
    and a location listed twice with the same value gets one.

    Args:
        pins: (slot, new image text) pairs, e.g. ``Decision.pins``.

    Returns:
        The operations, in the order of ``pins``.

    Raises:
        ValueError: the same location is given two different new values.
    """
    ops: list[dict[str, str]] = []
    chosen: dict[str, str] = {}
    for slot, image in pins:
        if image == slot.image:
            continue
        previous = chosen.get(slot.pointer)
        if previous is None:
            chosen[slot.pointer] = image
            ops.append({"op": "replace", "path": slot.pointer, "value": image})
        elif previous != image:
            raise ValueError(f"conflicting pins for {slot.pointer}: {previous!r} and {image!r}")
    return ops


def encode_patch(ops: Sequence[Mapping[str, Any]]) -> str:
    """``response.patch``: base64 of the operations as compact JSON."""
    document = [dict(op) for op in ops]
    return base64.b64encode(compact_json(document).encode()).decode("ascii")
