"""Image files read with Blender's own loader, as numpy (TensorFlow is not needed in Blender)."""

from __future__ import annotations

import os
from typing import cast

import bpy
import numpy as np

from ..core.errors import BlenderCNNError


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The pixels of a PNG/JPEG file as (height, width, channels) float32 0..1, top row first."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such image file")
    try:
        image = bpy.data.images.load(path, check_existing=False)
    except RuntimeError as error:
        raise BlenderCNNError(path, f"cannot be read as an image ({error})") from None
    try:
        # Raw values, as TensorFlow's decoder gives them: no conversion from sRGB to linear.
        # bpy stub gaps: an image's colorspace settings are never None, and its size (a bpy_prop_array) unpacks.
        image.colorspace_settings.name = "Non-Color"  # type: ignore[union-attr]
        width, height = cast("tuple[int, int]", image.size)
        channels = image.channels
        if width == 0 or height == 0:
            raise BlenderCNNError(path, "cannot be read as an image (it has no pixels)")
        pixels = np.empty(width * height * channels, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(pixels.reshape(height, width, channels)[::-1])
