"""Images to network inputs, in numpy: color conversion, fit, resize and value range.

One pipeline serves both sides: the extractor (which decodes PNG/JPEG with
TensorFlow) and Blender (which decodes with its own image loader and has no
TensorFlow), so an image gives the same input wherever it is converted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import BlenderCNNError

DEFAULT_RANGE = (0.0, 1.0)
FITS = ("stretch", "crop")
RESIZE_METHODS = ("bilinear", "nearest")
# ITU-R 601 luma, as tf.image.rgb_to_grayscale uses.
LUMA_WEIGHTS = np.array([0.2989, 0.5870, 0.1140], dtype=np.float32)


def image_settings(preprocessing: Mapping[str, Any]) -> dict[str, Any]:
    """The image options of a ``preprocessing`` dict, checked; unknown keys are ignored.

    - ``range``: ``[low, high]`` that black..white maps to; default ``[0, 1]``
    - ``mean``, ``std``: per-channel (or single) values; inputs become ``(x - mean) / std`` after scaling
    - ``invert``: true to turn dark-on-light images into light-on-dark (as digit datasets are)
    - ``resize``: ``"bilinear"`` (default) or ``"nearest"``, or ``{"method": ..., "antialias": bool}``
      (antialiasing, default on, widens the bilinear filter when shrinking)
    - ``fit``: ``"stretch"`` (default) to the network's aspect ratio, or ``"crop"`` the centre to it
    """
    where = "preprocessing"
    value_range = preprocessing.get("range", DEFAULT_RANGE)
    if (
        not isinstance(value_range, (list, tuple))
        or len(value_range) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range)
    ):
        raise BlenderCNNError(where, f"'range' must be [low, high], got {value_range!r}")
    resize = preprocessing.get("resize", {})
    resize = {"method": resize} if isinstance(resize, str) else dict(resize) if isinstance(resize, dict) else {}
    method = resize.get("method", "bilinear")
    if method not in RESIZE_METHODS:
        raise BlenderCNNError(where, f"resize method {method!r} is unknown; use one of {', '.join(RESIZE_METHODS)}")
    fit = preprocessing.get("fit", "stretch")
    if fit not in FITS:
        raise BlenderCNNError(where, f"'fit' must be one of {', '.join(FITS)}, got {fit!r}")
    mean, std = preprocessing.get("mean"), preprocessing.get("std")
    if (mean is None) != (std is None):
        raise BlenderCNNError(where, "'mean' and 'std' go together; give both or neither")
    if std is not None and np.any(np.asarray(std, dtype=np.float64) == 0):
        raise BlenderCNNError(where, f"'std' must not be zero, got {std!r}")
    return {
        "range": (float(value_range[0]), float(value_range[1])),
        "method": method,
        # Shrinking a photo to a few dozen pixels without antialiasing keeps only scattered pixels.
        "antialias": bool(resize.get("antialias", True)),
        "fit": fit,
        "invert": bool(preprocessing.get("invert", False)),
        "mean": mean,
        "std": std,
    }


def to_model_input(
    image: npt.ArrayLike,
    input_shape: Sequence[int],
    preprocessing: Mapping[str, Any] | None = None,
    where: str = "image",
) -> tuple[np.ndarray, dict[str, Any]]:
    """One decoded image (h, w, channels) with values 0..1 as the network's input (H, W, C) float32.

    Returns ``(input, recorded)``: ``recorded`` says what was done, for the bundle.
    """
    height, width, channels = image_input_shape(input_shape)
    settings = image_settings(preprocessing or {})
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., np.newaxis]
    image, color = convert_channels(image, channels, where)
    if settings["fit"] == "crop":
        image = crop_to_aspect(image, height / width)
    values = np.clip(resize(image, height, width, settings["antialias"], settings["method"]), 0.0, 1.0)
    if settings["invert"]:
        values = 1.0 - values
    low, high = settings["range"]
    values = low + values * (high - low)
    if settings["mean"] is not None:
        values = (values - np.asarray(settings["mean"], dtype=np.float32)) / np.asarray(settings["std"], np.float32)
    recorded = {
        "color": color,
        "fit": settings["fit"],
        "resize": {"method": settings["method"], "antialias": settings["antialias"], "to": [height, width]},
        "invert": settings["invert"],
        "range": [low, high],
        "scale": f"{low:g} + value * {high - low:g} (value 0..1 from the decoded image)",
        "layout": f"channels_last ({height}, {width}, {channels}), float32",
    }
    if settings["mean"] is not None:
        recorded.update(mean=settings["mean"], std=settings["std"])
    return np.ascontiguousarray(values, dtype=np.float32), recorded


def image_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(input_shape)
    if len(shape) != 3 or shape[2] not in (1, 3) or not all(isinstance(size, int) and size > 0 for size in shape):
        raise BlenderCNNError(
            "images",
            f"can only feed networks that take (height, width, 1 or 3 channels) images; this one takes {list(shape)}",
        )
    return shape


def convert_channels(image: np.ndarray, channels: int, where: str = "image") -> tuple[np.ndarray, str]:
    """``image`` (h, w, c) with ``channels`` channels, and a note of what was done."""
    notes = []
    have = image.shape[-1]
    if have in (2, 4):  # the last channel is alpha
        image, have = image[..., : have - 1], have - 1
        notes.append("alpha dropped")
    if have == 3 and channels == 1:
        image = (image @ LUMA_WEIGHTS)[..., np.newaxis]
        notes.append("RGB to grey (ITU-R 601 luma)")
    elif have == 1 and channels == 3:
        image = np.repeat(image, 3, axis=-1)
        notes.append("grey to RGB (value repeated)")
    elif have != channels:
        raise BlenderCNNError(where, f"has {have} color channels; the network takes {channels}")
    return image, f"{', '.join(notes) or 'unchanged'} ({channels} channel{'s' * (channels > 1)})"


def crop_to_aspect(image: np.ndarray, aspect: float) -> np.ndarray:
    """The centre of ``image`` with height / width = ``aspect``."""
    height, width = image.shape[0], image.shape[1]
    if height / width > aspect:
        new_height, new_width = max(1, round(width * aspect)), width
    else:
        new_height, new_width = height, max(1, round(height / aspect))
    top, left = (height - new_height) // 2, (width - new_width) // 2
    return image[top : top + new_height, left : left + new_width]


def resize(
    images: npt.ArrayLike, height: int, width: int, antialias: bool = True, method: str = "bilinear"
) -> np.ndarray:
    """Resize (..., h, w, c) images to (..., height, width, c), as ``tf.image.resize`` does.

    Pixel centres sit at half-integer coordinates and the edges are clamped;
    with ``antialias`` the bilinear filter widens when shrinking, as
    TensorFlow's ``antialias=True`` does (equal to it within 2e-6).
    """
    images = np.asarray(images, dtype=np.float32)
    matrix = nearest_matrix if method == "nearest" else resampling_matrix
    rows = matrix(images.shape[-3], height, antialias)
    cols = matrix(images.shape[-2], width, antialias)
    return np.ascontiguousarray(np.einsum("yh,...hwc,xw->...yxc", rows, images, cols, optimize=True), dtype=np.float32)


def resampling_matrix(source_size: int, target_size: int, antialias: bool = True) -> np.ndarray:
    """(target, source) weights of a triangle filter along one axis; rows sum to 1."""
    scale = source_size / target_size
    support = max(scale, 1.0) if antialias else 1.0
    centres = (np.arange(target_size) + 0.5) * scale
    if not antialias:
        # Plain bilinear samples at the centre clamped into the image, so the edge pixel repeats.
        centres = np.clip(centres, 0.5, source_size - 0.5)
    distance = (np.arange(source_size) + 0.5)[np.newaxis, :] - centres[:, np.newaxis]
    weights = np.maximum(0.0, 1.0 - np.abs(distance) / support)
    totals = weights.sum(axis=1, keepdims=True)
    return (weights / np.where(totals > 0, totals, 1.0)).astype(np.float32)


def nearest_matrix(source_size: int, target_size: int, _antialias: bool | None = None) -> np.ndarray:
    """(target, source) one-hot rows picking the pixel under each target centre."""
    picked = np.minimum(
        np.floor((np.arange(target_size) + 0.5) * source_size / target_size).astype(np.int64), source_size - 1
    )
    matrix = np.zeros((target_size, source_size), dtype=np.float32)
    matrix[np.arange(target_size), picked] = 1.0
    return matrix
