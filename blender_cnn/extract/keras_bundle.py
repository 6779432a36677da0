"""Checkpoints of every epoch -> one network bundle (see docs/bundle-format.md).

This, training and the modules it imports are the only TensorFlow code.
Nothing in a loaded file is executed: architectures are checked for layers
that carry code before Keras reads them, and Keras' safe mode stays on,
unless the caller passes ``allow_unsafe=True`` for files they trust.

Extraction streams: one checkpoint is in memory at a time, and each epoch's
weights and activations (batch by batch of samples) go straight into the
bundle writer's temporary files, so memory stays bounded by one model and one
batch of layer outputs however many epochs and layers there are. The same
batches give the gradients behind each layer's importance (``gradients.py``).
"""

import dataclasses
import math
import os
import time

import numpy as np

from ..core.bundle import FILE_SUFFIX, BundleWriter, load_bundle
from ..core.errors import BlenderCNNError
from ..core.forward import as_probabilities
from ..core.importance import GRADIENT_X_ACTIVATION, labelled_classes
from ..core.layer_specs import is_known_layer_type
from .gradients import EMPTY_CLASS_PASSES_LIMIT, EpochImportance, empty_classes_computed, plan_gradients, run_samples
from .keras2 import KERAS2_METADATA_FILE, SAVED_MODEL_FILE, is_keras2_saved_model
from .keras_graph import PREDICTION_BATCH, describe_layer, flatten_model, named_weights, structure, weight_key
from .multi_io import add_inputs_and_outputs, samples_for_heads, samples_for_model
from .samples import (
    SAMPLES_FILE,
    Samples,
    image_samples,
    read_samples,
    run_dataset_samples,
    samples_per_class_of,
    synthetic_samples,
)
from .sources import FULL_MODEL, file_stem, find_source
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


def default_bundle_path(source):
    """Where the bundle of ``source`` goes: ``FOLDER/<name>.bcnn.npz``, or ``<file stem>.bcnn.npz`` beside a file."""
    source = os.path.normpath(os.fspath(source))
    if os.path.basename(source) in (SAVED_MODEL_FILE, KERAS2_METADATA_FILE) and os.path.isfile(source):
        source = os.path.dirname(os.path.abspath(source))  # a SavedModel picked by its file: the model is the folder
    found_name = _source_name(source)
    folder = source if _is_run_folder(source) else os.path.dirname(os.path.abspath(source))
    return os.path.join(folder, found_name + FILE_SUFFIX)


def extract_run(run_dir, out_path=None, log=print):
    """Write the bundle of a run folder (as ``scripts/train.py`` leaves it); see ``extract``."""
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise BlenderCNNError(run_dir, "no such run folder; train one with scripts/train.py")
    return extract(run_dir, out_path, log=log)


def extract(
    source,
    out_path=None,
    architecture=None,
    samples=None,
    allow_unsafe=False,
    log=print,
    images=None,
    samples_per_class=None,
    activations_dtype="float32",
    importance=True,
):
    """Write the bundle of the checkpoints at ``source`` (a file or a folder) and return its path.

    ``architecture``: the file the network's structure comes from when the
    checkpoints hold weights only (``.keras``, ``.h5``, ``model.to_json()``
    file or preset). ``samples``: a ``Samples`` or the path of an ``.npz`` with
    ``inputs`` and ``labels``; by default ``samples.npz`` beside the
    checkpoints, and with none of these, synthetic inputs
    (``samples.synthetic_samples``, recorded as ``samples.synthetic``).
    ``images``: PNG/JPEG files to use as the samples instead
    (unlabelled, resized and scaled as the run's preprocessing says, else to
    0..1). ``samples_per_class``: take that many samples of every class, from
    the run's dataset when run.json names one ``datasets.py`` knows, else from
    the samples file. ``activations_dtype``: ``"float16"`` halves the
    activations (bundle version 2). ``importance``: also store each layer's
    gradient x activation importance and the Dense layers' output gradients
    (bundle version 3, docs/importance.md). ``allow_unsafe``: load Lambda layers,
    which run code stored in the file. An ``out_path`` newer than every input
    file and made with the same options is reused as it is.
    """
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
        return out_path

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

    import keras

    epochs = [checkpoint.epoch for checkpoint in found.checkpoints]
    writer = BundleWriter(out_path)
    try:
        graph, predictions, unrecognized, head_predictions = None, None, [], {}
        model, plan, flat, slots, importance_slots, score = None, None, None, {}, None, None
        for position, checkpoint in enumerate(found.checkpoints):
            epoch_started = time.perf_counter()
            loaded = checkpoint.load(keras)
            if loaded is not model:  # weights-only epochs reuse one model; full models are new each time
                model = loaded
                if samples is None and images:
                    samples = image_samples(
                        images, _image_input_shape(model, checkpoint.path), found.run.get("preprocessing")
                    )
                elif samples is None:
                    samples = synthetic_samples(model.inputs[0].shape[1:], found.run.get("preprocessing"))
                    log(
                        f"samples: none given ({SAMPLES_HINT}); showing {len(samples.inputs)} synthetic inputs "
                        f"of shape {samples.inputs.shape[1:]}, {samples.synthetic}: "
                        + ", ".join(samples.preprocessing["samples"])
                    )
                samples, run_inputs, input_shapes = samples_for_model(
                    keras, model, samples, checkpoint.path, found.run.get("preprocessing")
                )
                flat = flatten_model(keras, model, input_shapes, checkpoint.path)
                samples = samples_for_heads(samples, flat.output_names)
                input_names, output_names = flat.input_names, flat.output_names
                described = [describe_layer(layer, flat.tensors, is_input=not layer.inputs) for layer in flat.layers]
                if graph is None:
                    graph, first_path = described, checkpoint.path
                    slots = _reserve_arrays(writer, graph, len(epochs), len(samples.inputs), activations_dtype)
                elif structure(described) != structure(graph):
                    raise BlenderCNNError(
                        checkpoint.path,
                        f"has a different layer structure than "
                        f"{os.path.basename(first_path)}; all checkpoints of a "
                        "run must be the same network",
                    )
                plan = (
                    plan_gradients(keras, flat, graph, len(samples.inputs), log if position == 0 else _silent)
                    if importance
                    else None
                )
                score = plan.score if plan is not None else None
                batch_size = _batch_size(graph, gradients=plan is not None)
                computed = [layer.name for layer in flat.layers[len(input_names) :]]  # in batch.outputs
                head_positions = {name: computed.index(name) for name in output_names}
            for layer in flat.layers[1:]:
                for weight_name, variable in named_weights(layer.layer):
                    slots[weight_key(layer.name, weight_name)].write(variable.numpy(), position)
            epoch_importance = EpochImportance(samples.labels, plan.class_count) if plan is not None else None
            for start, batch in run_samples(keras, flat, plan, run_inputs, samples.labels, batch_size):
                for described_layer, values in zip(graph[len(input_names) :], batch.outputs):
                    slots[described_layer["activations"]].write(values, position, first_sample=start)
                if plan is not None:
                    if importance_slots is None:
                        importance_slots = _reserve_importance(writer, graph, batch, len(epochs), len(samples.inputs))
                    epoch_importance.add(batch.importance)
                    for name, values in batch.output_gradients.items():
                        importance_slots[name, "output_gradients"].write(values, position, first_sample=start)
                for name, index in head_positions.items():  # every output head's own probabilities
                    probabilities = as_probabilities(batch.outputs[index])
                    if name not in head_predictions:
                        head_predictions[name] = np.zeros(
                            (len(epochs), len(samples.inputs), probabilities.shape[1]), np.float32
                        )
                    head_predictions[name][position, start : start + len(probabilities)] = probabilities
                del batch
            if plan is not None:
                for name, rows in epoch_importance.rows().items():
                    importance_slots[name, "importance"].write(rows, position)
            log(
                f"epoch {checkpoint.epoch}: {os.path.basename(checkpoint.path)} "
                f"({time.perf_counter() - epoch_started:.1f} s)"
            )
            if checkpoint.kind == FULL_MODEL:  # the next epoch is a new model; free this one's graph
                model = plan = flat = loaded = None
                keras.backend.clear_session()
        inputs = samples.inputs
        every_input = run_inputs if len(input_names) > 1 else [run_inputs]
        for layer, values in zip(graph, every_input):  # the input layers come first, in the model's order
            slots[layer["activations"]].write(values, 0, first_sample=0)
        predictions = head_predictions[output_names[0]]

        unrecognized = [layer["name"] for layer in graph[1:] if not is_known_layer_type(layer["type"])]
        if unrecognized:
            log(
                "shown by their activations only (layer types the add-on does not draw): "
                + ", ".join(f"{layer['name']} ({layer['type']})" for layer in graph if layer["name"] in unrecognized)
            )

        writer.add("samples/inputs", inputs)
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
            "dataset": samples.dataset or (None if images or synthetic else run.get("dataset")),
        }
        if samples.synthetic:
            samples_entry["synthetic"] = samples.synthetic
        if samples.source_index is not None:
            samples_entry["source_index"] = "samples/source_index"
        manifest = {
            "name": found.name,
            "description": preset.get("description", ""),
            "input_shape": list(inputs.shape[1:]),
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
                "keras_version": keras.__version__,
                "extraction": options,
            },
        }
        if importance_slots:
            manifest["importance"] = {"method": GRADIENT_X_ACTIVATION, "score": score}
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
    finally:
        writer.discard()
    log(
        f"wrote {out_path}: {len(graph)} layers, {len(epochs)} epochs, {len(inputs)} samples, "
        f"{os.path.getsize(out_path) / 1e6:.2f} MB in {time.perf_counter() - started:.1f} s"
    )
    return out_path


def _reserve_arrays(writer, graph, epoch_count, sample_count, activations_dtype):
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


def _reserve_importance(writer, graph, batch, epoch_count, sample_count):
    """Slots ``{(layer name, field): slot}`` for the importance arrays the first batch gave, noted in ``graph``."""
    slots = {}
    for layer in graph:
        name = layer["name"]
        if name in batch.importance:
            class_count, channels = batch.importance[name].shape
            layer["importance"] = f"importance/{name}"
            slots[name, "importance"] = writer.reserve(layer["importance"], (epoch_count, class_count + 1, channels))
        if name in batch.output_gradients:
            layer["output_gradients"] = f"output_gradients/{name}"
            slots[name, "output_gradients"] = writer.reserve(
                layer["output_gradients"], (epoch_count, sample_count, *batch.output_gradients[name].shape[1:])
            )
    return slots


def _batch_size(graph, gradients=False):
    """How many samples to run at once so that every layer's output of one batch fits ACTIVATION_BATCH_BYTES."""
    bytes_per_sample = 4 * sum(math.prod(layer["output_shape"]) for layer in graph)
    if gradients:
        bytes_per_sample *= GRADIENT_MEMORY_FACTOR
    return max(1, min(PREDICTION_BATCH, ACTIVATION_BATCH_BYTES // bytes_per_sample))


def _image_input_shape(model, path):
    shape = tuple(model.inputs[0].shape[1:])
    if any(size is None for size in shape):
        raise BlenderCNNError(
            path,
            f"takes inputs of any size {shape}; image files need a network with a fixed "
            "input size, or pass --samples with inputs already sized",
        )
    return tuple(int(size) for size in shape)


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


def _silent(*_args):
    pass
