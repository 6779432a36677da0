"""Checkpoints of every epoch -> one network bundle (see docs/bundle-format.md).

``extract`` is the extractor's entry for every kind of source: it plans the
extraction (``bundle_writing``), hands an ONNX source to ``onnx_bundle`` and
runs Keras models here. This, training and the modules it imports are the
only TensorFlow code. Nothing in a loaded file is executed: architectures are
checked for layers that carry code before Keras reads them, and Keras' safe
mode stays on, unless the caller passes ``allow_unsafe=True`` for files they
trust.

Extraction streams: one checkpoint is in memory at a time, and each epoch's
weights and activations (batch by batch of samples) go straight into the
bundle writer's temporary files, so memory stays bounded by one model and one
batch of layer outputs however many epochs and layers there are. The same
batches give the gradients behind each layer's importance (``gradients.py``).
"""

import os
import time

from ..core.bundle import BundleWriter
from ..core.errors import BlenderCNNError
from .bundle_writing import (
    add_head_predictions,
    batch_size,
    default_bundle_path,
    finish_bundle,
    plan_extraction,
    reserve_arrays,
)
from .gradients import EpochImportance, plan_gradients, run_samples
from .keras_graph import describe_layer, flatten_model, named_weights, structure, weight_key
from .multi_io import samples_for_heads, samples_for_model
from .onnx_files import ONNX_KIND
from .sources import FULL_MODEL

__all__ = ["default_bundle_path", "extract", "extract_run"]


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
    plan = plan_extraction(
        source, out_path, architecture, samples, allow_unsafe, log, images, samples_per_class, activations_dtype,
        importance,
    )  # fmt: skip
    if plan is None:  # the bundle there is newer than the sources and made alike
        return os.fspath(out_path) if out_path is not None else default_bundle_path(source)
    writer = BundleWriter(plan.out_path)
    try:
        if plan.found.checkpoints[0].kind == ONNX_KIND:
            from .onnx_bundle import write_onnx_epochs

            return write_onnx_epochs(plan, writer, log)
        return _write_keras_epochs(plan, writer, log)
    finally:
        writer.discard()


def _write_keras_epochs(plan, writer, log):
    """Every checkpoint's weights and activations (and importance) into ``writer``, then the bundle's end."""
    import keras

    found, epochs = plan.found, plan.epochs
    graph, head_predictions, slots, importance_slots, score = None, {}, {}, None, None
    model, gradient_plan, flat = None, None, None
    for position, checkpoint in enumerate(found.checkpoints):
        epoch_started = time.perf_counter()
        loaded = checkpoint.load(keras)
        if loaded is not model:  # weights-only epochs reuse one model; full models are new each time
            model = loaded
            samples = plan.samples_for_input(tuple(model.inputs[0].shape[1:]), checkpoint.path, log)
            samples, run_inputs, input_shapes = samples_for_model(
                keras, model, samples, checkpoint.path, found.run.get("preprocessing")
            )
            flat = flatten_model(keras, model, input_shapes, checkpoint.path)
            samples = samples_for_heads(samples, flat.output_names)
            input_names, output_names = flat.input_names, flat.output_names
            described = [describe_layer(layer, flat.tensors, is_input=not layer.inputs) for layer in flat.layers]
            if graph is None:
                graph, first_path = described, checkpoint.path
                slots = reserve_arrays(writer, graph, len(epochs), len(samples.inputs), plan.activations_dtype)
            elif structure(described) != structure(graph):
                raise BlenderCNNError(
                    checkpoint.path,
                    f"has a different layer structure than "
                    f"{os.path.basename(first_path)}; all checkpoints of a "
                    "run must be the same network",
                )
            gradient_plan = (
                plan_gradients(keras, flat, graph, len(samples.inputs), log if position == 0 else _silent)
                if plan.importance
                else None
            )
            score = gradient_plan.score if gradient_plan is not None else None
            samples_per_batch = batch_size(graph, gradients=gradient_plan is not None)
            computed = [layer.name for layer in flat.layers[len(input_names) :]]  # in batch.outputs
            head_positions = {name: computed.index(name) for name in output_names}
        for layer in flat.layers[1:]:
            for weight_name, variable in named_weights(layer.layer):
                slots[weight_key(layer.name, weight_name)].write(variable.numpy(), position)
        epoch_importance = (
            EpochImportance(samples.labels, gradient_plan.class_count) if gradient_plan is not None else None
        )
        for start, batch in run_samples(keras, flat, gradient_plan, run_inputs, samples.labels, samples_per_batch):
            for described_layer, values in zip(graph[len(input_names) :], batch.outputs):
                slots[described_layer["activations"]].write(values, position, first_sample=start)
            if gradient_plan is not None:
                if importance_slots is None:
                    importance_slots = _reserve_importance(writer, graph, batch, len(epochs), len(samples.inputs))
                epoch_importance.add(batch.importance)
                for name, values in batch.output_gradients.items():
                    importance_slots[name, "output_gradients"].write(values, position, first_sample=start)
            for name, index in head_positions.items():  # every output head's own probabilities
                add_head_predictions(
                    head_predictions, name, batch.outputs[index], position, start, len(epochs), len(samples.inputs)
                )
            del batch
        if gradient_plan is not None:
            for name, rows in epoch_importance.rows().items():
                importance_slots[name, "importance"].write(rows, position)
        log(
            f"epoch {checkpoint.epoch}: {os.path.basename(checkpoint.path)} ({time.perf_counter() - epoch_started:.1f} s)"
        )
        if checkpoint.kind == FULL_MODEL:  # the next epoch is a new model; free this one's graph
            model = gradient_plan = flat = loaded = None
            keras.backend.clear_session()
    every_input = run_inputs if len(input_names) > 1 else [run_inputs]
    for layer, values in zip(graph, every_input):  # the input layers come first, in the model's order
        slots[layer["activations"]].write(values, 0, first_sample=0)
    return finish_bundle(
        writer,
        plan,
        graph,
        samples,
        input_names,
        every_input,
        output_names,
        head_predictions,
        {"keras_version": keras.__version__},
        log,
        importance_score=score if importance_slots else None,
    )


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


def _silent(*_args):
    pass
