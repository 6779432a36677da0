"""Checkpoints of every epoch -> one network bundle (see docs/bundle-format.md).

This and the training module are the only places that import TensorFlow.
Checkpoints are opened with ``safe_mode=True`` and without compiling, so a
``.keras`` file cannot make us run code it carries (Lambda layers, pickles).
"""

import json
import math
import os
import time

import numpy as np

from ..core.bundle import FILE_SUFFIX, write_bundle
from ..core.errors import BlenderCNNError
from .training import METRIC_NAMES, find_checkpoints, read_run

# Config entries that describe the computation, not how the layer was made or trained.
SKIPPED_CONFIG_KEYS = {"name", "trainable", "dtype", "autocast", "sparse", "ragged", "optional",
                       "batch_shape", "batch_input_shape", "quantization_config"}
SKIPPED_CONFIG_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
PREDICTION_BATCH = 256


def default_bundle_path(run_dir):
    """``RUN_DIR/<name>.bcnn.npz``, the name taken from run.json or else from the folder."""
    run_dir = os.fspath(run_dir)
    run = read_run(run_dir) if os.path.isdir(run_dir) else None
    name = run["name"] if run else os.path.basename(os.path.normpath(run_dir))
    return os.path.join(run_dir, name + FILE_SUFFIX)


def extract_run(run_dir, out_path=None, log=print):
    """Write the bundle of the run in ``run_dir`` to ``out_path`` and return its path.

    ``run_dir`` needs ``epoch_NNN.keras`` checkpoints and ``samples.npz``
    (arrays ``inputs`` (S, *input_shape) float32 and ``labels`` (S,) int);
    ``run.json`` and ``history.json`` add names, preprocessing and metrics.
    An ``out_path`` newer than every input file is reused as it is.
    """
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise BlenderCNNError(run_dir, "no such run folder; train one with scripts/train.py")
    out_path = os.fspath(out_path) if out_path is not None else default_bundle_path(run_dir)
    checkpoints = find_checkpoints(run_dir)
    if not checkpoints:
        raise BlenderCNNError(run_dir, "holds no checkpoints named epoch_NNN.keras; train with scripts/train.py")
    samples_path = os.path.join(run_dir, "samples.npz")
    sources = [path for _, path in checkpoints] + [samples_path] + [
        os.path.join(run_dir, name) for name in ("run.json", "history.json")
        if os.path.isfile(os.path.join(run_dir, name))]
    if _is_newer_than(out_path, sources):
        log(f"reusing {out_path}: it is newer than the checkpoints")
        return out_path

    started = time.perf_counter()
    run = read_run(run_dir) or {}
    inputs, labels, source_index = _read_samples(samples_path)
    history = _read_history(os.path.join(run_dir, "history.json"))

    import keras

    epochs = [epoch for epoch, _ in checkpoints]
    graph = None
    weights = {}        # array key -> list over epochs
    activations = {}    # array key -> list over epochs
    predictions = []
    for epoch, path in checkpoints:
        epoch_started = time.perf_counter()
        model = _load_checkpoint(keras, path)
        layers, tensors, model_input, output_layer_name = _layer_graph(keras, model, path)
        described = [_describe_layer(layer, layer_inputs, tensors[layer.name], is_input=position == 0)
                     for position, (layer, layer_inputs) in enumerate(layers)]
        if graph is None:
            graph = described
            first_path = path
            _check_samples(model_input, inputs, samples_path)
        elif _structure(described) != _structure(graph):
            raise BlenderCNNError(path, f"has a different layer structure than {os.path.basename(first_path)}; "
                                        "all checkpoints of a run must be the same network")
        for layer, _ in layers[1:]:
            for weight_name, variable in _named_weights(layer):
                key = f"weights/{layer.name}/{weight_name}"
                weights.setdefault(key, []).append(np.asarray(variable.numpy(), dtype=np.float32))
        outputs = _all_layer_outputs(keras, model_input, [tensors[layer.name] for layer, _ in layers[1:]], inputs)
        for (layer, _), values in zip(layers[1:], outputs):
            activations.setdefault(f"activations/{layer.name}", []).append(values)
        output_position = [layer.name for layer, _ in layers[1:]].index(output_layer_name)
        predictions.append(_as_probabilities(outputs[output_position]))
        log(f"epoch {epoch}: {os.path.basename(path)} ({time.perf_counter() - epoch_started:.1f} s)")
        del model
        keras.backend.clear_session()

    arrays = {
        "samples/inputs": inputs,
        "samples/labels": labels,
        "samples/predictions": np.stack(predictions).astype(np.float32),
        f"activations/{graph[0]['name']}": inputs[np.newaxis],
    }
    if source_index is not None:
        arrays["samples/source_index"] = source_index
    arrays.update({key: np.stack(values).astype(np.float32) for key, values in weights.items()})
    arrays.update({key: np.stack(values).astype(np.float32) for key, values in activations.items()})
    metrics = {}
    for metric in METRIC_NAMES:
        arrays[f"metrics/{metric}"] = np.asarray(
            [history.get(metric, {}).get(epoch, math.nan) for epoch in epochs], dtype=np.float32)
        metrics[metric] = f"metrics/{metric}"

    class_count = arrays["samples/predictions"].shape[-1]
    class_names = run.get("class_names") or [str(index) for index in range(class_count)]
    if len(class_names) != class_count:
        raise BlenderCNNError(os.path.join(run_dir, "run.json"),
                              f"lists {len(class_names)} class names but the network outputs {class_count} classes")
    preset = run.get("preset", {})
    samples = {"inputs": "samples/inputs", "labels": "samples/labels", "predictions": "samples/predictions",
               "preprocessing": run.get("preprocessing", {}), "dataset": run.get("dataset")}
    if source_index is not None:
        samples["source_index"] = "samples/source_index"
    manifest = {
        "name": run.get("name") or os.path.basename(os.path.normpath(run_dir)),
        "description": preset.get("description", ""),
        "input_shape": list(inputs.shape[1:]),
        "class_names": list(class_names),
        "epochs": epochs,
        "layers": graph,
        "samples": samples,
        "metrics": metrics,
        "source": {
            "checkpoints": [os.path.basename(path) for _, path in checkpoints],
            "training": preset.get("training", {}),
            "keras_version": keras.__version__,
        },
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    write_bundle(out_path, manifest, arrays)
    log(f"wrote {out_path}: {len(graph)} layers, {len(epochs)} epochs, {len(inputs)} samples, "
        f"{os.path.getsize(out_path) / 1e6:.2f} MB in {time.perf_counter() - started:.1f} s")
    return out_path


def _is_newer_than(path, sources):
    if not os.path.isfile(path):
        return False
    return os.path.getmtime(path) > max(os.path.getmtime(source) for source in sources)


def _read_samples(path):
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "is missing; it holds the inputs to record activations for")
    try:
        with np.load(path, allow_pickle=False) as archive:
            stored = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError) as error:
        raise BlenderCNNError(path, f"cannot be read as .npz without pickle ({error})") from None
    for key in ("inputs", "labels"):
        if key not in stored:
            raise BlenderCNNError(path, f"lacks the array {key!r}")
    inputs, labels = stored["inputs"], stored["labels"]
    if inputs.dtype.kind != "f" or labels.dtype.kind not in "iu" or labels.shape != inputs.shape[:1]:
        raise BlenderCNNError(path, f"needs float 'inputs' (S, ...) and integer 'labels' (S,), got "
                                    f"{inputs.dtype} {inputs.shape} and {labels.dtype} {labels.shape}")
    source_index = stored.get("source_index")
    if source_index is not None:
        source_index = np.ascontiguousarray(source_index, dtype=np.int32)
    return (np.ascontiguousarray(inputs, dtype=np.float32), np.ascontiguousarray(labels, dtype=np.int32),
            source_index)


def _read_history(path):
    """``{metric: {epoch: value}}`` from history.json; empty when there is none."""
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            stored = json.load(handle)
        epochs = stored["epochs"]
        return {metric: dict(zip(epochs, stored[metric])) for metric in METRIC_NAMES if metric in stored}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BlenderCNNError(path, f"is not a readable training history ({error})") from None


def _load_checkpoint(keras, path):
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as error:  # Keras raises many kinds; all mean "this file is not a model we can open".
        text = str(error).strip().splitlines()
        raise BlenderCNNError(path, f"cannot be opened as a Keras model ({text[0] if text else type(error).__name__})") \
            from None


def _layer_graph(keras, model, path):
    """The model as ``([(layer, [input layer names])], {layer name: output tensor}, input tensor, output layer name)``.

    Layers come in an order where each follows the layers it takes input from,
    the input layer first.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise BlenderCNNError(path, f"has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                                    "only networks with one input and one output are supported")
    if isinstance(model, keras.Sequential):
        return _sequential_graph(keras, model)
    model_input = model.inputs[0]
    input_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.InputLayer)]
    input_layer = input_layers[0] if input_layers else _input_layer(keras, model_input)
    tensors = {input_layer.name: model_input}
    producer = {id(model_input): input_layer.name}
    others = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    for layer in others:
        tensors[layer.name] = layer.output
        producer[id(layer.output)] = layer.name
    graph = [(input_layer, [])]
    for layer in others:
        sources = [producer.get(id(tensor)) for tensor in keras.tree.flatten(layer.input)]
        if None in sources:
            raise BlenderCNNError(path, f"layer {layer.name!r} takes an input that no layer of the model "
                                        "produces; layers used more than once are not supported")
        graph.append((layer, sources))
    output_layer_name = producer.get(id(model.outputs[0]))
    if output_layer_name is None or output_layer_name == input_layer.name:
        raise BlenderCNNError(path, "the model's output is not the output of one of its layers")
    return _topological(graph, path), tensors, model_input, output_layer_name


def _sequential_graph(keras, model):
    # A loaded Sequential model calls its layers several times while it builds, so a
    # layer's first output need not feed the next layer; call them once more, in order.
    model_input = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="input")
    input_layer = _input_layer(keras, model_input)
    graph, tensors, previous, tensor = [(input_layer, [])], {input_layer.name: model_input}, input_layer.name, model_input
    for layer in model.layers:
        tensor = layer(tensor)
        graph.append((layer, [previous]))
        tensors[layer.name] = tensor
        previous = layer.name
    return graph, tensors, model_input, previous


def _input_layer(keras, tensor):
    """The InputLayer that made ``tensor``, or a stand-in of its shape (Sequential models hide theirs)."""
    history = getattr(tensor, "_keras_history", None)
    operation = getattr(history, "operation", None)
    if isinstance(operation, keras.layers.InputLayer):
        return operation
    return keras.layers.InputLayer(shape=tuple(tensor.shape[1:]), name="input")


def _topological(graph, path):
    placed, ordered, pending = set(), [], list(graph)
    while pending:
        ready = [entry for entry in pending if all(source in placed for source in entry[1])]
        if not ready:
            raise BlenderCNNError(path, "the layer graph has a cycle")
        for entry in ready:
            ordered.append(entry)
            placed.add(entry[0].name)
        pending = [entry for entry in pending if entry[0].name not in placed]
    return ordered


def _describe_layer(layer, layer_inputs, output, is_input):
    shape = list(output.shape[1:])
    if any(size is None for size in shape):
        raise BlenderCNNError(f"layer {layer.name!r}", f"has an output shape with unknown sizes {shape}")
    return {
        "name": layer.name,
        "type": type(layer).__name__,
        "inputs": list(layer_inputs),
        "output_shape": [int(size) for size in shape],
        "config": _json_safe_config(layer.get_config()),
        "params": int(layer.count_params()) if not is_input else 0,
        "weights": [{"name": name, "array": f"weights/{layer.name}/{name}", "shape": [int(n) for n in variable.shape]}
                    for name, variable in _named_weights(layer)],
        "activations": f"activations/{layer.name}",
    }


def _named_weights(layer):
    """``[(name, variable)]`` with names unique within the layer ("kernel", "bias", ...)."""
    named, seen = [], set()
    for variable in layer.weights:
        name = variable.name
        if name in seen:  # nested layers repeat short names; their path tells them apart
            name = variable.path.removeprefix(layer.name + "/").replace("/", ".")
        seen.add(name)
        named.append((name, variable))
    return named


def _json_safe_config(config):
    safe = {}
    for key, value in config.items():
        if key in SKIPPED_CONFIG_KEYS or key.endswith(SKIPPED_CONFIG_SUFFIXES):
            continue
        if key == "activation" and isinstance(value, dict):  # a serialized activation object
            value = value.get("config", {}).get("name") or value.get("class_name")
        value = _json_value(value)
        if value is not _UNSAFE:
            safe[key] = value
    return safe


_UNSAFE = object()


def _json_value(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _UNSAFE
    if isinstance(value, (list, tuple)):
        items = [_json_value(item) for item in value]
        return _UNSAFE if any(item is _UNSAFE for item in items) else items
    return _UNSAFE  # dicts are initializers, regularizers, policies: how it was made, not what it computes


def _structure(graph):
    return [(layer["name"], layer["type"], layer["inputs"], layer["output_shape"],
             [(weight["name"], weight["shape"]) for weight in layer["weights"]]) for layer in graph]


def _check_samples(model_input, inputs, samples_path):
    expected = tuple(model_input.shape[1:])
    if tuple(inputs.shape[1:]) != expected:
        raise BlenderCNNError(samples_path, f"inputs have shape {tuple(inputs.shape[1:])} per sample, "
                                            f"the network takes {expected}")


def _all_layer_outputs(keras, model_input, layer_outputs, inputs):
    """Every layer's output for ``inputs`` in inference mode, batch by batch, as float32 numpy."""
    probe = keras.Model(model_input, layer_outputs)
    batches = []
    for start in range(0, len(inputs), PREDICTION_BATCH):
        result = probe(inputs[start:start + PREDICTION_BATCH], training=False)
        batches.append([np.asarray(values) for values in keras.tree.flatten(result)])
    return [np.ascontiguousarray(np.concatenate(parts), dtype=np.float32) for parts in zip(*batches)]


def _as_probabilities(outputs):
    """The network's class probabilities: its output if that is already a distribution, else its softmax."""
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if np.all(outputs >= 0) and np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3):
        return outputs.astype(np.float32)
    shifted = np.exp(outputs - outputs.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
