"""A Keras model as a flat layer graph: every layer that computes something, nested models opened up.

A model used as a layer (a Sequential backbone inside a functional model, say)
is replaced by its own layers, named ``<model>/<layer>``. Keras 3 forbids
``/`` in layer names, so such a name can never clash with a real one, and it is
the same path Keras gives the layer's variables (``backbone/conv1/kernel``).

The graph is rebuilt by calling every layer once more on fresh symbolic
tensors, in the order the model runs them; the rebuilt graph shares the
model's layers and weights, so its outputs are the model's own. Each flat
layer keeps how it was called, so ``run_graph`` can run the graph eagerly,
layer by layer, where a gradient tape sees every layer's output.

Arithmetic on symbolic tensors in a model's code (``x + 3.0``, ``x * y``)
leaves keras.ops operations in its graph, which are not layers. They are
flat layers all the same: one that combines two tensors of one shape is what
the merge layer of its name computes and is recorded as that layer (``Add``);
any other is recorded as ``ops.<class>`` with the constants of its call.
"""

import inspect
import math
import numbers
from dataclasses import dataclass

from ..core.errors import BlenderCNNError
from ..core.layer_specs import NESTED_MODEL_SEPARATOR, OPERATION_TYPE_PREFIX

PREDICTION_BATCH = 256
# Config entries that describe how a layer was made or trained, not what it computes.
SKIPPED_CONFIG_KEYS = {
    "name",
    "trainable",
    "dtype",
    "autocast",
    "sparse",
    "ragged",
    "optional",
    "batch_shape",
    "batch_input_shape",
    "quantization_config",
}
SKIPPED_CONFIG_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
# keras.ops operations that compute what the merge layer of the same class name does, given two like tensors.
MERGING_OPERATIONS = frozenset({"Add", "Subtract", "Multiply", "Maximum", "Minimum"})


@dataclass
class FlatLayer:
    name: str  # unique in the graph; nested layers are "<model>/<layer>"
    layer: object  # the Keras layer
    inputs: list  # names of the flat layers it takes input from, in the order it takes them
    call: tuple = ((), {})  # (args, kwargs) of its call, each input tensor a Source
    operation: bool = False  # a keras.ops operation (no weights, no layer config), not a layer


@dataclass(frozen=True)
class Source:
    """Where ``FlatLayer.call`` takes the output of flat layer ``name``."""

    name: str
    position: int = 0  # its place in ``FlatLayer.inputs``


@dataclass
class FlatGraph:
    layers: list  # FlatLayer, the inputs first (in the model's order), each after the layers it takes input from
    model_input: object  # the symbolic input the graph was rebuilt from (the first, with several)
    tensors: dict  # flat layer name -> symbolic output
    output_name: str  # the flat layer whose output is the model's output (its first, with several)
    model_inputs: list = None  # every symbolic input, in the model's order
    output_names: list = None  # every output's flat layer, in the model's order

    @property
    def input_names(self):
        return [flat.name for flat in self.layers[: len(self.model_inputs)]]


def flatten_model(keras, model, input_shape, where):
    """The model's layer graph with nested models replaced by their layers, for samples of ``input_shape``.

    A model of several inputs takes a list of shapes, one per input in the
    order of ``model.inputs``; its input layers come first in the graph, in
    that order. Every output of the model is an output of the graph
    (``output_names``).
    """
    shapes = [tuple(input_shape)] if len(model.inputs) == 1 else [tuple(shape) for shape in input_shape]
    if len(shapes) != len(model.inputs):
        raise BlenderCNNError(where, f"has {len(model.inputs)} inputs; the samples give {len(shapes)}")
    graph = FlatGraph([], None, {}, "", [], [])
    producers = {}
    for tensor, shape in zip(model.inputs, shapes):
        declared = tuple(tensor.shape[1:])
        if len(declared) != len(shape) or any(size not in (None, got) for size, got in zip(declared, shape)):
            named = f"input {input_layer_name(keras, tensor)!r}" if len(shapes) > 1 else "inputs"
            raise BlenderCNNError(where, f"takes {named} of shape {declared}, the samples have shape {shape}")
        input_layer = _input_layer(keras, tensor, shape)
        model_input = keras.Input(shape=shape, name=input_layer.name)
        graph.layers.append(FlatLayer(input_layer.name, input_layer, []))
        graph.model_inputs.append(model_input)
        graph.tensors[input_layer.name] = model_input
        producers[id(model_input)] = input_layer.name
    graph.model_input = graph.model_inputs[0]

    def call_layer(prefix, layer, args, kwargs):
        if isinstance(layer, keras.Model):
            return run_model(prefix + layer.name + NESTED_MODEL_SEPARATOR, layer, args, kwargs)
        name = prefix + layer.name
        if name in graph.tensors:
            raise BlenderCNNError(where, f"layer {name!r} is used more than once; shared layers are not supported")
        sources = []

        def source_of(value):
            if not isinstance(value, keras.KerasTensor):
                return value
            if id(value) not in producers:
                raise BlenderCNNError(where, f"layer {name!r} takes an input no layer of the model produces")
            sources.append(producers[id(value)])
            return Source(producers[id(value)], len(sources) - 1)

        call = keras.tree.map_structure(source_of, (list(args), dict(kwargs)))
        outputs = layer(*args, **kwargs)
        if len(keras.tree.flatten(outputs)) != 1:
            raise BlenderCNNError(where, f"layer {name!r} has several outputs; only layers with one are supported")
        producers[id(outputs)] = name
        graph.tensors[name] = outputs
        graph.layers.append(FlatLayer(name, layer, sources, call, operation=not isinstance(layer, keras.layers.Layer)))
        return outputs

    def run_model(prefix, inner, args, kwargs):
        inputs = args[0] if args else kwargs.get("inputs")
        if isinstance(inner, keras.Sequential):
            tensor = inputs
            for layer in inner.layers:
                tensor = call_layer(prefix, layer, (tensor,), {})
            return tensor
        run_through_graph = getattr(inner, "_run_through_graph", None)
        if run_through_graph is None or not hasattr(inner, "_nodes_by_depth"):
            raise BlenderCNNError(
                where,
                f"model {prefix.rstrip(NESTED_MODEL_SEPARATOR) or inner.name!r} is a subclassed "
                "model; its layer graph lives in Python code, not in the file",
            )
        return run_through_graph(inputs, call_fn=lambda operation, *a, **k: call_layer(prefix, operation, a, k))

    model_inputs = graph.model_inputs if len(graph.model_inputs) > 1 else graph.model_input
    output = run_model("", model, (model_inputs,), {})
    graph.output_names = [producers.get(id(tensor), "") for tensor in keras.tree.flatten(output)]
    for name in graph.output_names:
        if name == "" or name in graph.input_names:
            raise BlenderCNNError(where, "the model's output is not the output of one of its layers")
    if len(set(graph.output_names)) != len(graph.output_names):
        raise BlenderCNNError(
            where, "gives the output of one layer as two of its outputs; each output must be a layer's own"
        )
    graph.output_name = graph.output_names[0]
    return graph


def _input_layer(keras, tensor, input_shape):
    """The InputLayer that made ``tensor``, or a stand-in named "input" (Sequential models hide theirs)."""
    return keras.layers.InputLayer(shape=input_shape, name=input_layer_name(keras, tensor))


def input_layer_name(keras, tensor):
    """The name of the InputLayer that made the model input ``tensor`` ("input" for a Sequential's hidden one)."""
    operation = getattr(getattr(tensor, "_keras_history", None), "operation", None)
    return operation.name if isinstance(operation, keras.layers.InputLayer) else "input"


def describe_layer(flat, tensors, is_input):
    """The manifest entry of one flat layer (docs/bundle-format.md, "Layer objects").

    ``tensors`` maps flat layer names to their symbolic outputs.
    """
    layer = flat.layer
    shape = list(tensors[flat.name].shape[1:])
    if any(size is None for size in shape):
        raise BlenderCNNError(f"layer {flat.name!r}", f"has an output shape with unknown sizes {shape}")
    if flat.operation:
        layer_type, config = _describe_operation(flat, tensors)
    else:
        layer_type, config = type(layer).__name__, json_safe_config(layer.get_config())
    return {
        "name": flat.name,
        "type": layer_type,
        "inputs": list(flat.inputs),
        "output_shape": [int(size) for size in shape],
        "config": config,
        "params": 0 if is_input or flat.operation else int(layer.count_params()),
        "weights": [
            {"name": name, "array": weight_key(flat.name, name), "shape": [int(n) for n in variable.shape]}
            for name, variable in named_weights(layer)
        ],
        "activations": f"activations/{flat.name}",
    }


def _describe_operation(flat, tensors):
    """``(type, config)`` of a keras.ops operation: the merge layer it amounts to, else ``ops.<class>``.

    The config of an ``ops.<class>`` holds its call as ``args`` and ``kwargs``,
    each input written ``{"input": i}`` (its place in the layer's inputs), so
    the constants it was called with (the 3 of ``x + 3``) are not lost. A call
    with constants JSON cannot hold has neither, and cannot be recomputed.
    """
    class_name = type(flat.layer).__name__
    args, kwargs = flat.call
    if (
        class_name in MERGING_OPERATIONS
        and len(args) == 2
        and not kwargs
        and all(isinstance(arg, Source) for arg in args)
        and len({tuple(tensors[arg.name].shape) for arg in args}) == 1
    ):
        return class_name, {}
    try:
        config = json_safe_config(flat.layer.get_config())
    except NotImplementedError:  # an operation Keras cannot describe; its call still says what it does
        config = {}
    call = _call_value({"args": list(args), "kwargs": dict(kwargs)})
    if call is not _UNSAFE:
        config.update(call)
    return OPERATION_TYPE_PREFIX + class_name, config


def weight_key(layer_name, weight_name):
    return f"weights/{layer_name}/{weight_name}"


def named_weights(layer):
    """``[(name, variable)]`` with names unique within the layer ("kernel", "bias", ...)."""
    named, seen = [], set()
    for variable in getattr(layer, "weights", ()):  # keras.ops operations hold none
        name = variable.name
        if name in seen:  # a layer holding sublayers repeats short names; their path tells them apart
            name = variable.path.removeprefix(layer.name + "/").replace("/", ".")
        seen.add(name)
        named.append((name, variable))
    return named


def structure(described):
    """What must be equal for two checkpoints to be epochs of the same network."""
    return [
        (
            layer["name"],
            layer["type"],
            layer["inputs"],
            layer["output_shape"],
            [(weight["name"], weight["shape"]) for weight in layer["weights"]],
        )
        for layer in described
    ]


def run_graph(keras, graph, inputs, call_layer=None):
    """``{flat layer name: output}`` for a batch of ``inputs``, running the layers eagerly, in inference mode.

    ``inputs``: one array, or for a graph of several inputs a list of them in the order of ``graph.model_inputs``.

    ``call_layer(flat, args, kwargs)``, if given, computes a layer in place of
    ``flat.layer(*args, **kwargs)``, so a caller can take a layer apart (its
    pre-activation, say) while the tape is watching.
    """
    inputs = inputs if len(graph.model_inputs) > 1 else [inputs]  # several inputs come as a list, in order
    outputs = {
        name: keras.ops.convert_to_tensor(values, dtype=tensor.dtype)
        for name, tensor, values in zip(graph.input_names, graph.model_inputs, inputs)
    }
    for flat in graph.layers[len(graph.model_inputs) :]:
        args, kwargs = keras.tree.map_structure(
            lambda value: outputs[value.name] if isinstance(value, Source) else value, flat.call
        )
        if "training" not in kwargs and _takes_training(flat.layer):
            kwargs["training"] = False
        outputs[flat.name] = call_layer(flat, args, kwargs) if call_layer is not None else flat.layer(*args, **kwargs)
    return outputs


def _takes_training(layer):
    try:
        return "training" in inspect.signature(layer.call).parameters
    except (TypeError, ValueError):  # a callable without a readable signature; Keras then infers inference mode
        return False


def json_safe_config(config):
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


def _call_value(value):
    """An argument of an operation's call as JSON: inputs as ``{"input": i}``, numbers (numpy's too) as numbers."""
    if isinstance(value, Source):
        return {"input": value.position}
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        value = int(value) if isinstance(value, numbers.Integral) else float(value)
    if isinstance(value, (list, tuple)):
        items = [_call_value(item) for item in value]
        return _UNSAFE if any(item is _UNSAFE for item in items) else items
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        items = {key: _call_value(item) for key, item in value.items()}
        return _UNSAFE if any(item is _UNSAFE for item in items.values()) else items
    return _json_value(value)
