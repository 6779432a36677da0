"""What every extractor (Keras, ONNX) shares: the user's request made a plan, and the bundle's end.

``plan_extraction`` finds the checkpoints (``sources.find_source``), decides
where the samples come from and whether an existing bundle can be reused.
The extractor of the source's kind then writes every epoch's weights and
activations, and ``finish_bundle`` adds the samples, metrics and manifest
(docs/bundle-format.md) and puts the file in place.
"""

import dataclasses
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from ..core.bundle import FILE_SUFFIX, load_bundle
from ..core.errors import BlenderCNNError
from ..core.importance import GRADIENT_X_ACTIVATION, labelled_classes
from ..core.layer_specs import is_known_layer_type
from .gradients import EMPTY_CLASS_PASSES_LIMIT, empty_classes_computed
from .keras2 import KERAS2_METADATA_FILE, SAVED_MODEL_FILE, is_keras2_saved_model
from .keras_graph import PREDICTION_BATCH
from .multi_io import add_inputs_and_outputs
from .samples import (
    SAMPLES_FILE,
    Samples,
    image_samples,
    read_samples,
    run_dataset_samples,
    samples_per_class_of,
    synthetic_samples,
)
from .sources import file_stem, find_source
from .tf_graphs import saved_model_folder
from .training import METRIC_NAMES, read_run

SAMPLES_HINT = (
    "pass the inputs to show with --samples FILE (an .npz with arrays 'inputs' and 'labels') or --images FILE ..."
)
ACTIVATIONS_DTYPES = ("float32", "float16")
# Every layer's output for one batch of samples is held at once; VGG16 at 224x224 needs ~60 MB a sample.
ACTIVATION_BATCH_BYTES = 256 * 1024 * 1024
# A gradient tape keeps every output for the backward pass, which makes gradients as big again, and more.
GRADIENT_MEMORY_FACTOR = 3


@dataclass
class ExtractionPlan:
    """One extraction: the source found, the samples (made once the network's input is known, for image
    files and synthetic inputs), the options recorded in the bundle."""

    found: object  # sources.Source
    out_path: str
    samples: Samples | None
    images: list | None
    synthetic: bool
    options: dict
    activations_dtype: str
    importance: bool
    started: float

    @property
    def epochs(self):
        return [checkpoint.epoch for checkpoint in self.found.checkpoints]

    def samples_for_input(self, input_shape, where, log):
        """The samples, made now from image files or as synthetic inputs for an input of ``input_shape``."""
        preprocessing = self.found.run.get("preprocessing")
        if self.samples is None and self.images:
            if any(size is None for size in input_shape):
                raise BlenderCNNError(
                    where,
                    f"takes inputs of any size {tuple(input_shape)}; image files need a network with a fixed "
                    "input size, or pass --samples with inputs already sized",
                )
            self.samples = image_samples(self.images, tuple(int(size) for size in input_shape), preprocessing)
        elif self.samples is None:
            self.samples = synthetic_samples(input_shape, preprocessing)
            log(
                f"samples: none given ({SAMPLES_HINT}); showing {len(self.samples.inputs)} synthetic inputs "
                f"of shape {self.samples.inputs.shape[1:]}, {self.samples.synthetic}: "
                + ", ".join(self.samples.preprocessing["samples"])
            )
        return self.samples


def plan_extraction(
    source, out_path, architecture, samples, allow_unsafe, log, images, samples_per_class, activations_dtype, importance
):
    """The plan for ``keras_bundle.extract``'s arguments, or None when ``out_path`` can be reused as it is."""
    source = os.fspath(source)
    if activations_dtype not in ACTIVATIONS_DTYPES:
        raise BlenderCNNError(
            "activations_dtype", f"must be one of {', '.join(ACTIVATIONS_DTYPES)}, got {activations_dtype!r}"
        )
    images = [os.fspath(path) for path in images] if images else None
    if images and (samples is not None or samples_per_class is not None):
        raise BlenderCNNError("images", "give image files or samples (a file, or a count per class), not both")
    found = find_source(source, architecture=architecture, allow_unsafe=allow_unsafe)
    out_path = os.fspath(out_path) if out_path is not None else default_bundle_path(source)
    samples_path = os.fspath(samples) if isinstance(samples, (str, os.PathLike)) else found.samples_path
    dataset_samples = None
    if samples_per_class is not None and samples is None:
        dataset_samples = run_dataset_samples(found.run, samples_per_class)
    # With no samples from anywhere, the model is shown made-up ones (samples.synthetic_samples).
    synthetic = samples is None and samples_path is None and not images and dataset_samples is None
    if synthetic and samples_per_class is not None:
        raise BlenderCNNError(
            source, f"has no {SAMPLES_FILE} beside it to take {samples_per_class} per class from; {SAMPLES_HINT}"
        )
    options = {
        "activations_dtype": activations_dtype,
        "samples_per_class": samples_per_class,
        "images": [os.path.abspath(path) for path in images] if images else None,
        "importance": bool(importance),
    }
    if synthetic:  # a samples.npz put beside the model later is then not mistaken for the one used
        options["samples"] = "synthetic"
    inputs_files = images or ([samples_path] if dataset_samples is None and not synthetic else [])
    if not isinstance(samples, Samples) and _is_reusable(out_path, found.files + inputs_files, options):
        log(f"reusing {out_path}: it is newer than the checkpoints")
        return None

    started = time.perf_counter()
    for note in found.notes:
        log(note)
    if dataset_samples is not None:
        samples = dataset_samples
        log(f"samples: {samples_per_class} per class from the validation split of {samples.dataset!r}")
    elif not images and not synthetic and not isinstance(samples, Samples):
        samples = read_samples(samples_path)
        if not samples.preprocessing and found.run.get("preprocessing"):  # the run's file: its data's story
            samples = dataclasses.replace(
                samples, preprocessing=found.run["preprocessing"], dataset=samples.dataset or found.run.get("dataset")
            )
        if samples_per_class is not None:
            samples = samples_per_class_of(samples, samples_per_class)
    elif images or synthetic:
        samples = None  # image files and made-up inputs are sized to the network, known once it is loaded
    return ExtractionPlan(
        found, out_path, samples, images, synthetic, options, activations_dtype, bool(importance), started
    )


def reserve_arrays(writer, graph, epoch_count, sample_count, activations_dtype):
    """``{array key: slot}`` for every weight and activation array of ``graph``."""
    slots = {}
    for layer in graph:
        for weight in layer["weights"]:
            slots[weight["array"]] = writer.reserve(weight["array"], (epoch_count, *weight["shape"]), np.float32)
        leading = 1 if not layer["inputs"] else epoch_count  # an input is the same at every epoch
        slots[layer["activations"]] = writer.reserve(
            layer["activations"], (leading, sample_count, *layer["output_shape"]), activations_dtype
        )
    return slots


def batch_size(graph, gradients=False):
    """How many samples to run at once so that every layer's output of one batch fits ACTIVATION_BATCH_BYTES."""
    bytes_per_sample = 4 * sum(math.prod(layer["output_shape"]) for layer in graph)
    if gradients:
        bytes_per_sample *= GRADIENT_MEMORY_FACTOR
    return max(1, min(PREDICTION_BATCH, ACTIVATION_BATCH_BYTES // bytes_per_sample))


def add_head_predictions(head_predictions, name, outputs, position, start, epoch_count, sample_count):
    """Put one batch's probabilities of output head ``name`` (``core.forward.as_probabilities``) in place."""
    from ..core.forward import as_probabilities

    probabilities = as_probabilities(outputs)
    if name not in head_predictions:
        head_predictions[name] = np.zeros((epoch_count, sample_count, probabilities.shape[1]), np.float32)
    head_predictions[name][position, start : start + len(probabilities)] = probabilities


def finish_bundle(
    writer,
    plan,
    graph,
    samples,
    input_names,
    every_input,
    output_names,
    head_predictions,
    source_details,
    log,
    importance_score=None,
):
    """Add the samples, metrics and manifest to ``writer`` (whose weights and activations are in) and finish it.

    ``source_details``: what the extractor adds to the manifest's ``source`` (its library's version, say).
    ``importance_score``: how importance was scored, when the extractor stored it (``gradients.py``).
    """
    found, epochs = plan.found, plan.epochs
    unrecognized = [layer["name"] for layer in graph[1:] if not is_known_layer_type(layer["type"])]
    if unrecognized:
        log(
            "shown by their activations only (layer types the add-on does not draw): "
            + ", ".join(f"{layer['name']} ({layer['type']})" for layer in graph if layer["name"] in unrecognized)
        )
    predictions = head_predictions[output_names[0]]
    writer.add("samples/inputs", samples.inputs)
    writer.add("samples/labels", samples.labels)
    writer.add("samples/predictions", predictions)
    if samples.source_index is not None:
        writer.add("samples/source_index", samples.source_index)
    metrics = {}
    for metric in METRIC_NAMES:
        writer.add(
            f"metrics/{metric}",
            np.asarray([found.history.get(metric, {}).get(epoch, math.nan) for epoch in epochs], dtype=np.float32),
        )
        metrics[metric] = f"metrics/{metric}"

    run = found.run
    class_count = predictions.shape[-1]
    class_names = run.get("class_names") or samples.class_names or [str(index) for index in range(class_count)]
    if len(class_names) != class_count:
        where = os.path.join(found.folder, "run.json") if run.get("class_names") else samples.path or "samples"
        raise BlenderCNNError(
            where, f"lists {len(class_names)} class names but the network outputs {class_count} classes"
        )
    preset = run.get("preset", {})
    # Samples that say how they were made (images, a per-class pick) describe themselves best.
    samples_entry = {
        "inputs": "samples/inputs",
        "labels": "samples/labels",
        "predictions": "samples/predictions",
        "preprocessing": samples.preprocessing or run.get("preprocessing") or {},
        "dataset": samples.dataset or (None if plan.images or plan.synthetic else run.get("dataset")),
    }
    if samples.synthetic:
        samples_entry["synthetic"] = samples.synthetic
    if samples.source_index is not None:
        samples_entry["source_index"] = "samples/source_index"
    manifest = {
        "name": found.name,
        "description": preset.get("description", ""),
        "input_shape": list(samples.inputs.shape[1:]),
        "class_names": list(class_names),
        "epochs": epochs,
        "layers": graph,
        "unrecognized_layers": unrecognized,
        "samples": samples_entry,
        "metrics": metrics,
        "source": {
            "kind": found.checkpoints[0].kind,
            "checkpoints": [os.path.basename(checkpoint.path) for checkpoint in found.checkpoints],
            "architecture": found.architecture_path and os.path.basename(found.architecture_path),
            "history": found.history_path and os.path.basename(found.history_path),
            "training": preset.get("training", {}),
            **source_details,
            "extraction": plan.options,
        },
    }
    if importance_score is not None:
        manifest["importance"] = {"method": GRADIENT_X_ACTIVATION, "score": importance_score}
        skipped = np.flatnonzero(~labelled_classes(samples.labels, len(class_names)))
        if len(skipped) and not len(empty_classes_computed(samples.labels, len(class_names))):
            # Too many classes without samples to run a pass each: their rows are zero, not estimates.
            manifest["importance"]["classes_without_samples"] = "zero"
            log(
                f"importance: {len(skipped)} classes have no sample; more than {EMPTY_CLASS_PASSES_LIMIT}, "
                f"so their importance is left at zero (label the samples, or use --samples-per-class)"
            )
        if len(output_names) > 1:  # importance is the first head's (extract/multi_io.py)
            manifest["importance"]["output"] = output_names[0]
    manifest.update(
        add_inputs_and_outputs(
            writer, graph, samples, input_names, every_input, output_names, head_predictions, class_names
        )
    )
    writer.finish(manifest)
    out_path = plan.out_path
    log(
        f"wrote {out_path}: {len(graph)} layers, {len(epochs)} epochs, {len(samples.inputs)} samples, "
        f"{os.path.getsize(out_path) / 1e6:.2f} MB in {time.perf_counter() - plan.started:.1f} s"
    )
    return out_path


def default_bundle_path(source):
    """Where the bundle of ``source`` goes: ``FOLDER/<name>.bcnn.npz``, or ``<file stem>.bcnn.npz`` beside a file."""
    source = os.path.normpath(os.fspath(source))
    if os.path.basename(source) in (SAVED_MODEL_FILE, KERAS2_METADATA_FILE) and os.path.isfile(source):
        source = os.path.dirname(os.path.abspath(source))  # a SavedModel picked by its file: the model is the folder
    found_name = _source_name(source)
    folder = source if _is_run_folder(source) else os.path.dirname(os.path.abspath(source))
    return os.path.join(folder, found_name + FILE_SUFFIX)


def _is_reusable(out_path, sources, options):
    """True if ``out_path`` is newer than every source and was made with the same options."""
    if not _is_newer_than(out_path, sources):
        return False
    try:
        recorded = load_bundle(out_path).manifest.get("source", {}).get("extraction")
    except BlenderCNNError:
        return False
    return recorded == options


def _is_run_folder(source):
    """A folder of checkpoints, not a model that is a folder (a SavedModel), whose bundle goes beside it."""
    return os.path.isdir(source) and not is_keras2_saved_model(source) and saved_model_folder(source) is None


def _source_name(source):
    if _is_run_folder(source):
        run = read_run(source)
        return run["name"] if run else os.path.basename(os.path.normpath(source))
    return file_stem(os.path.basename(source)).removesuffix(".index")


def _is_newer_than(path, sources):
    if not os.path.isfile(path):
        return False
    return os.path.getmtime(path) > max(os.path.getmtime(source) for source in sources)
