"""Datasets the extractor can train on, with the preprocessing written down.

Two kinds, named by a preset's ``training.dataset``:

- ``"digits"``: scikit-learn's bundled 8x8 digits. They ship inside the
  package, so training never needs the network. Resized to the input's height
  and width; a 3-channel input gets the grey value in every channel.
- ``{"folder": "path"}``: a folder of images with one subfolder per class
  (class names = subfolder names, sorted). Images (PNG, JPEG, BMP, GIF, found
  at any depth below a class folder) are decoded by TensorFlow to 0..1 and
  converted by ``core.images.to_model_input`` (color, antialiased bilinear
  resize), the numpy code extraction and Blender use for a new image, so an
  image shown later is prepared exactly as the training images were. A
  relative folder is taken against ``base_dir`` (the preset's folder).

The digits path is numpy (and scikit-learn) only; the ``preprocessing`` dict
travels into the bundle so a viewer can say exactly what the network was shown.
"""

import os
from dataclasses import dataclass

import numpy as np

from ..core.errors import BlenderCNNError
from ..core.images import resize
from ..core.presets import FOLDER_KEY, dataset_problem

FOLDER_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


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


def resolve_dataset(spec, base_dir=None):
    """``spec`` checked, with a folder made absolute (relative folders are taken against ``base_dir`` or the
    current folder)."""
    problem = dataset_problem(spec)
    if problem:
        raise BlenderCNNError("training", problem)
    if isinstance(spec, dict):
        folder = os.path.expanduser(spec[FOLDER_KEY])
        return {FOLDER_KEY: os.path.abspath(os.path.join(os.fspath(base_dir or os.getcwd()), folder))}
    return spec


def load_dataset(name, input_shape, validation_split=0.2, seed=0, base_dir=None):
    """Load dataset ``name`` (a spec: ``"digits"`` or ``{"folder": path}``), sized to ``input_shape``
    (H, W, C) and split deterministically by ``seed``; see the module docstring."""
    spec = resolve_dataset(name, base_dir)
    height, width, channels = _check_input_shape(input_shape)
    if not 0.0 < float(validation_split) < 1.0:
        raise BlenderCNNError("validation_split", f"must lie between 0 and 1, got {validation_split}")
    if isinstance(spec, dict):
        return load_image_folder(spec[FOLDER_KEY], input_shape, validation_split, seed)
    if channels not in (1, 3):
        raise BlenderCNNError(
            "input_shape",
            f"digits are grayscale: the input needs 1 channel (or 3, the grey value repeated), not {channels}",
        )

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixel values of digits are counts 0..16 (of a 4x4 block of the 32x32 original).
    images = (digits.images / 16.0).astype(np.float32)
    images = resize_bilinear(images, height, width)[..., np.newaxis]
    if channels == 3:
        images = np.repeat(images, 3, axis=-1)
    labels = digits.target.astype(np.int32)
    indices = np.arange(len(labels))
    # Stratified, so every class has validation samples to pick from.
    train_idx, val_idx = train_test_split(
        indices, test_size=float(validation_split), random_state=int(seed), stratify=labels
    )
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
        "layout": f"channels_last (N, H, W, {channels}), float32",
        "split": {
            "method": "sklearn.model_selection.train_test_split, stratified by label",
            "validation_split": float(validation_split),
            "seed": int(seed),
            "train_count": int(len(train_idx)),
            "validation_count": int(len(val_idx)),
        },
    }
    if channels == 3:
        preprocessing["color"] = "grey value repeated in the 3 channels"
    return Dataset(
        name="digits",
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_val=images[val_idx],
        y_val=labels[val_idx],
        class_names=[str(label) for label in digits.target_names],
        preprocessing=preprocessing,
        val_source_index=val_idx.astype(np.int32),
    )


def dataset_class_names(spec, base_dir=None):
    """The class names of dataset ``spec`` without loading its images."""
    spec = resolve_dataset(spec, base_dir)
    if isinstance(spec, dict):
        return find_class_images(spec[FOLDER_KEY])[0]
    return [str(digit) for digit in range(10)]


def find_class_images(folder):
    """``(class names, [[image path]] per class)`` of a folder with one subfolder per class, or BlenderCNNError."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise BlenderCNNError(folder, "no such image folder (it needs one subfolder of images per class)")
    class_names = sorted(
        entry
        for entry in os.listdir(folder)
        if not entry.startswith(".") and os.path.isdir(os.path.join(folder, entry))
    )
    if not class_names:
        raise BlenderCNNError(
            folder, "has no class subfolders; put the images of each class in a subfolder named after the class"
        )
    if len(class_names) < 2:
        raise BlenderCNNError(
            folder,
            f"has one class subfolder ({class_names[0]!r}); a classifier needs at least 2 classes, one subfolder each",
        )
    files = []
    for name in class_names:
        found = []
        for root, dirs, entries in os.walk(os.path.join(folder, name)):
            dirs[:] = sorted(entry for entry in dirs if not entry.startswith("."))
            found.extend(
                os.path.join(root, entry)
                for entry in sorted(entries)
                if not entry.startswith(".") and entry.lower().endswith(FOLDER_IMAGE_SUFFIXES)
            )
        files.append(found)
    if not any(files):
        raise BlenderCNNError(
            folder,
            f"holds no images ({', '.join(FOLDER_IMAGE_SUFFIXES)}) in its class subfolders {', '.join(class_names)}",
        )
    empty = [name for name, found in zip(class_names, files) if not found]
    if empty:
        raise BlenderCNNError(
            folder,
            f"class subfolder{'s' * (len(empty) > 1)} {', '.join(empty)} "
            f"hold{'s' * (len(empty) == 1)} no images ({', '.join(FOLDER_IMAGE_SUFFIXES)})",
        )
    return class_names, files


def load_image_folder(folder, input_shape, validation_split=0.2, seed=0):
    """A ``Dataset`` of a folder with one subfolder of images per class (see the module docstring).

    Every class is split on its own (stratified): a deterministic shuffle by
    ``seed``, then ``round(count * validation_split)`` images (at least one)
    for validation, so every class needs two images or more.
    """
    folder = os.path.abspath(os.fspath(folder))
    from ..core.images import image_input_shape, to_model_input

    try:
        image_input_shape(input_shape)
    except BlenderCNNError:
        raise BlenderCNNError(
            "input_shape",
            f"images can only feed networks that take (height, width, 1 or 3 "
            f"channels); this one takes {list(input_shape)}",
        ) from None
    class_names, files = find_class_images(folder)
    few = [f"{name} ({len(found)})" for name, found in zip(class_names, files) if len(found) < 2]
    if few:
        raise BlenderCNNError(
            folder,
            f"needs at least 2 images per class (one to train on, one to validate with); too few in {', '.join(few)}",
        )

    import tensorflow as tf

    images, labels, colors, recorded = [], [], set(), {}
    for label, found in enumerate(files):
        for path in found:
            values, recorded = to_model_input(_decode_image(tf, path), input_shape, where=path)
            colors.add(recorded["color"])
            images.append(values)
            labels.append(label)
    images = np.stack(images).astype(np.float32)
    labels = np.asarray(labels, dtype=np.int32)

    rng = np.random.default_rng(int(seed))
    train_idx, val_idx = [], []
    for label in range(len(class_names)):
        positions = rng.permutation(np.flatnonzero(labels == label))
        count = min(len(positions) - 1, max(1, int(round(len(positions) * float(validation_split)))))
        val_idx.extend(positions[:count].tolist())
        train_idx.extend(positions[count:].tolist())
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    preprocessing = {
        "source": f"image folder {folder} (one subfolder per class, class names sorted)",
        "folder": folder,
        "classes": {name: len(found) for name, found in zip(class_names, files)},
        "decode": "tf.io.decode_image to 0..1 (8- or 16-bit)",
        **{key: value for key, value in recorded.items() if key != "color"},
        "color": sorted(colors)[0] if len(colors) == 1 else sorted(colors),
        "split": {
            "method": "per class: a shuffle by seed (numpy default_rng), the first round(count * "
            "validation_split) images (at least 1) validate",
            "validation_split": float(validation_split),
            "seed": int(seed),
            "train_count": int(len(train_idx)),
            "validation_count": int(len(val_idx)),
        },
        "source_index": "position in the folder's image list: classes in name order, files sorted by path",
    }
    return Dataset(
        name=f"folder:{os.path.basename(folder)}",
        x_train=images[train_idx],
        y_train=labels[train_idx],
        x_val=images[val_idx],
        y_val=labels[val_idx],
        class_names=class_names,
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
            raise BlenderCNNError(
                "samples_per_class",
                f"class {label} has only {len(positions)} validation images, {samples_per_class} asked for",
            )
        chosen.extend(positions.tolist())
    return np.asarray(chosen, dtype=np.int64)


def resize_bilinear(images, height, width):
    """Resize (N, h, w) images to (N, height, width) as ``tf.image.resize(..., 'bilinear')`` does."""
    images = np.asarray(images, dtype=np.float32)[..., np.newaxis]
    return resize(images, height, width, antialias=False)[..., 0]


def _check_input_shape(input_shape):
    if (
        not isinstance(input_shape, (list, tuple))
        or len(input_shape) != 3
        or not all(isinstance(size, int) and size > 0 for size in input_shape)
    ):
        raise BlenderCNNError(
            "input_shape", f"must be three positive integers [height, width, channels], got {input_shape!r}"
        )
    return tuple(input_shape)


def _decode_image(tf, path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        return tf.io.decode_image(data, dtype=tf.float32, expand_animations=False).numpy()
    except OSError as error:
        raise BlenderCNNError(path, f"cannot be read ({error.strerror or error})") from None
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        text = str(error).strip().splitlines()
        raise BlenderCNNError(
            path, f"cannot be decoded as an image ({text[0] if text else type(error).__name__})"
        ) from None
