"""Datasets the extractor can train on, with the preprocessing written down.

Only scikit-learn's bundled ``digits`` for now: it ships inside the package,
so training never needs the network. Everything here is numpy, so it can be
tested without TensorFlow, and the ``preprocessing`` dict travels into the
bundle so a viewer can say exactly what the network was shown.
"""

from dataclasses import dataclass

import numpy as np

from ..core.errors import BlenderCNNError
from ..core.images import resize

DATASETS = ("digits",)


@dataclass(frozen=True)
class Dataset:
    """A train/validation split, images as (N, H, W, C) float32 in 0..1."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    class_names: list
    preprocessing: dict
    val_source_index: np.ndarray  # position of each validation image in the original dataset


def load_dataset(name, input_shape, validation_split=0.2, seed=0):
    """Load dataset ``name``, resized to ``input_shape`` (H, W, C), split deterministically by ``seed``."""
    if name != "digits":
        raise BlenderCNNError(f"dataset {name!r}", f"is unknown; available: {', '.join(DATASETS)}")
    height, width, channels = _check_input_shape(input_shape)
    if channels != 1:
        raise BlenderCNNError("input_shape", f"digits are grayscale: the input needs 1 channel, not {channels}")
    if not 0.0 < float(validation_split) < 1.0:
        raise BlenderCNNError("validation_split", f"must lie between 0 and 1, got {validation_split}")

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values of digits are counts 0..16 (of a 4x4 block of the 32x32 original).
    images = (digits.images / 16.0).astype(np.float32)
    images = resize_bilinear(images, height, width)[..., np.newaxis]
    labels = digits.target.astype(np.int32)
    indices = np.arange(len(labels))
    # Stratified, so every class has validation samples to pick from.
    train_idx, val_idx = train_test_split(
        indices, test_size=float(validation_split), random_state=int(seed), stratify=labels)
    preprocessing = {
        "source": "sklearn.datasets.load_digits (8x8 grayscale, values 0..16, 1797 images)",
        "scale": "value / 16, giving 0..1",
        # Read by core.images for new input images: ink is bright (1), paper dark (0).
        "range": [0.0, 1.0],
        "resize": {
            "method": "bilinear",
            "from": [8, 8],
            "to": [height, width],
            "coordinates": "half-pixel centers, edge pixels clamped (same as tf.image.resize "
                           "method='bilinear', antialias=False)",
        },
        "layout": "channels_last (N, H, W, 1), float32",
        "split": {
            "method": "sklearn.model_selection.train_test_split, stratified by label",
            "validation_split": float(validation_split),
            "seed": int(seed),
            "train_count": int(len(train_idx)),
            "validation_count": int(len(val_idx)),
        },
    }
    return Dataset(
        name="digits",
        x_train=images[train_idx], y_train=labels[train_idx],
        x_val=images[val_idx], y_val=labels[val_idx],
        class_names=[str(label) for label in digits.target_names],
        preprocessing=preprocessing,
        val_source_index=val_idx.astype(np.int32),
    )


def pick_samples(labels, samples_per_class, class_count):
    """Positions of the first ``samples_per_class`` items of each class, class by class.

    Taking the first ones (in the deterministic split order) rather than random
    ones keeps the choice stable and readable: sample 0 is a "0", and so on.
    """
    chosen = []
    for label in range(class_count):
        positions = np.flatnonzero(labels == label)[:samples_per_class]
        if len(positions) < samples_per_class:
            raise BlenderCNNError("samples_per_class",
                                  f"class {label} has only {len(positions)} validation images, "
                                  f"{samples_per_class} asked for")
        chosen.extend(positions.tolist())
    return np.asarray(chosen, dtype=np.int64)


def resize_bilinear(images, height, width):
    """Resize (N, h, w) images to (N, height, width) as ``tf.image.resize(..., 'bilinear')`` does."""
    images = np.asarray(images, dtype=np.float32)[..., np.newaxis]
    return resize(images, height, width, antialias=False)[..., 0]


def _check_input_shape(input_shape):
    if (not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3
            or not all(isinstance(size, int) and size > 0 for size in input_shape)):
        raise BlenderCNNError("input_shape", f"must be three positive integers [height, width, channels], "
                                             f"got {input_shape!r}")
    return tuple(input_shape)
