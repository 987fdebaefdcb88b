"""The AdmissionReview wire layer (pure): parsing requests, locating images, building JSONPatches."""

from webhook.admission.patch import encode_patch, json_pointer, pin_patch
from webhook.admission.review import (
    AdmissionContext,
    AdmissionReviewResponse,
    GroupVersionKind,
    GroupVersionResource,
    parse_review,
)
from webhook.admission.workloads import SUPPORTED_KINDS, ImageSlot, image_slots

__all__ = [
    "SUPPORTED_KINDS",
    "AdmissionContext",
    "AdmissionReviewResponse",
    "GroupVersionKind",
    "GroupVersionResource",
    "ImageSlot",
    "encode_patch",
    "image_slots",
    "json_pointer",
    "parse_review",
    "pin_patch",
]
