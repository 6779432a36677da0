"""TensorFlow graphs without Keras layers, rebuilt as Keras 3 models: TF1 ``Saver`` checkpoints and graph-only SavedModels.

Two kinds of files hold a network as TensorFlow operations rather than Keras layers:

- a TF1 ``Saver`` checkpoint (``model.ckpt-N.index`` + ``.data-*`` + ``.meta``),
  written by a ``tf.compat.v1`` program: placeholders, ``tf.compat.v1.layers``
  or ``tf.nn.conv2d`` and variables, a ``Session`` and a ``Saver``. Its
  ``.meta`` file is the whole graph (training ops too), its variables are
  stored by name;
- a SavedModel without Keras layers: a Keras 3 ``model.export("dir")`` or a
  ``tf.Module`` saved with ``tf.saved_model.save``. Its ``saved_model.pb``
  holds graph functions; their variables are in ``variables/variables`` and
  found through the object graph.

Either graph is read as a protobuf, never imported into TensorFlow nor run
(running a SavedModel's functions would run whatever the file holds). Its
operations from the network's input to its output are translated into the
Keras layers that compute the same thing (``Conv2D`` + ``BiasAdd`` + ``Relu``
becomes one ``Conv2D`` layer with ``activation="relu"``), and every weight of
those layers is an expression of the stored variables (a bias may be reshaped
on its way to the addition, a ``MatMul`` kernel transposed), computed with
numpy for every epoch. So extraction after this (``keras_graph.flatten_model``,
gradients, the bundle) is the one path every other format takes, and the
bundle's activations are what TensorFlow computes for the graph. A graph that
uses an operation without such a layer is refused with the operation's name.

A TF1 checkpoint may also take its network from ``--architecture`` (a Keras
model, ``model.to_json()`` file or preset), whose weights are matched to the
checkpoint's variables by name, else by order and shape.
"""

import os
import re
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import BlenderCNNError, first_line
from .architecture import load_architecture
from .tf_checkpoints import INDEX_SUFFIX, OBJECT_GRAPH_KEY, variable_names

TF1_CHECKPOINT = "tf1"  # tf.compat.v1.train.Saver
SAVED_MODEL = "saved_model"  # a SavedModel folder of graph functions (Keras 3 export(), tf.Module)
META_SUFFIX = ".meta"
SAVED_MODEL_FILE = "saved_model.pb"
KERAS2_METADATA_FILE = "keras_metadata.pb"  # a Keras 2 SavedModel, read with its layers by keras2.py
VARIABLES_FILE = os.path.join("variables", "variables")
SHOWN_NAMES = 6
SAVE_KERAS_HINT = 'save the model with model.save("model.keras") and import that file'
TF1_HINT = (
    "pass the network as a Keras model, model.to_json() file or preset with --architecture FILE; its weights "
    "are matched to the checkpoint's variables by name, else by order and shape"
)

# Operations that hand a tensor on unchanged (in inference).
PASS_THROUGH = {
    "Identity",
    "IdentityN",
    "Snapshot",
    "StopGradient",
    "PreventGradient",
    "CheckNumerics",
    "EnsureShape",
    "Cast",
}
VARIABLE_OPS = {"VariableV2", "Variable", "VarHandleOp"}
CALL_OPS = {"StatefulPartitionedCall", "PartitionedCall"}
IF_OPS = {"If", "StatelessIf"}  # tf.cond in TF 2 graphs; TF 1 graphs have Switch and Merge
# Operations that read only a tensor's shape: what follows them is computed from sizes, not from values.
SHAPE_OPS = {"Shape", "ShapeN", "Size", "Rank"}
# A name scope of TF1 dropout (tf.nn.dropout, tf.compat.v1.layers.dropout): the identity in inference.
DROPOUT_SCOPE = re.compile(r"^dropout(_\d+)?$")
# Scopes of what minimize() adds to a TF1 graph; never part of the network.
TRAINING_SCOPE = re.compile(
    r"^(gradients|Adam|SGD|GradientDescent|Momentum|RMSProp|Adagrad|Adadelta|Ftrl|train)"
    r"(_\d+)?$"
)
FLOAT_TYPES = {1, 2, 14, 19}  # DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF
INPUT_TYPES = FLOAT_TYPES | {4}  # and DT_UINT8 images
ACTIVATIONS = {
    "Relu": "relu",
    "Relu6": "relu6",
    "Elu": "elu",
    "Selu": "selu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softplus": "softplus",
    "Softsign": "softsign",
    "Softmax": "softmax",
}
ADDS = {"Add", "AddV2", "BiasAdd"}
AFFINE_OPS = ADDS | {"Sub", "Mul", "RealDiv"}
MERGES = {
    "Add": "Add",
    "AddV2": "Add",
    "Sub": "Subtract",
    "Mul": "Multiply",
    "Maximum": "Maximum",
    "Minimum": "Minimum",
}
WEIGHTED_OPS = {"Conv2D", "DepthwiseConv2dNative", "MatMul", "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"}


# --- What the files are ------------------------------------------------------------------------------------


def is_saver_checkpoint(prefix):
    """True for a TF1 ``Saver`` checkpoint: variables stored by name, without the object graph of
    ``tf.train.Checkpoint``; its ``.meta`` beside it says so without opening it."""
    if os.path.isfile(prefix + META_SUFFIX):
        return True
    import tensorflow as tf

    try:
        return not tf.train.load_checkpoint(prefix).has_tensor(OBJECT_GRAPH_KEY)
    except Exception:  # a damaged index: the TensorFlow checkpoint path reports it
        return False


def saved_model_folder(path):
    """The folder of a SavedModel without Keras layers at ``path`` (the folder or its saved_model.pb), else None."""
    path = os.path.normpath(os.fspath(path))
    if os.path.basename(path) == SAVED_MODEL_FILE and os.path.isfile(path):
        path = os.path.dirname(path) or "."
    if (
        os.path.isdir(path)
        and os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))
        and not os.path.isfile(os.path.join(path, KERAS2_METADATA_FILE))
    ):
        return path
    return None


def meta_graph_of(prefixes):
    """The ``.meta`` file of the first checkpoint prefix that has one, or None."""
    return next((prefix + META_SUFFIX for prefix in prefixes if os.path.isfile(prefix + META_SUFFIX)), None)


def graph_loader(kind, architecture_path, allow_unsafe):
    """``load(keras, path)`` -> the Keras model with the weights of the checkpoint or SavedModel at ``path``.

    A TF1 checkpoint's network comes from ``architecture_path``: its ``.meta``
    graph, or a Keras architecture; it is built once and every epoch's
    variables go into it. Each SavedModel is its own graph.
    """
    built = {}

    if kind == SAVED_MODEL:

        @_one_line_errors("a SavedModel")
        def load_saved_model(keras, path):
            if architecture_path:
                saved = _SavedModel(path)
                return _WeightMatcher(
                    load_architecture(keras, architecture_path, allow_unsafe), saved.variable_list(), architecture_path
                ).assign(saved.reader, path)
            return translate_saved_model(keras, path)

        return load_saved_model

    @_one_line_errors("a TensorFlow 1 checkpoint")
    def load_saver_checkpoint(keras, prefix):
        reader = _open_checkpoint(prefix)
        if "weights" not in built:
            if architecture_path.lower().endswith(META_SUFFIX):
                built["weights"] = _translate_meta_graph(keras, architecture_path, reader, prefix)
            else:
                built["weights"] = _WeightMatcher(
                    load_architecture(keras, architecture_path, allow_unsafe),
                    _saver_variables(prefix, reader),
                    architecture_path,
                )
        return built["weights"].assign(reader, prefix)

    return load_saver_checkpoint


def _one_line_errors(what):
    """Whatever goes wrong reading a file becomes one error naming it, never a traceback."""

    def wrap(load):
        def guarded(keras, path):
            try:
                return load(keras, path)
            except BlenderCNNError:
                raise
            except Exception as error:  # protobuf, TensorFlow and Keras raise many kinds; all mean "cannot import"
                raise BlenderCNNError(path, f"cannot be imported as {what} ({first_line(error)})") from None

        return guarded

    return wrap


# --- Reading the files -------------------------------------------------------------------------------------


def _open_checkpoint(prefix):
    import tensorflow as tf

    try:
        return tf.train.load_checkpoint(prefix)
    except Exception as error:  # TensorFlow raises OpErrors and ValueErrors for damaged or missing files
        raise BlenderCNNError(prefix, f"cannot be read as a TensorFlow checkpoint ({first_line(error)})") from None


def _parse(message, path, what):
    try:
        with open(path, "rb") as handle:
            message.ParseFromString(handle.read())
    except Exception as error:  # OSError, protobuf's DecodeError
        raise BlenderCNNError(path, f"is not {what} ({first_line(error)})") from None
    return message


def _translate_meta_graph(keras, meta_path, reader, prefix):
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = _parse(meta_graph_pb2.MetaGraphDef(), meta_path, "a TensorFlow meta graph")
    graph = _Graph(meta_path, meta.graph_def.library)
    graph.add_graph_def(meta.graph_def)
    graph.finish()
    for node in graph.nodes.values():
        if node.op in VARIABLE_OPS:
            shared = node.attr["shared_name"].s.decode() if "shared_name" in node.attr else ""
            graph.variables.setdefault(node.name, _Variable(shared or node.name, shared or node.name))
    input_name, output = _find_input_and_output(graph)
    context = _Context(meta_path, "its graph", TF1_HINT)
    return _Translator(keras, graph, input_name, output, input_name, reader, prefix, context)


class _SavedModel:
    """A SavedModel's graph, signature and variables, read from its protobufs."""

    def __init__(self, path):
        from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2

        self.path = path
        saved = _parse(saved_model_pb2.SavedModel(), os.path.join(path, SAVED_MODEL_FILE), "a SavedModel")
        metas = [meta for meta in saved.meta_graphs if "serve" in meta.meta_info_def.tags] or list(saved.meta_graphs)
        if not metas:
            raise BlenderCNNError(path, "is a SavedModel without a graph")
        self.meta = metas[0]
        prefix = os.path.join(path, VARIABLES_FILE)
        self.reader = _open_checkpoint(prefix) if os.path.isfile(prefix + INDEX_SUFFIX) else None
        self.variables = {}  # saved object id -> _Variable
        objects = self.meta.object_graph_def
        if self.reader is not None and self.reader.has_tensor(OBJECT_GRAPH_KEY):
            stored = trackable_object_graph_pb2.TrackableObjectGraph()
            stored.ParseFromString(self.reader.get_tensor(OBJECT_GRAPH_KEY))
            for node_id, node in enumerate(objects.nodes):
                if node.WhichOneof("kind") != "variable" or node_id >= len(stored.nodes):
                    continue
                for attribute in stored.nodes[node_id].attributes:
                    if attribute.name == "VARIABLE_VALUE":
                        name = attribute.full_name or node.variable.name or attribute.checkpoint_key
                        self.variables[node_id] = _Variable(attribute.checkpoint_key, name)
        self.keras_export = (
            any(child.local_name == "_all_variables" for child in objects.nodes[0].children) if objects.nodes else False
        )

    def describe(self):
        if self.keras_export:
            return ("is a Keras 3 export() artifact: an inference graph without Keras layers", SAVE_KERAS_HINT)
        return (
            "is a SavedModel of TensorFlow operations without Keras layers (tf.saved_model.save of a tf.Module "
            "or a graph)",
            "build the network from Keras layers and " + SAVE_KERAS_HINT,
        )

    def variable_list(self):
        """``[(name, key, shape)]`` of the stored variables, in the order the object graph lists them."""
        listed, seen = [], set()
        shapes = self.reader.get_variable_to_shape_map() if self.reader is not None else {}
        for _, variable in sorted(self.variables.items()):
            if variable.key not in seen and variable.key in shapes:
                seen.add(variable.key)
                listed.append((variable.name, variable.key, tuple(shapes[variable.key])))
        return listed

    def signature(self):
        signatures = {key: value for key, value in self.meta.signature_def.items() if not key.startswith("__")}
        if not signatures:
            raise BlenderCNNError(self.path, "has no signature (no function to serve); " + self.describe()[1])
        key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
        signature = signatures[key]
        if len(signature.inputs) != 1 or len(signature.outputs) != 1:
            raise BlenderCNNError(
                self.path,
                f"serves {key!r} with {len(signature.inputs)} inputs and "
                f"{len(signature.outputs)} outputs; only networks with one input and "
                "one output are supported",
            )
        ((input_key, input_info),) = signature.inputs.items()
        ((_, output_info),) = signature.outputs.items()
        return input_key, input_info.name, output_info.name


def translate_saved_model(keras, path):
    """The Keras model computing what the SavedModel folder ``path`` serves, with its variables' values."""
    saved = _SavedModel(path)
    what, hint = saved.describe()
    input_key, input_tensor, output_tensor = saved.signature()
    graph = _Graph(path, saved.meta.graph_def.library)
    graph.saved_variables = saved.variables
    graph.bound_inputs = {
        name: list(function.bound_inputs) for name, function in saved.meta.object_graph_def.concrete_functions.items()
    }
    graph.add_graph_def(saved.meta.graph_def)
    graph.finish()
    for node in graph.nodes.values():  # TF1 SavedModels (simple_save) store variables by name
        if node.op in VARIABLE_OPS and saved.reader is not None and not saved.reader.has_tensor(OBJECT_GRAPH_KEY):
            shared = node.attr["shared_name"].s.decode() if "shared_name" in node.attr else ""
            graph.variables.setdefault(node.name, _Variable(shared or node.name, shared or node.name))
    input_name = graph.resolve(_tensor_ref(input_tensor))[0]
    context = _Context(path, "it", hint, what)
    translator = _Translator(
        keras, graph, input_name, _tensor_ref(output_tensor), input_key, saved.reader, path, context
    )
    return translator.assign(saved.reader, path)


def _tensor_ref(text):
    name, _, index = text.partition(":")
    return name, int(index) if index else 0


@dataclass(frozen=True)
class _Variable:
    key: str  # its key in the checkpoint
    name: str  # the name it was given


@dataclass
class _Node:
    name: str  # unique in the graph (inlined functions' nodes carry their call's name)
    label: str  # the name its program gave it, for naming layers
    op: str
    inputs: list  # [(node name, output index)]
    controls: list
    attr: object  # the NodeDef's attributes


class _Graph:
    """The nodes of a GraphDef, the functions it calls inlined (their outputs as aliases of the returned tensors)."""

    def __init__(self, where, library):
        self.where = where
        self.nodes = {}
        self.aliases = {}  # (node, output) -> (node, output)
        self.variables = {}  # node name -> _Variable
        self.functions = {function.signature.name: function for function in library.function}
        self.bound_inputs = {}  # function name -> saved object ids of its captured inputs (SavedModels)
        self.saved_variables = {}  # saved object id -> _Variable
        self._captured = []  # (ref, _Variable) of captured inputs, known once every node is in
        self._depth = 0

    def add_graph_def(self, graph_def):
        for node_def in graph_def.node:
            inputs, controls = [], []
            for text in node_def.input:
                if text.startswith("^"):
                    controls.append(text[1:])
                else:
                    inputs.append(_tensor_ref(text))
            self._add(node_def.name, node_def.name, node_def, inputs, controls)

    def finish(self):
        """Settle what needs every node: captured variables, and conditionals on a constant (a
        ``placeholder_with_default`` such as ``training=False``), replaced by the branch they take."""
        for ref, variable in self._captured:
            self.variables.setdefault(self.resolve(ref)[0], variable)
        for node in [node for node in self.nodes.values() if node.op in IF_OPS]:
            condition = self._constant(node.inputs[0]) if node.inputs else None
            branch = node.attr["then_branch" if condition else "else_branch"].func.name
            if condition is None or branch not in self.functions:
                continue
            del self.nodes[node.name]
            outputs = self._inline(branch, node.name + "/", node.inputs[1:], node.label + "/")
            for index, ref in enumerate(outputs):
                self.aliases[(node.name, index)] = ref
        self._settle_switches()

    def _settle_switches(self):
        """TF 1 conditionals: a ``Switch`` on a constant passes its data to one output, the other one is dead, and so
        is every operation that takes a dead tensor; a ``Merge`` gives its one live input."""
        switches = {}
        for node in self.nodes.values():
            if node.op in ("Switch", "RefSwitch") and len(node.inputs) == 2:
                condition = self._constant(node.inputs[1])
                if condition is not None:
                    switches[node.name] = int(bool(condition))
        if not switches:
            return
        consumers, control_consumers = {}, {}
        for node in self.nodes.values():
            for ref in node.inputs:
                consumers.setdefault(self.resolve(ref), []).append(node.name)
            for control in node.controls:
                control_consumers.setdefault(control, []).append(node.name)
        dead_refs = {(name, 1 - taken) for name, taken in switches.items()}
        dead, queue = set(), [consumer for ref in dead_refs for consumer in consumers.get(ref, ())]
        while queue:
            name = queue.pop()
            node = self.nodes[name]
            if name in dead:
                continue
            if node.op in ("Merge", "RefMerge") and any(
                self.resolve(ref) not in dead_refs and self.resolve(ref)[0] not in dead for ref in node.inputs
            ):
                continue
            dead.add(name)
            queue += [consumer for index in range(8) for consumer in consumers.get((name, index), ())]
            queue += control_consumers.get(name, [])
        for name in dead:
            del self.nodes[name]
        for name, taken in switches.items():
            if name in self.nodes:
                self.aliases[(name, taken)] = self.nodes[name].inputs[0]
        for node in list(self.nodes.values()):
            if node.op in ("Merge", "RefMerge") and node.name not in dead:
                live = [
                    ref
                    for ref in node.inputs
                    if self.resolve(ref) not in dead_refs and self.resolve(ref)[0] not in dead
                ]
                if len(live) == 1:
                    self.aliases[(node.name, 0)] = live[0]

    def _constant(self, ref):
        """The value of a condition that is a constant, through identities and ``placeholder_with_default``; else None."""
        import tensorflow as tf

        for _ in range(100):
            ref = self.resolve(ref)
            node = self.nodes.get(ref[0])
            if node is None:
                return None
            if node.op == "Const":
                value = tf.make_ndarray(node.attr["value"].tensor)
                return bool(value) if value.size == 1 else None
            if node.op not in ("Identity", "PlaceholderWithDefault", "Snapshot") or not node.inputs:
                return None
            ref = node.inputs[0]
        return None

    def resolve(self, ref):
        for _ in range(10000):
            if ref not in self.aliases:
                return ref
            ref = self.aliases[ref]
        raise BlenderCNNError(self.where, f"has a cycle of function calls at {ref[0]!r}")

    def node(self, name):
        node = self.nodes.get(name)
        if node is None:
            raise BlenderCNNError(self.where, f"refers to an operation {name!r} it does not hold")
        return node

    def _add(self, name, label, node_def, inputs, controls):
        callee = node_def.attr["f"].func.name if node_def.op in CALL_OPS else node_def.op
        if callee in self.functions:
            for index, ref in enumerate(self._inline(callee, name + "/", inputs)):
                self.aliases[(name, index)] = ref
            return
        self.nodes[name] = _Node(name, label, node_def.op, inputs, controls, node_def.attr)

    def _inline(self, function_name, prefix, arguments, label_prefix=""):
        function = self.functions[function_name]
        self._depth += 1
        if self._depth > 64:
            raise BlenderCNNError(self.where, f"calls functions more than 64 deep ({function_name})")
        arguments_def = function.signature.input_arg
        bound = self.bound_inputs.get(function_name, [])
        for position, node_id in zip(range(len(arguments_def) - len(bound), len(arguments_def)), bound):
            if node_id in self.saved_variables and position < len(arguments):
                self._captured.append((arguments[position], self.saved_variables[node_id]))
        for argument, ref in zip(arguments_def, arguments):
            self.aliases[(prefix + argument.name, 0)] = ref
        offsets = {node_def.name: self._output_offsets(node_def) for node_def in function.node_def}

        def function_ref(text):
            parts = text.split(":")
            if len(parts) == 1:
                return prefix + parts[0], 0
            node_name, output, index = parts[0], parts[1], int(parts[2]) if len(parts) > 2 else 0
            return prefix + node_name, offsets.get(node_name, {}).get(output, 0) + index

        for node_def in function.node_def:
            inputs, controls = [], []
            for text in node_def.input:
                if text.startswith("^"):
                    controls.append(prefix + text[1:])
                else:
                    inputs.append(function_ref(text))
            self._add(prefix + node_def.name, label_prefix + node_def.name, node_def, inputs, controls)
        self._depth -= 1
        return [function_ref(function.ret[argument.name]) for argument in function.signature.output_arg]

    def _output_offsets(self, node_def):
        """``{output argument name: index of its first tensor}`` of a function's node (FunctionDefs name outputs)."""
        from tensorflow.python.framework import op_def_registry

        callee = node_def.attr["f"].func.name if node_def.op in CALL_OPS else node_def.op
        if callee in self.functions and node_def.op not in CALL_OPS:
            return {argument.name: index for index, argument in enumerate(self.functions[callee].signature.output_arg)}
        op_def = op_def_registry.get(node_def.op)
        if op_def is None:
            return {}
        offsets, position = {}, 0
        for argument in op_def.output_arg:
            offsets[argument.name] = position
            if argument.number_attr:
                position += node_def.attr[argument.number_attr].i
            elif argument.type_list_attr:
                position += len(node_def.attr[argument.type_list_attr].list.type)
            else:
                position += 1
        return offsets

    def consumers(self):
        """``{node name: [names of the nodes that take one of its outputs]}`` (data inputs only)."""
        found = {}
        for node in self.nodes.values():
            for ref in node.inputs:
                found.setdefault(self.resolve(ref)[0], []).append(node.name)
        return found


# --- Finding a TF1 graph's network -------------------------------------------------------------------------


def _find_input_and_output(graph):
    """The placeholder the network takes and the tensor it gives, in a training graph that has no signature.

    The input is the placeholder whose values reach a convolution or matrix
    product; the output is the last operation computed from it that gives a
    batch of numbers (the softmax after the logits, not the loss, which also
    takes the labels, nor an argmax or a summary). Whether every operation on
    the way has a layer is the translation's to say.
    """
    found = []
    consumers = graph.consumers()
    for node in graph.nodes.values():
        shape = node.attr["shape"].shape
        if (
            node.op == "Placeholder"
            and node.attr["dtype"].type in INPUT_TYPES
            and not shape.unknown_rank
            and len(shape.dim) >= 2
        ):  # a batch of something: not a keep_prob, a learning rate, a flag
            region, depth = _forward_region(graph, node.name, consumers)
            if any(graph.nodes[name].op in WEIGHTED_OPS for name in region):
                found.append((node.name, region, depth))
    if not found:
        raise BlenderCNNError(
            graph.where, "has no placeholder whose values reach a convolution or matrix product; " + TF1_HINT
        )
    if len(found) > 1:
        raise BlenderCNNError(
            graph.where,
            f"has several placeholders feeding the network "
            f"({', '.join(name for name, _, _ in found)}); only networks with one "
            "input are supported",
        )
    input_name, region, depth = found[0]
    translation = _Flow(graph, input_name, consumers)
    numbers = {name for name in region if name == input_name or _gives_numbers(graph.nodes[name])}
    sinks = [
        name
        for name in numbers
        if name != input_name
        and name not in translation.collapsed
        and not any(consumer in numbers for consumer in consumers.get(name, ()))
    ]
    if not sinks:
        raise BlenderCNNError(graph.where, f"computes nothing from the placeholder {input_name!r}; " + TF1_HINT)
    deepest = max(depth[name] for name in sinks)
    last = sorted({translation.source((name, 0)) for name in sinks if depth[name] == deepest})
    if len(last) > 1:
        raise BlenderCNNError(
            graph.where,
            f"has several outputs ({', '.join(name for name, _ in last)}); only networks with one output are supported",
        )
    return input_name, last[0]


def _gives_numbers(node):
    """True when an operation's first output is floats, and not one number (a loss, a mean of everything)."""
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(node.op)
    if op_def is not None:
        if not op_def.output_arg:
            return False
        argument = op_def.output_arg[0]
        if argument.type:
            dtype = argument.type
        elif argument.type_attr:
            dtype = node.attr[argument.type_attr].type
        elif argument.type_list_attr and node.attr[argument.type_list_attr].list.type:
            dtype = node.attr[argument.type_list_attr].list.type[0]
        else:
            dtype = 1
        if dtype not in FLOAT_TYPES:
            return False
    shapes = node.attr["_output_shapes"].list.shape if "_output_shapes" in node.attr else ()
    return not (shapes and not shapes[0].unknown_rank and len(shapes[0].dim) == 0)


def _forward_region(graph, input_name, consumers):
    """The operations the input reaches that take nothing else fed at run time but flags (``keep_prob``,
    ``training``), outside the training ops, and each one's depth (longest path) from the input."""
    flow = _Flow(graph, input_name, consumers)
    region, depth = {input_name}, {input_name: 0}
    queue = deque([input_name])
    while queue:
        name = queue.popleft()
        for consumer_name in consumers.get(name, ()):
            consumer = graph.nodes[consumer_name]
            if any(TRAINING_SCOPE.match(part) for part in consumer.label.split("/")[:-1] or [""]):
                continue
            takes_only_known = all(
                graph.resolve(ref)[0] in region or flow.is_static(ref) or flow.is_sized(ref) or flow.is_flagged(ref)
                for ref in consumer.inputs
            )
            if consumer_name in flow.collapsed or takes_only_known:
                if depth.get(consumer_name, -1) < depth[name] + 1:
                    depth[consumer_name] = depth[name] + 1
                    region.add(consumer_name)
                    queue.append(consumer_name)
    return region, depth


class _Flow:
    """Which tensors depend on the network's input, which are constants, and what a tensor really is
    (through identities and dropout)."""

    def __init__(self, graph, input_name, consumers):
        self.graph = graph
        self.dynamic = _reached(graph, [input_name], consumers, stop=SHAPE_OPS)
        shapes = [
            name
            for name in {consumer for name in self.dynamic for consumer in consumers.get(name, ())}
            if graph.nodes[name].op in SHAPE_OPS
        ]
        self.sized = _reached(graph, shapes, consumers) - self.dynamic  # computed from the input's sizes only
        fed, flags = [], []
        for node in graph.nodes.values():
            if node.name == input_name:
                continue
            if node.op == "Placeholder":
                shape = node.attr["shape"].shape
                (flags if not shape.unknown_rank and not shape.dim else fed).append(node.name)
            elif node.op.startswith(("Random", "TruncatedNormal")):
                fed.append(node.name)
        self.fed = _reached(graph, fed, consumers)  # depends on data fed (labels) or drawn at run time
        self.flagged = _reached(graph, flags, consumers)  # depends on one number fed: keep_prob, training
        self.collapsed = {}  # node name -> the tensor a dropout scope passes on
        scopes = {}
        for name in self.dynamic:
            parts = graph.nodes[name].label.split("/")
            for position, part in enumerate(parts[:-1]):
                if DROPOUT_SCOPE.match(part):
                    scope = name[: len(name) - len("/".join(parts[position + 1 :]))]
                    scopes.setdefault(scope, []).append(name)
                    break
        for scope, members in scopes.items():
            outside = {
                graph.resolve(ref)
                for member in members
                for ref in graph.nodes[member].inputs
                if not graph.resolve(ref)[0].startswith(scope) and graph.resolve(ref)[0] in self.dynamic
            }
            if len(outside) == 1:
                self.collapsed.update({member: next(iter(outside)) for member in members})

    def is_static(self, ref):
        name = self.graph.resolve(ref)[0]
        return name not in self.dynamic and name not in self.fed and name not in self.sized and name not in self.flagged

    def is_sized(self, ref):
        return self.graph.resolve(ref)[0] in self.sized

    def is_flagged(self, ref):
        name = self.graph.resolve(ref)[0]
        return name in self.flagged and name not in self.fed

    def source(self, ref):
        """The tensor ``ref`` is, past identities, casts and dropout."""
        for _ in range(100000):
            ref = self.graph.resolve(ref)
            name, index = ref
            if name in self.collapsed:
                ref = self.collapsed[name]
                continue
            node = self.graph.nodes.get(name)
            if node is None or node.op not in PASS_THROUGH or not node.inputs:
                return ref
            ref = node.inputs[index if node.op == "IdentityN" else 0]
        raise BlenderCNNError(self.graph.where, f"has a cycle of identities at {ref[0]!r}")


def _reached(graph, starts, consumers, stop=()):
    reached, queue = set(starts), list(starts)
    while queue:
        for consumer in consumers.get(queue.pop(), ()):
            if consumer not in reached and graph.nodes[consumer].op not in stop:
                reached.add(consumer)
                queue.append(consumer)
    return reached


# --- Constants and variables -------------------------------------------------------------------------------


class _Values:
    """The value of a tensor that depends on no input: constants and variables of one checkpoint, through the
    arithmetic that reshapes, transposes or combines them, computed with numpy."""

    UNARY = {
        "Neg": np.negative,
        "Rsqrt": lambda x: 1 / np.sqrt(x),
        "Sqrt": np.sqrt,
        "Square": np.square,
        "Reciprocal": lambda x: 1 / x,
        "Exp": np.exp,
        "Log": np.log,
        "Abs": np.abs,
    }
    BINARY = {
        "Add": np.add,
        "AddV2": np.add,
        "BiasAdd": np.add,
        "Sub": np.subtract,
        "Mul": np.multiply,
        "RealDiv": np.divide,
        "Maximum": np.maximum,
        "Minimum": np.minimum,
    }

    def __init__(self, graph, reader, where):
        self.graph, self.reader, self.where = graph, reader, where
        self.cache = {}

    def __call__(self, ref):
        ref = self.graph.resolve(ref)
        if ref not in self.cache:
            try:
                self.cache[ref] = self._compute(ref)
            except BlenderCNNError:
                raise
            except Exception as error:  # numpy's or TensorFlow's: a constant that does not compute, a damaged file
                raise BlenderCNNError(
                    self.where, f"cannot compute the graph's constant {ref[0]!r} ({first_line(error)})"
                ) from None
        return self.cache[ref]

    def _compute(self, ref):
        import tensorflow as tf

        name, index = ref
        variable = self.graph.variables.get(name)
        if variable is not None:
            return np.asarray(self.reader.get_tensor(variable.key))
        node = self.graph.node(name)
        op = node.op

        def argument(position):
            return self(node.inputs[position])

        if op == "Const":
            return tf.make_ndarray(node.attr["value"].tensor)
        if op in PASS_THROUGH or op in ("ReadVariableOp", "PlaceholderWithDefault"):
            value = argument(index if op == "IdentityN" else 0)
            return value.astype(tf.dtypes.as_dtype(node.attr["DstT"].type).as_numpy_dtype) if op == "Cast" else value
        if op in self.UNARY:
            return self.UNARY[op](argument(0))
        if op in self.BINARY:
            return self.BINARY[op](argument(0), argument(1))
        if op == "Reshape":
            return np.reshape(argument(0), argument(1))
        if op == "Transpose":
            return np.transpose(argument(0), argument(1))
        if op == "ExpandDims":
            return np.expand_dims(argument(0), int(argument(1)))
        if op == "Squeeze":
            axes = tuple(node.attr["squeeze_dims"].list.i)
            return np.squeeze(argument(0), axis=axes or None)
        if op == "Pack":
            return np.stack([self(ref) for ref in node.inputs], axis=node.attr["axis"].i)
        if op == "ConcatV2":
            return np.concatenate([self(ref) for ref in node.inputs[:-1]], axis=int(self(node.inputs[-1])))
        if op == "Fill":
            return np.full(argument(0), argument(1))
        if op == "Shape":
            return np.asarray(argument(0).shape, dtype=np.int32)
        raise BlenderCNNError(
            self.where, f"computes a constant with the operation {node.label!r} ({op}), which the import cannot compute"
        )

    def variables_of(self, ref):
        """The variables a constant tensor is computed from."""
        found, seen, stack = [], set(), [self.graph.resolve(ref)[0]]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in self.graph.variables:
                found.append(self.graph.variables[name])
            elif name in self.graph.nodes:
                stack.extend(self.graph.resolve(input_ref)[0] for input_ref in self.graph.nodes[name].inputs)
        return found


# --- Translating the graph into Keras layers ---------------------------------------------------------------


@dataclass
class _Context:
    where: str  # the file the graph is in
    it: str  # how a message refers to the graph
    hint: str  # what to do when the graph cannot be translated
    what: str = ""  # what the file is, said when it cannot be translated


@dataclass
class _Plan:
    """One Keras layer: its class and arguments, the tensors it takes and the one it equals, its weights."""

    kind: str
    arguments: dict
    inputs: list  # source refs
    output: tuple  # the source ref whose value it computes
    node: _Node  # the operation it is named after
    weights: list = field(default_factory=list)  # [values -> array], in the Keras layer's weight order
    variables: list = field(default_factory=list)  # names of the variables its weights come from


class _Translator:
    """The Keras model equal to a graph from ``input_name`` to ``output``, and its weights for each checkpoint."""

    def __init__(self, keras, graph, input_name, output, shown_input_name, reader, reader_path, context):
        self.keras, self.graph, self.context = keras, graph, context
        consumers = graph.consumers()
        self.flow = _Flow(graph, input_name, consumers)
        self.values = _Values(graph, reader, context.where)
        self.input_name = input_name
        self.output = self.flow.source(output)
        if self.output[0] == input_name or self.output[0] not in self.flow.dynamic:
            raise BlenderCNNError(
                context.where,
                f"{context.what + ', and ' if context.what else ''}"
                f"{context.it} does not compute its output from its input",
            )
        self.order = self._needed_order()
        self.readers = {}  # source ref -> the needed operations that take it, once per input
        for name in self.order:
            if name != input_name:
                for ref in self._dynamic_inputs(self.graph.nodes[name]):
                    self.readers.setdefault(ref, []).append(name)
        self.plans, self.tensors, self.absorbed = [], {}, set()
        self._check_variables(
            reader,
            reader_path,
            {
                variable
                for name in self.order
                for ref in self.graph.nodes[name].inputs
                if self.flow.is_static(ref)
                for variable in self.values.variables_of(ref)
            },
        )
        self._translate()
        self.model = self._build(shown_input_name)

    # -- the operations from the input to the output, each after those it takes
    def _dynamic_inputs(self, node):
        return [self.flow.source(ref) for ref in node.inputs if self.flow.source(ref)[0] in self.flow.dynamic]

    def _needed_order(self):
        order, visited, stack = [], set(), [(self.output[0], False)]
        while stack:
            name, done = stack.pop()
            if done:
                order.append(name)
                continue
            if name in visited:
                continue
            visited.add(name)
            stack.append((name, True))
            if name != self.input_name:
                stack.extend((ref[0], False) for ref in self._dynamic_inputs(self.graph.node(name)))
        return order

    def _only_consumer(self, ref):
        """The one needed operation that takes ``ref``, if nothing else (nor the output) does."""
        readers = self.readers.get(ref, ())
        if len(readers) != 1 or ref == self.output:
            return None
        return self.graph.nodes[readers[0]]

    def _unsupported(self, node, reason=""):
        what = f"{self.context.what}, and " if self.context.what else ""
        if not reason and node.op in (*IF_OPS, "Switch", "Merge", "RefSwitch", "RefMerge"):
            reason = (
                "a tf.cond on a value fed at run time, such as a training flag; give it a default with "
                "tf.compat.v1.placeholder_with_default(False, []) and save again"
            )
        reason = f" ({reason})" if reason else ""
        return BlenderCNNError(
            self.context.where,
            f"{what}{self.context.it} uses the operation {node.label!r} "
            f"({node.op}){reason}, which no Keras layer computes here; "
            f"{self.context.hint}",
        )

    # -- the translation
    def _translate(self):
        shape = self._input_shape(self.graph.node(self.input_name))
        self.tensors[(self.input_name, 0)] = self.keras.Input(shape=shape)
        self.input_shape = shape
        for name in self.order:
            if name == self.input_name or name in self.absorbed:
                continue
            node = self.graph.node(name)
            handler = _HANDLERS.get(node.op)
            if handler is None:
                raise self._unsupported(node)
            try:
                handler(self, node)
            except BlenderCNNError:
                raise
            except Exception as error:  # an operation with attributes or inputs it should not have
                raise self._unsupported(node, first_line(error)) from None

    def _input_shape(self, node):
        if node.op != "Placeholder":
            raise self._unsupported(node, "the input is not a placeholder")
        shape = node.attr["shape"].shape
        if shape.unknown_rank or len(shape.dim) < 2:
            raise BlenderCNNError(
                self.context.where,
                f"its input {node.label!r} has no known shape; only inputs of a known rank are supported",
            )
        return tuple(None if dim.size < 0 else int(dim.size) for dim in shape.dim[1:])

    def _tensor(self, ref):
        return self.tensors[ref]

    def _static(self, node, position):
        """The source of input ``position`` if it is a constant (or variable), else None."""
        ref = self.flow.source(node.inputs[position])
        return ref if self.flow.is_static(ref) else None

    def _add(self, kind, arguments, inputs, output, node, weights=(), static_refs=()):
        variables = []
        for ref in static_refs:
            variables += [variable.name for variable in self.values.variables_of(ref) if variable.name not in variables]
        plan = _Plan(kind, arguments, list(inputs), output, node, list(weights), variables)
        layer = self._make(plan, f"bcnn_translating_{len(self.plans)}")
        self.tensors[output] = self._call(plan, layer, [self.tensors[ref] for ref in inputs])
        self.plans.append(plan)

    def _make(self, plan, name):
        try:
            return getattr(self.keras.layers, plan.kind)(**plan.arguments, name=name)
        except Exception as error:  # Keras refuses the arguments (a stride and a dilation, say)
            raise self._unsupported(plan.node, f"as a {plan.kind} layer: {first_line(error)}") from None

    def _call(self, plan, layer, inputs):
        try:
            return layer(inputs if len(inputs) > 1 else inputs[0])
        except Exception as error:  # shapes Keras cannot combine the way the graph does
            raise self._unsupported(plan.node, f"as a {plan.kind} layer: {first_line(error)}") from None

    def _absorb(self, node):
        self.absorbed.add(node.name)
        return (node.name, 0)

    def _bias_after(self, ref, channels):
        """``(bias weight, ref)``: a vector added right after a convolution or product, and the sum it gives."""
        consumer = self._only_consumer(ref)
        if consumer is None or consumer.op not in ADDS or len(consumer.inputs) != 2:
            return None, None, ref
        sources = [self.flow.source(input_ref) for input_ref in consumer.inputs]
        if sources.count(ref) != 1:
            return None, None, ref
        other = consumer.inputs[1 - sources.index(ref)]
        other = self.flow.source(other)
        if not self.flow.is_static(other):
            return None, None, ref
        value = self.values(other)
        if value.size != channels or value.ndim < 1 or value.shape[-1] != channels:
            return None, None, ref
        return (lambda values: values(other).reshape(-1)), other, self._absorb(consumer)

    def _activation_after(self, ref):
        consumer = self._only_consumer(ref)
        if consumer is not None and consumer.op in ACTIVATIONS:
            return ACTIVATIONS[consumer.op], self._absorb(consumer)
        if consumer is not None and consumer.op == "LeakyRelu" and np.isclose(consumer.attr["alpha"].f, 0.2):
            return "leaky_relu", self._absorb(consumer)
        return None, ref

    def _check_nhwc(self, node):
        if "data_format" in node.attr and node.attr["data_format"].s not in (b"", b"NHWC"):
            raise self._unsupported(
                node, f"data format {node.attr['data_format'].s.decode()}; only NHWC (channels last) is supported"
            )

    def convolution(self, node):
        self._check_nhwc(node)
        kernel = self._static(node, 1)
        if kernel is None:
            raise self._unsupported(node, "its filter is computed from the input")
        padding = node.attr["padding"].s.decode().lower()
        if padding not in ("same", "valid"):
            raise self._unsupported(node, f"{padding} padding")
        x = self.flow.source(node.inputs[0])
        value = self.values(kernel)
        strides = list(node.attr["strides"].list.i) or [1, 1, 1, 1]
        dilations = list(node.attr["dilations"].list.i) or [1, 1, 1, 1]
        depthwise = node.op == "DepthwiseConv2dNative"
        channels = value.shape[2] * value.shape[3] if depthwise else value.shape[3]
        bias_weight, bias_ref, ref = self._bias_after((node.name, 0), channels)
        activation, ref = self._activation_after(ref)
        arguments = {
            "kernel_size": tuple(value.shape[:2]),
            "strides": tuple(strides[1:3]),
            "padding": padding,
            "dilation_rate": tuple(dilations[1:3]),
            "use_bias": bias_weight is not None,
            "activation": activation,
        }
        if depthwise:
            arguments["depth_multiplier"] = int(value.shape[3])
            kind = "DepthwiseConv2D"
        else:
            in_channels = self._tensor(x).shape[-1]
            groups = in_channels // value.shape[2] if in_channels and value.shape[2] else 1
            arguments.update(filters=int(value.shape[3]), groups=int(groups))
            kind = "Conv2D"
        weights = [lambda values: values(kernel)] + ([bias_weight] if bias_weight else [])
        self._add(kind, arguments, [x], ref, node, weights, [kernel] + ([bias_ref] if bias_ref else []))

    def matmul(self, node):
        kernel = self._static(node, 1)
        if kernel is None or node.attr["transpose_a"].b or self._static(node, 0) is not None:
            raise self._unsupported(node, "only a computed matrix times a constant one is a Dense layer")
        x = self.flow.source(node.inputs[0])
        if len(self._tensor(x).shape) != 2:
            raise self._unsupported(node, "its input is not a batch of vectors")
        transpose = node.attr["transpose_b"].b
        value = self.values(kernel)
        units = value.shape[0] if transpose else value.shape[1]
        bias_weight, bias_ref, ref = self._bias_after((node.name, 0), units)
        activation, ref = self._activation_after(ref)
        weights = [(lambda values: values(kernel).T) if transpose else (lambda values: values(kernel))]
        weights += [bias_weight] if bias_weight else []
        self._add(
            "Dense",
            {"units": int(units), "use_bias": bias_weight is not None, "activation": activation},
            [x],
            ref,
            node,
            weights,
            [kernel] + ([bias_ref] if bias_ref else []),
        )

    def fused_batch_norm(self, node):
        self._check_nhwc(node)
        if node.attr["is_training"].b:
            raise self._unsupported(node, "it normalizes with the statistics of each batch (is_training=True)")
        refs = [self._static(node, position) for position in range(1, 5)]
        if any(ref is None for ref in refs):
            raise self._unsupported(node, "its statistics are computed from the input")
        gamma, beta, mean, variance = refs
        weights = [lambda values, ref=ref: values(ref).reshape(-1) for ref in refs]
        self._add(
            "BatchNormalization",
            {"epsilon": float(node.attr["epsilon"].f)},
            [self.flow.source(node.inputs[0])],
            (node.name, 0),
            node,
            weights,
            refs,
        )

    def activation(self, node):
        x = [self.flow.source(node.inputs[0])]
        if node.op == "Relu6":
            self._add("ReLU", {"max_value": 6.0}, x, (node.name, 0), node)
        elif node.op == "Softmax":
            self._add("Softmax", {"axis": -1}, x, (node.name, 0), node)
        elif node.op == "LeakyRelu":
            self._add("LeakyReLU", {"negative_slope": float(node.attr["alpha"].f)}, x, (node.name, 0), node)
        else:
            self._add("Activation", {"activation": ACTIVATIONS[node.op]}, x, (node.name, 0), node)

    def pooling(self, node):
        self._check_nhwc(node)
        if node.op == "MaxPoolV2":
            size, strides = [self._static(node, position) for position in (1, 2)]
            if size is None or strides is None:
                raise self._unsupported(node, "its window is computed from the input")
            size, strides = list(self.values(size)), list(self.values(strides))
        else:
            size, strides = list(node.attr["ksize"].list.i), list(node.attr["strides"].list.i)
        if len(size) != 4 or size[0] != 1 or size[3] != 1 or strides[0] != 1 or strides[3] != 1:
            raise self._unsupported(node, "it pools across the batch or the channels")
        kind = "MaxPooling2D" if node.op.startswith("MaxPool") else "AveragePooling2D"
        self._add(
            kind,
            {
                "pool_size": (int(size[1]), int(size[2])),
                "strides": (int(strides[1]), int(strides[2])),
                "padding": node.attr["padding"].s.decode().lower(),
            },
            [self.flow.source(node.inputs[0])],
            (node.name, 0),
            node,
        )

    def reduction(self, node):
        x = self.flow.source(node.inputs[0])
        axes = self._static(node, 1)
        rank = len(self._tensor(x).shape)
        if axes is None or rank != 4:
            raise self._unsupported(node, "only a mean or maximum over height and width is a global pooling")
        if sorted(int(axis) % rank for axis in np.ravel(self.values(axes))) != [1, 2]:
            raise self._unsupported(node, "only a mean or maximum over height and width is a global pooling")
        kind = "GlobalAveragePooling2D" if node.op == "Mean" else "GlobalMaxPooling2D"
        self._add(kind, {"keepdims": bool(node.attr["keep_dims"].b)}, [x], (node.name, 0), node)

    def reshape(self, node):
        x = self.flow.source(node.inputs[0])
        in_shape = self._tensor(x).shape
        if node.op == "Squeeze":
            axes = {axis % len(in_shape) for axis in node.attr["squeeze_dims"].list.i} or {
                axis for axis, size in enumerate(in_shape) if size == 1
            }
            target = [size for axis, size in enumerate(in_shape) if axis not in axes and axis > 0]
        elif node.op == "ExpandDims":
            axis = self._static(node, 1)
            if axis is None:
                raise self._unsupported(node, "its axis is computed from the input")
            target = list(in_shape[1:])
            position = int(self.values(axis)) % (len(in_shape) + 1)
            if position == 0:
                raise self._unsupported(node, "it adds a batch axis")
            target.insert(position - 1, 1)
        else:
            target = self._reshape_target(node)
        if any(size is None for size in target):
            raise self._unsupported(node, f"its shape {target} is not known")
        flat_size = -1 if None in in_shape[1:] else int(np.prod(in_shape[1:]))
        if len(target) == 1 and len(in_shape) > 2 and target[0] in (-1, flat_size):
            self._add("Flatten", {}, [x], (node.name, 0), node)
        else:
            self._add("Reshape", {"target_shape": tuple(int(size) for size in target)}, [x], (node.name, 0), node)

    def _reshape_target(self, node):
        """The shape of each sample a Reshape gives: its shape input without the batch size."""
        shape = self._static(node, 1)
        if shape is not None:
            return [int(size) for size in np.ravel(self.values(shape))[1:]]
        shape_node = self.graph.node(self.flow.source(node.inputs[1])[0])
        if shape_node.op == "Pack":  # (batch size taken from the input, constants...), as Keras' Flatten writes it
            rest = [self._static(shape_node, position) for position in range(1, len(shape_node.inputs))]
            if all(ref is not None for ref in rest):
                return [int(self.values(ref)) for ref in rest]
        if shape_node.op == "ConcatV2" and len(shape_node.inputs) == 3 and self._static(shape_node, 1) is not None:
            return [int(size) for size in np.ravel(self.values(self._static(shape_node, 1)))]
        raise self._unsupported(node, "its shape is computed in a way the import does not follow")

    def padding(self, node):
        pads = self._static(node, 1)
        x = self.flow.source(node.inputs[0])
        if pads is None or len(self._tensor(x).shape) != 4:
            raise self._unsupported(node, "only constant padding of height and width is a ZeroPadding2D layer")
        value = np.asarray(self.values(pads)).reshape(-1, 2)
        if node.op == "PadV2":
            constant = self._static(node, 2)
            if constant is None or float(self.values(constant)) != 0.0:
                raise self._unsupported(node, "it pads with a value other than zero")
        if value[0].any() or value[3].any():
            raise self._unsupported(node, "it pads the batch or the channels")
        self._add(
            "ZeroPadding2D",
            {"padding": (tuple(int(n) for n in value[1]), tuple(int(n) for n in value[2]))},
            [x],
            (node.name, 0),
            node,
        )

    def concatenation(self, node):
        count = node.attr["N"].i if "N" in node.attr else len(node.inputs) - 1
        inputs = [self.flow.source(ref) for ref in node.inputs[:count]]
        axis = self._static(node, count)
        if axis is None or any(self.flow.source(ref)[0] not in self.flow.dynamic for ref in node.inputs[:count]):
            raise self._unsupported(node, "only a concatenation of computed tensors along a constant axis is a layer")
        self._add("Concatenate", {"axis": int(self.values(axis))}, inputs, (node.name, 0), node)

    def elementwise(self, node):
        """A merge of computed tensors (Add, Multiply...) or arithmetic with a constant (a scale, a shift)."""
        dynamic = [
            position
            for position in range(len(node.inputs))
            if self.flow.source(node.inputs[position])[0] in self.flow.dynamic
        ]
        if len(dynamic) == len(node.inputs) and (node.op in MERGES or node.op == "AddN"):
            inputs = [self.flow.source(ref) for ref in node.inputs]
            shapes = {tuple(self._tensor(ref).shape[1:]) for ref in inputs}
            if len(shapes) != 1:
                raise self._unsupported(node, "it broadcasts tensors of different shapes")
            self._add(MERGES.get(node.op, "Add"), {}, inputs, (node.name, 0), node)
            return
        if (
            len(dynamic) != 1
            or node.op not in AFFINE_OPS
            or len(node.inputs) != 2
            or not self.flow.is_static(node.inputs[1 - dynamic[0]])
        ):
            raise self._unsupported(node)
        self._affine(node, dynamic[0])

    def _affine(self, node, position):
        """``x * a + b`` with constant ``a``, ``b``: a BatchNormalization (tf.nn.batch_normalization, Keras 3's
        inference batch norm), a Rescaling (constant numbers), or per-channel scale and shift."""
        x = self.flow.source(node.inputs[position])
        steps, ref, current = [], (node.name, 0), node
        while True:
            dynamic_first = self.flow.source(current.inputs[0]) == (x if not steps else steps[-1][3])
            constant = self.flow.source(current.inputs[1 if dynamic_first else 0])
            if current.op == "RealDiv" and not dynamic_first:
                raise self._unsupported(current, "a constant divided by a computed tensor")
            steps.append((current.op, constant, dynamic_first, (current.name, 0)))
            ref = (current.name, 0)
            following = self._only_consumer(ref)
            if (
                following is None
                or following.op not in AFFINE_OPS
                or len(following.inputs) != 2
                or [self.flow.source(r) for r in following.inputs].count(ref) != 1
                or not self.flow.is_static([r for r in following.inputs if self.flow.source(r) != ref][0])
            ):
                break
            if following.op == "RealDiv" and self.flow.source(following.inputs[0]) != ref:
                break
            self._absorb(following)
            current = following
        channels = self._tensor(x).shape[-1]
        constants = [constant for _, constant, _, _ in steps]
        matched = self._batch_normalization(steps)
        if matched is not None and all(self.values(part).size in (1, channels) for part in matched[1] if part):
            epsilon, parts = matched
            present = [part for part in parts if part is not None]
            arguments = {"epsilon": epsilon, "scale": parts[0] is not None, "center": parts[1] is not None}
            self._add(
                "BatchNormalization",
                arguments,
                [x],
                ref,
                node,
                [
                    lambda values, part=part: np.broadcast_to(values(part).reshape(-1), (channels,)).copy()
                    for part in present
                ],
                present,
            )
            return

        def scale_and_offset(values):
            scale, offset = np.float32(1), np.float32(0)
            for op, constant, dynamic_first, _ in steps:
                value = values(constant)
                if op == "Mul":
                    scale, offset = scale * value, offset * value
                elif op in ADDS:
                    offset = offset + value
                elif op == "Sub":
                    scale, offset = (scale, offset - value) if dynamic_first else (-scale, value - offset)
                else:  # RealDiv, x / value
                    scale, offset = scale / value, offset / value
            return np.asarray(scale, np.float32), np.asarray(offset, np.float32)

        scale, offset = scale_and_offset(self.values)
        if scale.size == 1 and offset.size == 1 and not any(self.values.variables_of(ref) for ref in constants):
            self._add(
                "Rescaling", {"scale": float(scale.reshape(())), "offset": float(offset.reshape(()))}, [x], ref, node
            )
            return
        for value in (scale, offset):
            if value.size != 1 and (value.size != channels or value.shape[-1] != channels):
                raise self._unsupported(node, "its constant varies along more than the channels")
        # Per channel: a batch normalization with mean 0, variance 1, epsilon 0 computes x * scale + offset.
        self._add(
            "BatchNormalization",
            {"epsilon": 0.0},
            [x],
            ref,
            node,
            [
                lambda values: np.broadcast_to(scale_and_offset(values)[0].reshape(-1), (channels,)).copy(),
                lambda values: np.broadcast_to(scale_and_offset(values)[1].reshape(-1), (channels,)).copy(),
                lambda values: np.zeros(channels, np.float32),
                lambda values: np.ones(channels, np.float32),
            ],
            constants,
        )

    def _batch_normalization(self, steps):
        """``(epsilon, [gamma, beta, mean, variance])`` if ``x * a + b`` is tf.nn.batch_normalization's
        ``x * (rsqrt(variance + epsilon) [* gamma]) + (beta - mean * that)``, else None."""
        if [op for op, *_ in steps] not in (["Mul", "AddV2"], ["Mul", "Add"]) or not all(s[2] for s in steps):
            return None
        factor, shift = steps[0][1], steps[1][1]
        node = self.graph.nodes.get(factor[0])
        gamma = None
        if node is not None and node.op == "Mul":
            operands = [self.flow.source(ref) for ref in node.inputs]
            roots = [ref for ref in operands if self.graph.nodes.get(ref[0]) and self.graph.nodes[ref[0]].op == "Rsqrt"]
            if not roots:
                return None
            root = self.graph.nodes[roots[0][0]]
            gamma = [ref for ref in operands if ref != roots[0]][0]
        elif node is not None and node.op == "Rsqrt":
            root = node
        else:
            return None
        total = self.graph.nodes.get(self.flow.source(root.inputs[0])[0])
        if total is None or total.op not in ("Add", "AddV2"):
            return None
        terms = [self.flow.source(ref) for ref in total.inputs]
        small = [ref for ref in terms if not self.values.variables_of(ref) and self.values(ref).size == 1]
        if len(small) != 1:
            return None
        variance = [ref for ref in terms if ref != small[0]][0]
        subtraction = self.graph.nodes.get(shift[0])
        if subtraction is None or subtraction.op != "Sub":
            return None
        beta = self.flow.source(subtraction.inputs[0])
        product = self.graph.nodes.get(self.flow.source(subtraction.inputs[1])[0])
        if product is None or product.op != "Mul":
            return None
        operands = [self.flow.source(ref) for ref in product.inputs]
        if factor not in operands:
            return None
        mean = [ref for ref in operands if ref != factor][0]
        return float(self.values(small[0]).reshape(())), [gamma, beta, mean, variance]

    # -- the Keras model
    def _build(self, input_name):
        names = _layer_names(self.plans, input_name)
        keras = self.keras
        model_input = keras.Input(shape=self.input_shape, name=input_name)
        tensors = {(self.input_name, 0): model_input}
        self.layers = []
        for plan, name in zip(self.plans, names):
            layer = self._make(plan, name)
            tensors[plan.output] = self._call(plan, layer, [tensors[ref] for ref in plan.inputs])
            self.layers.append((plan, layer))
        self.tensors = None
        return keras.Model(model_input, tensors[self.output], name=_keras_name(input_name) + "_graph")

    def _check_variables(self, reader, where, variables):
        missing = sorted(
            {variable.name for variable in variables if reader is None or not reader.has_tensor(variable.key)}
        )
        if missing:
            raise BlenderCNNError(
                where, f"does not fit {os.path.basename(self.context.where)}: it lacks the variables {_shown(missing)}"
            )

    def assign(self, reader, where):
        """Put the weights of the checkpoint ``reader`` (read from ``where``) into the model; return the model."""
        values = _Values(self.graph, reader, where)
        needed = {name for plan, _ in self.layers for name in plan.variables}
        self._check_variables(
            reader, where, [variable for variable in self.graph.variables.values() if variable.name in needed]
        )
        for plan, layer in self.layers:
            for variable, weight in zip(layer.weights, plan.weights):
                try:
                    value = np.asarray(weight(values), dtype=np.float32)
                except ValueError as error:  # a variable of another shape than the graph's first checkpoint had
                    raise BlenderCNNError(
                        where,
                        f"does not fit {os.path.basename(self.context.where)}: the weights "
                        f"of {', '.join(plan.variables)} do not ({first_line(error)})",
                    ) from None
                if tuple(value.shape) != tuple(variable.shape):
                    raise BlenderCNNError(
                        where,
                        f"does not fit {os.path.basename(self.context.where)}: the weight "
                        f"{variable.name} of {', '.join(plan.variables) or plan.node.label} "
                        f"has shape {tuple(value.shape)}, the graph's "
                        f"{tuple(variable.shape)}",
                    )
                variable.assign(value)
        return self.model


_HANDLERS = {
    "Conv2D": _Translator.convolution,
    "DepthwiseConv2dNative": _Translator.convolution,
    "MatMul": _Translator.matmul,
    "FusedBatchNorm": _Translator.fused_batch_norm,
    "FusedBatchNormV2": _Translator.fused_batch_norm,
    "FusedBatchNormV3": _Translator.fused_batch_norm,
    **{op: _Translator.activation for op in (*ACTIVATIONS, "LeakyRelu")},
    "MaxPool": _Translator.pooling,
    "MaxPoolV2": _Translator.pooling,
    "AvgPool": _Translator.pooling,
    "Mean": _Translator.reduction,
    "Max": _Translator.reduction,
    "Reshape": _Translator.reshape,
    "Squeeze": _Translator.reshape,
    "ExpandDims": _Translator.reshape,
    "Pad": _Translator.padding,
    "PadV2": _Translator.padding,
    "ConcatV2": _Translator.concatenation,
    **{op: _Translator.elementwise for op in (*AFFINE_OPS, *MERGES, "AddN")},
}


# --- Layer names -------------------------------------------------------------------------------------------


def _layer_names(plans, input_name):
    """A Keras name for each plan: the name scope of its operation, up to that of its variables (``conv1`` for
    ``conv1/Conv2D`` and ``conv1/kernel``), the variables' scope for an operation at the top, else the operation's
    name (``MaxPool``); without the scope all share (a model's), unique, ``/`` written ``_``."""
    suffix = _scope_suffix(plans)
    paths = []
    for plan in plans:
        op_scope, _, base = plan.node.label.rpartition("/")
        ops = (
            [part.removesuffix(suffix) if suffix and part != suffix else part for part in op_scope.split("/")]
            if op_scope
            else []
        )
        variables = _common_scope(plan.variables).split("/") if _common_scope(plan.variables) else []
        match = _match_scope(ops, variables) if variables else None
        if match is not None and match[1] == "":
            parts = ops[: match[0] + len(variables)]
        else:
            parts = ops or variables or [base]
        paths.append((parts, base))
    while paths and all(len(parts) > 1 for parts, _ in paths) and len({parts[0] for parts, _ in paths}) == 1:
        paths = [(parts[1:], base) for parts, base in paths]
    names = [_keras_name("_".join(parts)) for parts, _ in paths]
    taken, unique = {_keras_name(input_name)}, []
    repeated = {name for name in names if names.count(name) > 1}
    for name, (_, base) in zip(names, paths):
        candidate = name
        if candidate in taken and name in repeated:
            candidate = f"{name}_{_keras_name(base)}"
        number = 2
        while candidate in taken:
            candidate, number = f"{name}_{number}", number + 1
        taken.add(candidate)
        unique.append(candidate)
    return unique


def _scope_suffix(plans):
    """The suffix (``_1``) a traced function added to every scope of its layers (``seq_1/conv_1`` for the
    variables ``seq/conv/kernel``), found from the layers with variables; None if there is no one such suffix."""
    suffixes = set()
    for plan in plans:
        op_scope = plan.node.label.rpartition("/")[0]
        variable_scope = _common_scope(plan.variables)
        if op_scope and variable_scope:
            match = _match_scope(op_scope.split("/"), variable_scope.split("/"))
            suffixes.add(match[1] if match else None)
    return suffixes.pop() if len(suffixes) == 1 and None not in suffixes else None


def _match_scope(ops, variables):
    """``(position, suffix)`` where the parts of a variable scope appear in an operation's scope, each with the same
    suffix (``""`` or ``_1``), or None."""
    for position in range(len(ops) - len(variables) + 1):
        suffixes = {
            op[len(variable) :] if op.startswith(variable) else None for op, variable in zip(ops[position:], variables)
        }
        if len(suffixes) == 1:
            found = suffixes.pop()
            if found == "" or (found is not None and re.fullmatch(r"_\d+", found)):
                return position, found
    return None


def _common_scope(names):
    scopes = [name.split("/")[:-1] for name in names]
    if not scopes:
        return ""
    common = []
    for parts in zip(*scopes):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common)


def _keras_name(name):
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "layer"


def _shown(names):
    names = list(names)
    more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
    return ", ".join(names[:SHOWN_NAMES]) + more


# --- Weights of a Keras architecture from a checkpoint's variables -----------------------------------------


def _saver_variables(prefix, reader):
    """``[(name, key, shape)]`` of a Saver checkpoint's model variables, in the order the program made them
    (the ``.meta`` graph's list of variables), without optimizer slots and counters."""
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    names = _meta_variable_order(prefix + META_SUFFIX) if os.path.isfile(prefix + META_SUFFIX) else []
    names = [name for name in names if name in shapes] or sorted(shapes, key=_natural_key)
    names = [name for name in names if dtypes[name].is_floating and len(shapes[name]) > 0]
    model_names = [name for name in names if not any(name.startswith(other + "/") for other in names)]
    return [(name, name, tuple(shapes[name])) for name in model_names]


def _meta_variable_order(meta_path):
    from tensorflow.core.framework import variable_pb2
    from tensorflow.core.protobuf import meta_graph_pb2

    meta = _parse(meta_graph_pb2.MetaGraphDef(), meta_path, "a TensorFlow meta graph")
    names = []
    for collection in ("variables", "trainable_variables", "model_variables"):
        if collection in meta.collection_def:
            for text in meta.collection_def[collection].bytes_list.value:
                variable = variable_pb2.VariableDef()
                variable.ParseFromString(text)
                name = variable.variable_name.rpartition(":")[0] or variable.variable_name
                if name not in names:
                    names.append(name)
    return names


def _natural_key(name):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class _WeightMatcher:
    """Puts a checkpoint's variables into a Keras model's weights: matched by name, else by order and shape."""

    def __init__(self, model, stored, architecture_path):
        self.model = model
        self.architecture = os.path.basename(os.fspath(architecture_path))
        names = variable_names(model)
        self.weights = [
            (names.get(id(variable), variable.path), variable)
            for variable in model.weights
            if variable.dtype.startswith("float")
        ]
        self.stored = stored
        self.pairs = None

    def _match(self, where):
        by_name = _strip_common_scope([name for name, _, _ in self.stored])
        keras_names = _strip_common_scope([name for name, _ in self.weights])
        stored = dict(zip(by_name, self.stored))
        if all(name in stored for name in keras_names):
            pairs = [(variable, stored[name]) for name, (_, variable) in zip(keras_names, self.weights)]
            wrong = [(variable, entry) for variable, entry in pairs if tuple(variable.shape) != entry[2]]
            if not wrong:
                return pairs
            variable, entry = wrong[0]
            raise BlenderCNNError(
                where,
                f"does not fit {self.architecture}: variable {entry[0]} has shape "
                f"{entry[2]} in the checkpoint but {tuple(variable.shape)} in the network",
            )
        shapes_fit = len(self.stored) == len(self.weights) and all(
            tuple(variable.shape) == entry[2] for (_, variable), entry in zip(self.weights, self.stored)
        )
        if shapes_fit:
            return [(variable, entry) for (_, variable), entry in zip(self.weights, self.stored)]
        if any(name in stored for name in keras_names):  # the names say how they were meant to match
            missing = [
                name for name, keras_name in zip([n for n, _ in self.weights], keras_names) if keras_name not in stored
            ]
            raise BlenderCNNError(where, f"does not fit {self.architecture}: it lacks the variables {_shown(missing)}")
        for position, ((name, variable), entry) in enumerate(zip(self.weights, self.stored)):
            if tuple(variable.shape) != entry[2]:
                raise BlenderCNNError(
                    where,
                    f"does not fit {self.architecture}: its variable number {position + 1}, "
                    f"{entry[0]}, has shape {entry[2]} but the network's weight {name} "
                    f"{tuple(variable.shape)} (matched by order, as no names match)",
                )
        raise BlenderCNNError(
            where,
            f"does not fit {self.architecture}: it holds {len(self.stored)} variables "
            f"({_shown(entry[0] for entry in self.stored)}) and the network "
            f"{len(self.weights)} weights ({_shown(name for name, _ in self.weights)})",
        )

    def assign(self, reader, where):
        if reader is None:
            raise BlenderCNNError(where, "holds no variables")
        if self.pairs is None:
            self.pairs = self._match(where)
        for variable, (name, key, _) in self.pairs:
            if not reader.has_tensor(key):
                raise BlenderCNNError(where, f"does not fit {self.architecture}: it lacks the variable {name}")
            value = np.asarray(reader.get_tensor(key))
            if tuple(value.shape) != tuple(variable.shape):
                raise BlenderCNNError(
                    where,
                    f"does not fit {self.architecture}: variable {name} has shape "
                    f"{tuple(value.shape)} in the checkpoint but {tuple(variable.shape)} "
                    "in the network",
                )
            variable.assign(value.astype(np.float32))
        return self.model


def _strip_common_scope(names):
    """Names without the scope all of them share (``model/conv1/kernel`` -> ``conv1/kernel``)."""
    parts = [name.split("/") for name in names]
    while parts and all(len(part) > 2 for part in parts) and len({part[0] for part in parts}) == 1:
        parts = [part[1:] for part in parts]
    return ["/".join(part) for part in parts]
