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

This module tells those files apart and loads them. Either graph is read as a
protobuf, never imported into TensorFlow nor run (running a SavedModel's
functions would run whatever the file holds); ``tf_graph_structure.py`` holds
its nodes and finds a TF1 graph's network, and ``tf_graph_layers.py``
translates the operations from the network's input to its output into Keras
layers.

A TF1 checkpoint may also take its network from ``--architecture`` (a Keras
model, ``model.to_json()`` file or preset), whose weights are matched to the
checkpoint's variables by name, else by order and shape.
"""

import os
import re

import numpy as np

from ..core.errors import BlenderCNNError, first_line
from .architecture import load_architecture
from .tf_checkpoints import INDEX_SUFFIX, OBJECT_GRAPH_KEY, variable_names
from .tf_graph_layers import Context, Translator, shown
from .tf_graph_structure import TF1_HINT, VARIABLE_OPS, Graph, Variable, find_input_and_output, tensor_ref

TF1_CHECKPOINT = "tf1"  # tf.compat.v1.train.Saver
SAVED_MODEL = "saved_model"  # a SavedModel folder of graph functions (Keras 3 export(), tf.Module)
META_SUFFIX = ".meta"
SAVED_MODEL_FILE = "saved_model.pb"
KERAS2_METADATA_FILE = "keras_metadata.pb"  # a Keras 2 SavedModel, read with its layers by keras2.py
VARIABLES_FILE = os.path.join("variables", "variables")
SAVE_KERAS_HINT = 'save the model with model.save("model.keras") and import that file'


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
    graph = Graph(meta_path, meta.graph_def.library)
    graph.add_graph_def(meta.graph_def)
    graph.finish()
    for node in graph.nodes.values():
        if node.op in VARIABLE_OPS:
            shared = node.attr["shared_name"].s.decode() if "shared_name" in node.attr else ""
            graph.variables.setdefault(node.name, Variable(shared or node.name, shared or node.name))
    input_name, output = find_input_and_output(graph)
    context = Context(meta_path, "its graph", TF1_HINT)
    return Translator(keras, graph, input_name, output, input_name, reader, prefix, context)


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
        self.variables = {}  # saved object id -> Variable
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
                        self.variables[node_id] = Variable(attribute.checkpoint_key, name)
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
    graph = Graph(path, saved.meta.graph_def.library)
    graph.saved_variables = saved.variables
    graph.bound_inputs = {
        name: list(function.bound_inputs) for name, function in saved.meta.object_graph_def.concrete_functions.items()
    }
    graph.add_graph_def(saved.meta.graph_def)
    graph.finish()
    for node in graph.nodes.values():  # TF1 SavedModels (simple_save) store variables by name
        if node.op in VARIABLE_OPS and saved.reader is not None and not saved.reader.has_tensor(OBJECT_GRAPH_KEY):
            shared = node.attr["shared_name"].s.decode() if "shared_name" in node.attr else ""
            graph.variables.setdefault(node.name, Variable(shared or node.name, shared or node.name))
    input_name = graph.resolve(tensor_ref(input_tensor))[0]
    context = Context(path, "it", hint, what)
    translator = Translator(keras, graph, input_name, tensor_ref(output_tensor), input_key, saved.reader, path, context)
    return translator.assign(saved.reader, path)


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
            raise BlenderCNNError(where, f"does not fit {self.architecture}: it lacks the variables {shown(missing)}")
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
            f"({shown(entry[0] for entry in self.stored)}) and the network "
            f"{len(self.weights)} weights ({shown(name for name, _ in self.weights)})",
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
