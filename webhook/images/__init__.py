"""Image reference grammar (pure)."""

from webhook.images.reference import DOCKER_HUB, ImageRef, pin_image_text

__all__ = ["DOCKER_HUB", "ImageRef", "pin_image_text"]
