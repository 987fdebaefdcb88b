"""Where the images are: per-kind pod-spec locations and every image slot of a pod spec.

One table maps each supported kind to the path of its pod spec. Within a pod spec the images are in
``containers``, ``initContainers``, ``ephemeralContainers`` and image volumes
(``volumes[].image.reference``, Kubernetes 1.31+). Each image found becomes an :class:`ImageSlot` whose
RFC 6901 pointer is exactly what the mutating webhook's JSONPatch replaces.

The object comes from the API server after decoding, so types are normally right; a malformed shape is
still a :class:`~webhook.errors.BadRequest` naming the pointer, never a silent "no images" (which
would admit unchecked images).
"""

from __future__ import annotations

__all__ = [
    "SUPPORTED_KINDS",
    "ImageSlot",
    "Location",
    "image_slots",
    "kind_resource",
    "pod_spec_path",
    "why_no_images",
]

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from webhook._json import json_type
from webhook.admission.patch import json_pointer
from webhook.errors import BadRequest

Location = Literal["containers", "initContainers", "ephemeralContainers", "volumes"]

# kind -> (API group, resource, path from the object to its pod spec): the one table of the kinds
# imagegate checks. The group lets a caller refuse a custom resource that merely shares a kind name
# with a workload; the resource is what an AdmissionReview for the kind names (offline dry-runs).
_KINDS: Final[Mapping[str, tuple[str, str, tuple[str, ...]]]] = {
    "Pod": ("", "pods", ("spec",)),
    "PodTemplate": ("", "podtemplates", ("template", "spec")),
    "ReplicationController": ("", "replicationcontrollers", ("spec", "template", "spec")),
    "Deployment": ("apps", "deployments", ("spec", "template", "spec")),
    "ReplicaSet": ("apps", "replicasets", ("spec", "template", "spec")),
    "StatefulSet": ("apps", "statefulsets", ("spec", "template", "spec")),
    "DaemonSet": ("apps", "daemonsets", ("spec", "template", "spec")),
    "Job": ("batch", "jobs", ("spec", "template", "spec")),
    "CronJob": ("batch", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
}
_POD_SPECS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = {
    kind: (group, path) for kind, (group, _, path) in _KINDS.items()
}

SUPPORTED_KINDS: Final[frozenset[str]] = frozenset(_KINDS)


def kind_resource(kind: str) -> tuple[str, str] | None:
    """``(API group, resource)`` of a kind imagegate checks (``("apps", "deployments")``), else None."""
    entry = _KINDS.get(kind)
    return (entry[0], entry[1]) if entry is not None else None


_MAX_SHOWN_NAME: Final = 253
_CONTAINER_LISTS: Final[tuple[Location, ...]] = ("containers", "initContainers", "ephemeralContainers")
_DESCRIPTIONS: Final[Mapping[Location, str]] = {
    "containers": "container",
    "initContainers": "init container",
    "ephemeralContainers": "ephemeral container",
    "volumes": "image volume",
}


@dataclass(frozen=True, slots=True)
class ImageSlot:
    """One image in an object.

    Attributes:
        pointer: RFC 6901 pointer to the image string, e.g. ``/spec/template/spec/containers/0/image``
            or ``/spec/volumes/2/image/reference``.
        location: the pod-spec list the image is in.
        name: the container or volume name (``""`` if the object has none).
        image: the image reference as written.
    """

    pointer: str
    location: Location
    name: str
    image: str

    def describe(self) -> str:
        """How messages name the slot, e.g. ``container "app"`` or ``image volume "models"``."""
        what = _DESCRIPTIONS[self.location]
        if not self.name:
            # Unnamed (invalid, but still checked): name it by the pointer to its list entry.
            entry = self.pointer.rsplit("/", 2 if self.location == "volumes" else 1)[0]
            return f"{what} at {entry}"
        # JSON quoting: a name is user input until the API server validates it, and a quote or newline
        # in it must not forge another line of the denial message. Valid names are at most 63
        # characters; a longer one is cut short so it cannot inflate every line of the answer.
        if len(self.name) > _MAX_SHOWN_NAME:
            return f'{what} {json.dumps(self.name[:_MAX_SHOWN_NAME])[:-1]}..."'
        return f"{what} {json.dumps(self.name)}"


def pod_spec_path(kind: str, *, group: str | None = None) -> tuple[str, ...] | None:
    """The path from an object of ``kind`` to its pod spec, or None for kinds without one.

    Args:
        kind: the object's kind, e.g. ``Deployment``.
        group: when given, the kind's API group must match too (``""`` core, ``apps``, ``batch``).
    """
    entry = _POD_SPECS.get(kind)
    if entry is None or (group is not None and group != entry[0]):
        return None
    return entry[1]


def image_slots(kind: str, obj: Mapping[str, Any], *, group: str | None = None) -> tuple[ImageSlot, ...]:
    """Every image of ``obj``, in pod-spec order: containers, init containers, ephemeral containers,
    image volumes.

    Args:
        kind: the object's kind (``AdmissionContext.kind.kind``).
        obj: the object (``AdmissionContext.object``).
        group: when given, the kind's API group must match too; a custom resource named like a workload
            then yields nothing instead of being read with the wrong shape.

    Returns:
        The slots; empty for unsupported kinds and for objects without a pod spec (e.g. only status).

    Raises:
        BadRequest: a list, entry or image on the way has the wrong type, or an image is missing;
            the message names the pointer.
    """
    path = pod_spec_path(kind, group=group)
    if path is None:
        return ()
    spec: Mapping[str, Any] = obj
    for depth, key in enumerate(path):
        child = spec.get(key)
        if child is None:
            return ()
        if not isinstance(child, Mapping):
            raise BadRequest(f"{json_pointer(path[: depth + 1])}: must be an object, not {json_type(child)}")
        spec = child
    slots: list[ImageSlot] = []
    for location in _CONTAINER_LISTS:
        for where, entry in _entries(spec, path, location):
            slots.append(
                ImageSlot(
                    pointer=f"{where}/image",
                    location=location,
                    name=_name(entry, where),
                    image=_image(entry.get("image"), f"{where}/image"),
                )
            )
    for where, entry in _entries(spec, path, "volumes"):
        source = entry.get("image")
        if source is None:
            continue  # another volume type: no image
        if not isinstance(source, Mapping):
            raise BadRequest(f"{where}/image: must be an object, not {json_type(source)}")
        slots.append(
            ImageSlot(
                pointer=f"{where}/image/reference",
                location="volumes",
                name=_name(entry, where),
                image=_image(source.get("reference"), f"{where}/image/reference"),
            )
        )
    return tuple(slots)


def why_no_images(kind: str, obj: Mapping[str, Any], *, group: str) -> str:
    """Why :func:`image_slots` found no image in ``obj``: what a user is told when nothing was checked.

    Call it only for an object whose :func:`image_slots` is empty (it does not re-check the shapes).
    """
    entry = _POD_SPECS.get(kind)
    shown = _cut(f"{group}/{kind}" if group else kind)
    if entry is None:
        return f"kind {shown} is not one imagegate checks"
    expected, path = entry
    if group != expected:
        where = 'the core API group ""' if not expected else f'API group "{expected}"'
        return f"kind {shown} is not one imagegate checks (it checks {kind} in {where})"
    spec: Any = obj
    for key in path:
        spec = spec.get(key) if isinstance(spec, Mapping) else None
        if spec is None:
            return f"the object has no pod spec at {json_pointer(path)}"
    return f"the pod spec at {json_pointer(path)} has no containers and no image volumes"


def _cut(text: str) -> str:
    # Kind and group come from the request: keep what is shown bounded.
    return text if len(text) <= _MAX_SHOWN_NAME else text[:_MAX_SHOWN_NAME] + "..."


def _entries(
    spec: Mapping[str, Any], path: tuple[str, ...], location: Location
) -> list[tuple[str, Mapping[str, Any]]]:
    """(pointer to the entry, entry) for each entry of the list at ``location``."""
    items = spec.get(location)
    if items is None:
        return []
    if not isinstance(items, list):
        raise BadRequest(f"{json_pointer((*path, location))}: must be an array, not {json_type(items)}")
    entries = []
    pointer = json_pointer((*path, location))
    for index, item in enumerate(items):
        where = f"{pointer}/{index}"  # an index needs no escaping
        if not isinstance(item, Mapping):
            raise BadRequest(f"{where}: must be an object, not {json_type(item)}")
        entries.append((where, item))
    return entries


def _name(entry: Mapping[str, Any], where: str) -> str:
    name = entry.get("name")
    if name is None:
        return ""
    if not isinstance(name, str):
        raise BadRequest(f"{where}/name: must be a string, not {json_type(name)}")
    return name


def _image(image: object, pointer: str) -> str:
    if image is None:
        raise BadRequest(f"{pointer}: missing: every container and image volume needs an image")
    if not isinstance(image, str):
        raise BadRequest(f"{pointer}: must be a string, not {json_type(image)}")
    return image
