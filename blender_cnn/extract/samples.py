"""The fixed inputs a bundle records activations for.

``extract`` takes a ``Samples`` object or the path of an ``.npz`` holding
``inputs`` (S, *input_shape) float and ``labels`` (S,) int, optionally
``source_index`` (S,) int and ``class_names`` (K,) text. Samples can also be
picked per class from the run's dataset or from such a file
(``run_dataset_samples``, ``samples_per_class_of``), or read from image files
(``image_samples``). A model that comes with none is shown made-up inputs
(``synthetic_samples``): test patterns, or noise.

Samples from data keep their class (``labels``) and their position in the
source (``source_index``). Image files have no class: their label is
``UNLABELLED`` (-1), which bundle version 2 allows and the scene never uses as
an index. Either way ``preprocessing`` says how the raw data became the
inputs; it travels into the bundle as ``samples.preprocessing``.

Images are decoded with TensorFlow (imported when first needed) and converted
by the numpy pipeline of ``core/images.py``, which Blender uses too.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from ..core.bundle import UNLABELLED
from ..core.errors import BlenderCNNError, first_line
from ..core.images import image_input_shape, image_settings, to_model_input
from ..core.presets import DATASETS
from .datasets import load_dataset

SAMPLES_FILE = "samples.npz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
# What a model with no samples is shown (synthetic_samples): edges of two orientations, a blob, corners, noise.
SYNTHETIC_PATTERNS = ("vertical bars", "diagonal stripes", "disc", "checkerboard", "noise")
SYNTHETIC_NOISE_SAMPLES = 4
SYNTHETIC_OPEN_SIZE = 64


@dataclass(frozen=True)
class Samples:
    inputs: np.ndarray  # (S, *input_shape) float32, exactly as fed to the network
    labels: np.ndarray  # (S,) int32; UNLABELLED (-1) where the class is not known
    source_index: np.ndarray | None = None
    class_names: list | None = None
    preprocessing: dict = field(default_factory=dict)
    dataset: str | None = None
    path: str | None = None  # the file they came from, for messages and provenance
    synthetic: str | None = None  # made up for a model that came with none: "patterns" or "noise"
    # A model of several inputs or outputs (extract/multi_io.py): {input layer: (S, ...)} for each input
    # (``inputs`` is then the first), and the labels and class names of output heads, by output layer.
    named_inputs: dict | None = None
    head_labels: dict = field(default_factory=dict)
    head_class_names: dict = field(default_factory=dict)

    def __post_init__(self):
        inputs, labels = np.asarray(self.inputs), np.asarray(self.labels)
        where = self.path or "samples"
        if (
            inputs.dtype.kind not in "fiu"
            or labels.dtype.kind not in "iu"
            or labels.shape != inputs.shape[:1]
            or inputs.ndim < 2
            or len(inputs) == 0
        ):
            raise BlenderCNNError(
                where,
                f"needs numeric 'inputs' (S, ...) and integer 'labels' (S,) with S > 0, "
                f"got {inputs.dtype} {inputs.shape} and {labels.dtype} {labels.shape}",
            )
        object.__setattr__(self, "inputs", np.ascontiguousarray(inputs, dtype=np.float32))
        object.__setattr__(self, "labels", np.ascontiguousarray(labels, dtype=np.int32))
        if self.source_index is not None:
            object.__setattr__(self, "source_index", np.ascontiguousarray(self.source_index, dtype=np.int32))
        for name, values in (self.named_inputs or {}).items():
            if np.asarray(values).dtype.kind not in "fiu" or np.shape(values)[:1] != labels.shape:
                raise BlenderCNNError(
                    where,
                    f"needs numeric 'inputs/{name}' of {len(labels)} samples, "
                    f"got {np.asarray(values).dtype} {np.shape(values)}",
                )
        for name, values in self.head_labels.items():
            if np.asarray(values).dtype.kind not in "iu" or np.shape(values) != labels.shape:
                raise BlenderCNNError(
                    where,
                    f"needs integer 'labels/{name}' of shape {labels.shape}, "
                    f"got {np.asarray(values).dtype} {np.shape(values)}",
                )
        if self.named_inputs is not None:
            object.__setattr__(
                self,
                "named_inputs",
                {name: np.ascontiguousarray(values, dtype=np.float32) for name, values in self.named_inputs.items()},
            )
        object.__setattr__(
            self,
            "head_labels",
            {name: np.ascontiguousarray(values, dtype=np.int32) for name, values in self.head_labels.items()},
        )


def read_samples(path):
    """``Samples`` from an ``.npz`` file, read without pickle."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such samples file; it holds the inputs to record activations for")
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {key: archive[key] for key in archive.files}
    except Exception as error:  # zip, npy and pickle refusals all mean the same to a user
        raise BlenderCNNError(path, f"cannot be read as .npz without pickle ({first_line(error)})") from None
    # A model of several inputs takes "inputs/<input layer>" per input; "labels/<output layer>" and
    # "class_names/<output layer>" give an output head its own (see extract/multi_io.py).
    named = {key.split("/", 1)[1]: stored[key] for key in stored if key.startswith("inputs/")}
    for key in ("inputs", "labels"):
        if key not in stored and not (key == "inputs" and named):
            raise BlenderCNNError(path, f"lacks the array {key!r} (it has {sorted(stored)})")
    class_names = stored.get("class_names")
    return Samples(
        inputs=stored["inputs"] if "inputs" in stored else next(iter(named.values())),
        labels=stored["labels"],
        source_index=stored.get("source_index"),
        class_names=None if class_names is None else [str(name) for name in class_names.tolist()],
        path=path,
        named_inputs=named or None,
        head_labels={key.split("/", 1)[1]: stored[key] for key in stored if key.startswith("labels/")},
        head_class_names={
            key.split("/", 1)[1]: [str(name) for name in stored[key].tolist()]
            for key in stored
            if key.startswith("class_names/")
        },
    )


def image_samples(paths, input_shape, preprocessing=None):
    """Read PNG/JPEG files as samples for a network taking ``input_shape`` (height, width, channels).

    TensorFlow decodes each file to 0..1; ``core.images.to_model_input`` does
    the rest (color, fit, resize, value range: see ``core.images.image_settings``
    for the ``preprocessing`` keys it reads), the same numpy code Blender uses
    for an image picked there. A run's recorded preprocessing (run.json) can be
    passed as it is.
    """
    paths = [os.fspath(path) for path in paths]
    if not paths:
        raise BlenderCNNError("images", "no image files given")
    image_input_shape(input_shape)
    image_settings(preprocessing or {})  # refuse bad options before decoding anything

    import tensorflow as tf

    inputs, steps = [], []
    for path in paths:
        values, recorded = to_model_input(_decode(tf, path).numpy(), input_shape, preprocessing, where=path)
        inputs.append(values)
        steps.append(recorded)
    recorded = {
        "source": "image files",
        "files": [os.path.basename(path) for path in paths],
        "decode": "tf.io.decode_image to 0..1 (8- or 16-bit)",
        **steps[0],
        "labels": f"{UNLABELLED}: image files have no class",
    }
    colors = [step["color"] for step in steps]
    if len(set(colors)) > 1:
        recorded["color"] = colors
    if preprocessing:
        recorded["network_preprocessing"] = preprocessing
    return Samples(
        inputs=np.stack(inputs).astype(np.float32),
        labels=np.full(len(paths), UNLABELLED, dtype=np.int32),
        preprocessing=recorded,
    )


def synthetic_samples(input_shape, preprocessing=None):
    """Made-up inputs for a model that came with none: ``SYNTHETIC_PATTERNS`` for inputs of two or three axes
    (an image, or a sequence drawn as one), seeded noise for any other shape.

    Values are 0..1, then scaled as ``preprocessing`` says (its ``range``, ``mean`` and ``std``, as for image
    files). Axes the model leaves open (``None``) get ``SYNTHETIC_OPEN_SIZE``. Unlabelled; ``synthetic`` names
    the kind (``"patterns"`` or ``"noise"``), which the bundle records as ``samples.synthetic``.
    """
    shape = tuple(SYNTHETIC_OPEN_SIZE if size is None else int(size) for size in input_shape)
    settings = image_settings(preprocessing or {})
    if len(shape) in (2, 3):
        kind, names = "patterns", list(SYNTHETIC_PATTERNS)
        height, width = shape[:2]
        channels = shape[2] if len(shape) == 3 else 1
        inputs = np.stack([_pattern(name, height, width, channels) for name in names]).reshape(len(names), *shape)
    else:
        kind, names = "noise", [f"uniform noise, seed {seed}" for seed in range(SYNTHETIC_NOISE_SAMPLES)]
        inputs = np.stack(
            [np.random.default_rng(seed).random(shape, dtype=np.float32) for seed in range(SYNTHETIC_NOISE_SAMPLES)]
        )
    low, high = settings["range"]
    inputs = low + inputs * (high - low)
    if settings["mean"] is not None:
        inputs = (inputs - np.asarray(settings["mean"], np.float32)) / np.asarray(settings["std"], np.float32)
    recorded = {
        "source": "synthetic",
        "kind": kind,
        "samples": names,
        "range": [low, high],
        "why": f"the model came with no samples ({SAMPLES_FILE}, --samples or --images)",
        "labels": f"{UNLABELLED}: synthetic inputs have no class",
    }
    if settings["mean"] is not None:
        recorded.update(mean=settings["mean"], std=settings["std"])
    if any(size is None for size in input_shape):
        recorded["open_axes"] = f"axes the model leaves open are {SYNTHETIC_OPEN_SIZE} long"
    return Samples(
        inputs=inputs.astype(np.float32),
        labels=np.full(len(names), UNLABELLED, dtype=np.int32),
        preprocessing=recorded,
        synthetic=kind,
    )


def _pattern(name, height, width, channels):
    """One of ``SYNTHETIC_PATTERNS``, (height, width, channels) in 0..1, the same for any call."""
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    period = max(2.0, min(height, width) / 4)  # four repeats across the shorter side
    if name == "vertical bars":
        grey = (np.floor(cols / (period / 2)) % 2).astype(np.float32)
    elif name == "diagonal stripes":
        grey = 0.5 + 0.5 * np.sin(2 * np.pi * (rows + cols) / (period * np.sqrt(2)))
    elif name == "disc":
        radius = 0.3 * min(height, width)
        distance = np.hypot(rows - (height - 1) / 2, cols - (width - 1) / 2)
        grey = np.clip(radius + 0.5 - distance, 0.0, 1.0)  # a soft, antialiased edge
    elif name == "checkerboard":
        grey = ((np.floor(rows / (period / 2)) + np.floor(cols / (period / 2))) % 2).astype(np.float32)
    else:  # "noise": every channel its own
        return np.random.default_rng(0).random((height, width, channels), dtype=np.float32)
    return np.repeat(grey[..., np.newaxis], channels, axis=-1).astype(np.float32)


def run_dataset_samples(run, samples_per_class):
    """``samples_per_class`` validation images of every class of the run's dataset, or None if it is not known.

    ``run`` is the run description (run.json). The split is made again from the
    recorded dataset, validation split and seed, so the images are those the
    run validated on, chosen the way training chose its samples.
    """
    _check_count(samples_per_class)
    preset = run.get("preset") or {}
    training = preset.get("training") or {}
    if (
        run.get("dataset") not in DATASETS
        or "input_shape" not in preset
        or not {"validation_split", "seed"} <= training.keys()
    ):
        return None
    dataset = load_dataset(run["dataset"], preset["input_shape"], training["validation_split"], training["seed"])
    chosen = pick_per_class(
        dataset.y_val, samples_per_class, len(dataset.class_names), f"dataset {dataset.name!r} (validation split)"
    )
    preprocessing = dict(
        dataset.preprocessing,
        samples={
            "per_class": samples_per_class,
            "chosen_from": "validation split, first images of each class in split order",
        },
    )
    return Samples(
        inputs=dataset.x_val[chosen],
        labels=dataset.y_val[chosen],
        source_index=dataset.val_source_index[chosen],
        class_names=list(dataset.class_names),
        preprocessing=preprocessing,
        dataset=dataset.name,
    )


def samples_per_class_of(samples, samples_per_class, class_count=None):
    """The first ``samples_per_class`` of each class of ``samples`` (classes 0..class_count-1, or 0..largest label)."""
    _check_count(samples_per_class)
    if class_count is None:
        class_count = len(samples.class_names) if samples.class_names else int(samples.labels.max()) + 1
    where = samples.path or "samples"
    chosen = pick_per_class(samples.labels, samples_per_class, class_count, where)
    # Positions in the source dataset when known, else positions in the samples file.
    index = samples.source_index[chosen] if samples.source_index is not None else chosen
    preprocessing = dict(
        samples.preprocessing,
        samples={
            "per_class": samples_per_class,
            "chosen_from": f"{os.path.basename(where)}, first samples of each class in stored order",
        },
    )
    return Samples(
        inputs=samples.inputs[chosen],
        labels=samples.labels[chosen],
        source_index=index,
        class_names=samples.class_names,
        preprocessing=preprocessing,
        dataset=samples.dataset,
        path=samples.path,
        named_inputs=None
        if samples.named_inputs is None
        else {name: values[chosen] for name, values in samples.named_inputs.items()},
        head_labels={name: values[chosen] for name, values in samples.head_labels.items()},
        head_class_names=samples.head_class_names,
    )


def pick_per_class(labels, samples_per_class, class_count, where):
    """Positions of the first ``samples_per_class`` items of each class, class by class.

    The first ones rather than random ones keep the choice stable and readable:
    with one per class, sample 0 is of class 0, and so on.
    """
    labels = np.asarray(labels)
    chosen = []
    for label in range(class_count):
        positions = np.flatnonzero(labels == label)[:samples_per_class]
        if len(positions) < samples_per_class:
            raise BlenderCNNError(
                where, f"holds {len(positions)} samples of class {label}; {samples_per_class} per class were asked for"
            )
        chosen.extend(positions.tolist())
    return np.asarray(chosen, dtype=np.int64)


def _check_count(samples_per_class):
    if not isinstance(samples_per_class, int) or isinstance(samples_per_class, bool) or samples_per_class < 1:
        raise BlenderCNNError("samples_per_class", f"must be a positive integer, got {samples_per_class!r}")


def _decode(tf, path):
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such image file")
    if not path.lower().endswith(IMAGE_SUFFIXES):
        raise BlenderCNNError(path, f"is not a PNG or JPEG file (expected {', '.join(IMAGE_SUFFIXES)})")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return tf.io.decode_image(data, dtype=tf.float32, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as error:
        raise BlenderCNNError(path, f"cannot be decoded as an image ({first_line(error)})") from None
