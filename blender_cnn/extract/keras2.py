"""Models written by Keras 2 (``tf.keras`` 2.x, ``tf_keras``), read by tf_keras and rebuilt as Keras 3 models.

Keras 3 reads some Keras 2 files itself, but trips over configs it no longer
takes (``groups`` on a ``SeparableConv2D``), cannot build a Keras 2
``model.to_json()``, and cannot read tf.keras' TensorFlow-format weights
(``ModelCheckpoint(..., save_weights_only=True)``) or SavedModel folders. So a
file that says Keras 2 wrote it is read by Keras 2 itself (the tf_keras
package): ``load_model`` for ``.h5``, ``.keras`` and SavedModel folders,
``model_from_json`` plus ``load_weights`` for weights. Its config is checked
with ``safety.check_config`` first, as every other architecture is, and
tf_keras' safe mode stays on.

The tf_keras model then becomes an equivalent Keras 3 model: its config,
translated where the two differ (settings Keras 3 dropped that do not change
what a layer computes, such as initializers of weights it does not have or
``groups=1``; Keras 2's layout of a Sequential's input; the ``TFOpLambda``
layers arithmetic on Keras tensors leaves, as the keras.ops operations Keras 3
records for it; '/' in layer names, which Keras 3 forbids, as '_'), is built
by Keras 3, and every layer's weights are copied over. Both models are run on the same
inputs and must agree, so a translation that changed what the network
computes is an error, not a wrong bundle. Everything after that (flattening,
gradients, the bundle) is the one Keras 3 path every other format takes.
"""

import importlib.util
import inspect
import json
import os
import warnings
import zipfile

import numpy as np

from ..core.errors import BlenderCNNError, first_line
from .safety import check_config, read_model_config

SAVED_MODEL_FILE = "saved_model.pb"
KERAS2_METADATA_FILE = "keras_metadata.pb"
TF_KERAS_HINT = "reading it needs the tf_keras package (pip install tf-keras, the version of your TensorFlow)"
MODEL_CLASSES = ("Functional", "Model", "Sequential")
# Keras 2 layers that record a TensorFlow function called on a Keras tensor in the model's code (tf.math.add...).
TF_OPERATION_LAYERS = ("TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer")
# The TensorFlow functions a TFOpLambda may call that are rebuilt, as the keras.ops operation computing the same
# (module, class, how many arguments). Arithmetic on Keras tensors (x + 3.0, x * y) records the first four.
# Only these are loaded: tf_keras looks a TFOpLambda's function up by the name in the file.
# fmt: off
TF_OPERATIONS = {
    "__operators__.add": ("keras.src.ops.numpy", "Add", 2), "math.add": ("keras.src.ops.numpy", "Add", 2),
    "math.subtract": ("keras.src.ops.numpy", "Subtract", 2), "math.multiply": ("keras.src.ops.numpy", "Multiply", 2),
    "math.truediv": ("keras.src.ops.numpy", "TrueDivide", 2), "math.maximum": ("keras.src.ops.numpy", "Maximum", 2),
    "math.minimum": ("keras.src.ops.numpy", "Minimum", 2),
    "nn.relu": ("keras.src.ops.nn", "Relu", 1), "nn.relu6": ("keras.src.ops.nn", "Relu6", 1),
    "math.sigmoid": ("keras.src.ops.nn", "Sigmoid", 1), "nn.sigmoid": ("keras.src.ops.nn", "Sigmoid", 1),
    "math.tanh": ("keras.src.ops.numpy", "Tanh", 1), "nn.silu": ("keras.src.ops.nn", "Silu", 1),
}
# fmt: on
CONSTANT_ARGUMENT = "_CONSTANT_VALUE"  # how Keras 2 writes a constant first argument (3.0 - x)
# Settings Keras 2 layers store that say how a layer was made, trained or run, not what it computes in inference.
INFERENCE_IRRELEVANT = {
    "dynamic",
    "fused",
    "conv_op",
    "force_generator",
    "rng_type",
    "virtual_batch_size",
    "adjustment",
    "input_length",
}
IRRELEVANT_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
RENAMED = {"LeakyReLU": {"alpha": "negative_slope"}}
# Keras 2 and 3 run the same operations; what is left is float rounding (fused batch norm, summation order).
AGREEMENT_TOLERANCE = 1e-4
CHECK_INPUTS = 2
# How a Keras 2 model names its layers in a checkpoint's object graph (layer_with_weights-0, layer-1).
KERAS2_LAYER_NAMES = ("layer-", "layer_with_weights-")
LONGEST_REASON = 300


# --- Telling Keras 2 files apart ---------------------------------------------------------------------------


def is_keras2_saved_model(path):
    """True for a SavedModel folder Keras 2 wrote with its layers (``model.save("dir")`` in tf.keras 2.x)."""
    return (
        os.path.isdir(path)
        and os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))
        and os.path.isfile(os.path.join(path, KERAS2_METADATA_FILE))
    )


def keras2_saved_model_folder(path):
    """The Keras 2 SavedModel folder ``path`` is, or holds as its ``saved_model.pb`` / ``keras_metadata.pb`` (a file
    picked in a file browser), else None."""
    path = os.path.normpath(os.fspath(path))
    if os.path.basename(path) in (SAVED_MODEL_FILE, KERAS2_METADATA_FILE) and os.path.isfile(path):
        path = os.path.dirname(os.path.abspath(path))
    return path if is_keras2_saved_model(path) else None


def keras2_version(path):
    """The Keras 2 version that wrote ``path`` (``"2.15.0"``), or None when Keras 2 did not write it or it is unreadable.

    Read from the ``keras_version`` an ``.h5`` file, a ``.keras`` file's
    metadata or a ``model.to_json()`` text records; a SavedModel folder with
    ``keras_metadata.pb`` is Keras 2's (Keras 3 never writes that file).
    """
    path = os.fspath(path)
    if is_keras2_saved_model(path):
        return "2"
    if not os.path.isfile(path):
        return None
    lowered = path.lower()
    version = None
    try:
        if lowered.endswith(".json"):
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            version = data.get("keras_version") if isinstance(data, dict) else None
        elif lowered.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                version = json.loads(archive.read("metadata.json").decode("utf-8")).get("keras_version")
        elif lowered.endswith((".h5", ".hdf5")):
            import h5py

            with h5py.File(path, "r") as handle:
                version = handle.attrs.get("keras_version")
    except (OSError, KeyError, ValueError, UnicodeDecodeError, AttributeError, zipfile.BadZipFile, EOFError):
        return None  # the reader that opens it for real names what is wrong
    if isinstance(version, bytes):
        version = version.decode("utf-8", "replace")
    return version if isinstance(version, str) and version.startswith("2.") else None


def use_tf_keras(path):
    """True when ``path`` is to be read by tf_keras: Keras 2 wrote it and tf_keras is there, or only it can read it.

    Without tf_keras, a Keras 2 ``.h5`` or ``.keras`` file is left to Keras 3,
    which reads many of them; other Keras 2 files then get an error asking for tf_keras.
    """
    if path is None or keras2_version(path) is None:
        return False
    if os.fspath(path).lower().endswith((".h5", ".hdf5", ".keras")):
        return importlib.util.find_spec("tf_keras") is not None
    return True


def tf_keras_module(path):
    """The tf_keras package, or an error naming ``path`` when it is not installed."""
    try:
        import tf_keras
    except ImportError:
        raise BlenderCNNError(path, f"was written by Keras 2 (tf.keras 2.x); {TF_KERAS_HINT}") from None
    return tf_keras


# --- Reading with tf_keras --------------------------------------------------------------------------------


def read_config(path):
    """The Keras 2 model config ``{"class_name", "config"}`` of ``path``, read without loading anything."""
    path = os.fspath(path)
    if is_keras2_saved_model(path):
        return _saved_model_config(path)
    if path.lower().endswith(".json"):
        try:
            with open(path, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise BlenderCNNError(path, f"is not readable JSON ({first_line(error)})") from None
    config = read_model_config(path)
    if config is None:
        raise BlenderCNNError(path, "holds weights only, not a model")
    return config


def _saved_model_config(path):
    """The model config a Keras 2 SavedModel keeps in ``keras_metadata.pb``, every layer it tracks listed too."""
    tf_keras_module(path)
    from tf_keras.protobuf import saved_metadata_pb2

    metadata = saved_metadata_pb2.SavedMetadata()
    try:
        with open(os.path.join(path, KERAS2_METADATA_FILE), "rb") as handle:
            metadata.ParseFromString(handle.read())
        nodes = {node.node_path: json.loads(node.metadata) for node in metadata.nodes}
    except Exception as error:  # protobuf's DecodeError, JSON errors, OSError: a damaged file either way
        raise BlenderCNNError(path, f"has a damaged {KERAS2_METADATA_FILE} ({_short(error)})") from None
    root = nodes.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("config"), dict):
        raise BlenderCNNError(path, f"has no model in its {KERAS2_METADATA_FILE}")
    # Layers the SavedModel tracks are checked too (as a "layers" list, which check_config reads as layers).
    tracked = [
        {"class_name": node.get("class_name"), "config": node.get("config") or {"name": node.get("name")}}
        for node_path, node in nodes.items()
        if node_path != "root" and isinstance(node, dict) and ".keras_api." not in node_path
    ]
    return {"class_name": root.get("class_name"), "config": root["config"], "layers": tracked}


def check_keras2_config(config, where, allow_unsafe):
    """Refuse a Keras 2 config that is not a layer graph, holds layers Keras 3 lacks, or would run code."""
    if (
        not isinstance(config, dict)
        or config.get("class_name") not in MODEL_CLASSES
        or not isinstance(config.get("config"), dict)
        or not isinstance(config["config"].get("layers"), list)
    ):
        class_name = config.get("class_name") if isinstance(config, dict) else None
        raise BlenderCNNError(
            where,
            f"holds a subclassed Keras 2 model (class {class_name!r}); its layer graph lives "
            "in Python code, not in the file. Save it as a Functional or Sequential model",
        )
    import keras

    tf_keras = tf_keras_module(where)
    for layer in _layer_entries(config):
        class_name, name = layer.get("class_name"), (layer.get("config") or {}).get("name")
        if class_name in TF_OPERATION_LAYERS and not _is_rebuilt_operation(layer):
            function = (layer.get("config") or {}).get("function", class_name)
            raise BlenderCNNError(
                where,
                f"layer {name!r} is TensorFlow's {function} called on a Keras tensor in the "
                "model's code (a Keras 2 TFOpLambda), which Keras 3 cannot rebuild; "
                "use the Keras layer for it (layers.Add, layers.Rescaling...) and save again",
            )
        if (
            isinstance(class_name, str)
            and not hasattr(keras.layers, class_name)
            and class_name not in MODEL_CLASSES
            and isinstance(getattr(tf_keras.layers, class_name, None), type)
        ):
            raise BlenderCNNError(
                where, f"layer {name!r} is a Keras 2 {class_name}, a layer type Keras 3 no longer has"
            )
    check_config(_without_rebuilt_operations(config), where, allow_unsafe)


def _is_rebuilt_operation(entry):
    return entry.get("class_name") == "TFOpLambda" and (entry.get("config") or {}).get("function") in TF_OPERATIONS


def _without_rebuilt_operations(node):
    """``node`` with the TFOpLambda entries of known TensorFlow functions left out of its layer lists (they are not
    Keras 3 layers, and check_config would take them for code)."""
    if isinstance(node, list):
        return [
            _without_rebuilt_operations(item)
            for item in node
            if not (isinstance(item, dict) and _is_rebuilt_operation(item))
        ]
    if isinstance(node, dict):
        return {key: _without_rebuilt_operations(value) for key, value in node.items()}
    return node


def _layer_entries(config):
    """Every layer entry of a model config, nested models' layers and SavedModel-tracked layers included."""
    found = []

    def visit(node):
        if isinstance(node, list):
            for item in node:
                visit(item)
        elif isinstance(node, dict):
            if isinstance(node.get("class_name"), str) and isinstance(node.get("config"), dict):
                found.append(node)
            for value in node.values():
                visit(value)

    visit(config.get("config", {}).get("layers", []))
    visit(config.get("layers", []))  # the layers a SavedModel tracks
    return found


def load_tf_keras_model(path, allow_unsafe):
    """The tf_keras model of ``path`` (``.h5``, ``.keras``, ``model.to_json()`` or SavedModel folder), checked first."""
    path = os.fspath(path)
    config = read_config(path)
    check_keras2_config(config, path, allow_unsafe)
    tf_keras = tf_keras_module(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.lower().endswith(".json"):
                with open(path, encoding="utf-8") as handle:
                    return tf_keras.models.model_from_json(handle.read())
            return tf_keras.models.load_model(path, compile=False, safe_mode=not allow_unsafe)
    except Exception as error:  # tf_keras raises many kinds; all mean "this is not a model it can open"
        raise BlenderCNNError(path, f"cannot be opened as a Keras 2 model by tf_keras ({_short(error)})") from None


# --- Keras 2 model -> Keras 3 model -------------------------------------------------------------------------


class Keras2Network:
    """A tf_keras model and the Keras 3 model built from it once; ``to_keras3`` copies the current weights over."""

    def __init__(self, keras, model, where, allow_unsafe):
        self.model = model
        self.keras3 = build_keras3_model(keras, model, where, allow_unsafe)

    def to_keras3(self, where):
        copy_weights(self.model, self.keras3, where)
        check_same_outputs(self.model, self.keras3, where)
        return self.keras3


def build_keras3_model(keras, model, where, allow_unsafe):
    """A Keras 3 model with the layer graph of the tf_keras ``model`` (its own initial weights)."""
    config = json.loads(model.to_json())
    translated = {
        "module": "keras" if config["class_name"] == "Sequential" else "keras.src.models.functional",
        "class_name": "Sequential" if config["class_name"] == "Sequential" else "Functional",
        "config": _translate_model_config(keras, config, where),
        "registered_name": None,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.saving.deserialize_keras_object(translated, safe_mode=not allow_unsafe)
    except BlenderCNNError:
        raise
    except Exception as error:  # anything Keras 3 cannot build from it
        raise BlenderCNNError(
            where, f"was written by Keras 2 and cannot be rebuilt in Keras 3 ({_short(error)})"
        ) from None


def _translate_model_config(keras, entry, where):
    """The inner config of a Keras 2 model entry, each layer's config translated for Keras 3."""
    config = dict(entry["config"])
    raw_layers = config.get("layers", [])
    shape = config.pop("build_input_shape", None)
    layers = [_translate_layer(keras, layer, where) for layer in raw_layers]
    # Keras 2 numbers the calls of a nested model built on an Input from 1 (call 0 is the model's own graph).
    # Keras 3 does so for functional models but not for Sequential ones, whose first call is 0 there.
    shifted = {
        layer["config"]["name"]
        for raw, layer in zip(raw_layers, layers)
        if layer["class_name"] == "Sequential" and _sequential_has_input(raw)
    }
    if entry["class_name"] == "Sequential" and layers and layers[0]["class_name"] != "InputLayer":
        # Keras 2 keeps a Sequential's input shape on its first layer; Keras 3 wants an InputLayer.
        first = layers[0]["config"]
        shape = raw_layers[0].get("config", {}).get("batch_input_shape") or shape
        if shape is not None:
            layers.insert(
                0,
                {
                    "class_name": "InputLayer",
                    "config": {
                        "batch_shape": _plain(shape),
                        "dtype": first.get("dtype") or "float32",
                        "name": f"{first.get('name') or 'layer'}_input",
                    },
                },
            )
    for layer in layers:
        layer["inbound_nodes"] = [_relink(node, shifted) for node in layer.get("inbound_nodes", [])]
    for key in ("input_layers", "output_layers"):
        if isinstance(config.get(key), list):
            config[key] = _relink(config[key], shifted)
    names = [layer["config"].get("name") for layer in layers]
    if len(set(names)) != len(names):
        raise BlenderCNNError(
            where,
            "has layers whose names differ only by '/' and '_'; Keras 3 forbids '/' in "
            "layer names, so they cannot be told apart",
        )
    config["layers"] = layers
    if isinstance(config.get("name"), str):
        config["name"] = keras3_name(config["name"])
    return config


def _sequential_has_input(entry):
    layers = entry.get("config", {}).get("layers", [])
    return bool(layers) and (
        layers[0].get("class_name") == "InputLayer" or layers[0].get("config", {}).get("batch_input_shape") is not None
    )


def _relink(references, shifted):
    """Keras 2 references ``[layer, node, tensor, ...]`` (and Keras 3 ``keras_history``) in ``references``, their
    layer named as in Keras 3 and their node one less for the Sequential models in ``shifted``."""
    if isinstance(references, dict):
        return {key: _relink(value, shifted) for key, value in references.items()}
    if not isinstance(references, list):
        return references
    if (
        len(references) >= 3
        and isinstance(references[0], str)
        and isinstance(references[1], int)
        and references[0] != CONSTANT_ARGUMENT
    ):
        return [
            keras3_name(references[0]),
            references[1] - (keras3_name(references[0]) in shifted),
            *[_relink(item, shifted) for item in references[2:]],
        ]
    return [_relink(item, shifted) for item in references]


def keras3_name(name):
    """The name a Keras 2 layer gets in Keras 3, which forbids '/' (MobileNetV3's ``Conv/BatchNorm``)."""
    return name.replace("/", "_") if isinstance(name, str) else name


def _translate_layer(keras, entry, where):
    entry = {key: value for key, value in entry.items() if key not in ("module", "registered_name", "build_config")}
    if "name" in entry:
        entry["name"] = keras3_name(entry["name"])
    entry["config"] = {**entry["config"], "name": keras3_name(entry["config"].get("name"))}
    class_name = entry["class_name"]
    if class_name in MODEL_CLASSES:
        return {
            **entry,
            "class_name": "Functional" if class_name == "Model" else class_name,
            "config": _translate_model_config(keras, entry, where),
        }
    if _is_rebuilt_operation(entry):
        return _translate_operation(entry, where)
    # Initializers, regularizers and constraints shape training, not inference, and the weights are copied:
    # Keras 3's defaults stand in for them (older Keras 2 files store some Keras 3 cannot read).
    config = {key: value for key, value in entry["config"].items() if not key.endswith(IRRELEVANT_SUFFIXES)}
    if isinstance(config.get("dtype"), dict):  # a Keras 2 dtype policy, {"class_name": "Policy", ...}
        config["dtype"] = (config["dtype"].get("config") or {}).get("name", "float32")
    name = config.get("name")
    for old, new in RENAMED.get(class_name, {}).items():
        if old in config:
            config[new] = config.pop(old)
    shape = config.pop("batch_input_shape", None)
    if class_name == "InputLayer" and shape is not None:
        config["batch_shape"] = _plain(shape)
    if isinstance(config.get("axis"), list) and len(config["axis"]) == 1:  # Keras 2 normalization stores [axis]
        config["axis"] = config["axis"][0]
    if class_name == "Lambda" and isinstance(config.get("function"), list):  # Keras 2 stores [code, defaults, closure]
        code, defaults, closure = config["function"][:3]
        config["function"] = {
            "class_name": "__lambda__",
            "config": {"code": code, "defaults": defaults, "closure": closure},
        }
        for key in ("module", "function_type", "output_shape_type", "output_shape_module"):
            config.pop(key, None)
    layer_class = getattr(keras.layers, class_name, None)
    if isinstance(layer_class, type):
        accepted = _init_parameters(layer_class, keras.layers.Layer)
        defaults = _keras2_defaults(class_name)
        for key in [key for key in config if key not in accepted]:
            value = config.pop(key)
            if not (key in INFERENCE_IRRELEVANT or (key in defaults and _plain(value) == _plain(defaults[key]))):
                raise BlenderCNNError(
                    where,
                    f"layer {name!r} ({class_name}) has the Keras 2 setting {key}={value!r}, "
                    "which Keras 3 does not have; it cannot be converted",
                )
    for key in ("layer", "forward_layer", "backward_layer"):  # wrappers (TimeDistributed, Bidirectional)
        if isinstance(config.get(key), dict) and "class_name" in config[key]:
            config[key] = _translate_layer(keras, config[key], where)
    return {**entry, "config": config}


def _translate_operation(entry, where):
    """A Keras 2 TFOpLambda of a known TensorFlow function as the keras.ops operation of Keras 3's configs."""
    name = entry["config"].get("name") or entry.get("name")
    module, class_name, argument_count = TF_OPERATIONS[entry["config"]["function"]]
    nodes = []
    for node in entry.get("inbound_nodes", []):
        # Keras 2 writes a TFOpLambda's call as [first argument, node, tensor, kwargs], not in a list of inputs.
        first = node[0] if isinstance(node, list) and len(node) == 1 and isinstance(node[0], list) else node
        if not isinstance(first, list) or len(first) != 4 or not isinstance(first[3], dict):
            raise BlenderCNNError(
                where, f"layer {name!r} ({entry['config']['function']}) is called in a way that cannot be converted"
            )
        kwargs = {key: value for key, value in first[3].items() if key != "name"}
        arguments = [first[2] if first[0] == CONSTANT_ARGUMENT else first[:3]]
        if argument_count == 2 and set(kwargs) == {"y"}:
            arguments.append(kwargs.pop("y"))
        if kwargs or len(arguments) != argument_count:
            raise BlenderCNNError(
                where,
                f"layer {name!r} ({entry['config']['function']}) has arguments "
                f"{sorted(kwargs) or len(arguments)} that cannot be converted",
            )
        nodes.append({"args": [_operation_argument(argument, name, where) for argument in arguments], "kwargs": {}})
    return {
        "module": module,
        "class_name": class_name,
        "config": {"name": name},
        "registered_name": class_name,
        "name": name,
        "inbound_nodes": nodes,
    }


def _operation_argument(argument, name, where):
    """A Keras 2 node argument (``[layer, node, tensor]`` or a number) as Keras 3 writes it in a node."""
    if isinstance(argument, (int, float)) and not isinstance(argument, bool):
        return argument
    if isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str):
        # The shape is a stand-in: Keras 3 replaces this tensor by the output of the layer its history names.
        return {
            "class_name": "__keras_tensor__",
            "config": {"shape": [1], "dtype": "float32", "keras_history": list(argument)},
        }
    raise BlenderCNNError(where, f"layer {name!r} takes the constant {argument!r}; only single numbers are converted")


def _init_parameters(layer_class, base):
    """Names ``layer_class(...)`` accepts: its ``__init__``'s and, through ``**kwargs``, its bases' up to ``base``."""
    names = set()
    for klass in layer_class.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names.update(
            parameter.name
            for parameter in parameters
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL)
        )
        if klass is base or not any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters):
            break
    return names


def _keras2_defaults(class_name):
    """``{setting: default}`` of the tf_keras layer class ``class_name`` and the bases its ``**kwargs`` reach."""
    import tf_keras

    layer_class = getattr(tf_keras.layers, class_name, None)
    defaults = {}
    if not isinstance(layer_class, type):
        return defaults
    for klass in layer_class.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        for parameter in parameters:
            if parameter.default is not parameter.empty:
                defaults.setdefault(parameter.name, parameter.default)
        if klass is tf_keras.layers.Layer or not any(
            parameter.kind == parameter.VAR_KEYWORD for parameter in parameters
        ):
            break
    return defaults


def _plain(value):
    """Tuples (and Keras 2's ``{"class_name": "__tuple__", "items": [...]}``) as lists, to compare and to store."""
    if isinstance(value, dict) and value.get("class_name") == "__tuple__":
        return [_plain(item) for item in value.get("items", [])]
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def copy_weights(source, target, where):
    """Copy every layer's weights of the tf_keras ``source`` into the Keras 3 ``target``, matched by layer name."""
    for layer in source.layers:
        try:
            twin = target.get_layer(keras3_name(layer.name))
        except ValueError:
            if layer.weights:
                raise BlenderCNNError(
                    where, f"layer {layer.name!r} of the Keras 2 model has no Keras 3 counterpart"
                ) from None
            continue
        if hasattr(layer, "layers") and hasattr(twin, "layers"):  # a nested model: layer by layer too
            copy_weights(layer, twin, where)
            continue
        values = layer.get_weights()
        expected = [tuple(variable.shape) for variable in twin.weights]
        if [value.shape for value in values] != expected:
            raise BlenderCNNError(
                where,
                f"layer {layer.name!r} has weights of shapes {[v.shape for v in values]} in "
                f"Keras 2 but {expected} in Keras 3; it cannot be converted",
            )
        twin.set_weights(values)


def check_same_outputs(source, target, where):
    """Raise when the tf_keras and Keras 3 models disagree on the same inputs (the conversion changed the network)."""
    shape = tuple(source.inputs[0].shape[1:]) if len(source.inputs) == 1 else ()
    if not shape or any(size is None for size in shape) or not source.inputs[0].dtype.is_floating:
        return  # no fixed input to try; the bundle's activations still come from the converted model
    inputs = np.random.default_rng(0).standard_normal((CHECK_INPUTS, *shape)).astype(np.float32)
    with warnings.catch_warnings():  # Keras 3 warns that a functional model's input is a list of one
        warnings.simplefilter("ignore")
        expected = np.asarray(source(inputs, training=False))
        got = np.asarray(target(inputs, training=False))
    difference = np.max(np.abs(expected - got)) / max(1.0, float(np.max(np.abs(expected))))
    if expected.shape != got.shape or not difference <= AGREEMENT_TOLERANCE:
        with warnings.catch_warnings():
            where_first = _first_disagreeing_layer(source, target, inputs)
        raise BlenderCNNError(
            where,
            "was written by Keras 2, and its Keras 3 rebuild computes other outputs "
            f"({where_first}); it cannot be converted",
        )


def _first_disagreeing_layer(source, target, inputs):
    import keras
    import tf_keras

    warnings.simplefilter("ignore")  # called inside check_same_outputs' catch_warnings
    for layer in source.layers[1:]:
        try:
            expected = tf_keras.Model(source.inputs, layer.output)(inputs, training=False)
            twin = target.get_layer(keras3_name(layer.name))
            got = keras.Model(target.inputs, twin.output)(inputs, training=False)
        except Exception:  # a layer with several outputs or nodes; the model's output names the problem
            continue
        if not np.allclose(np.asarray(expected), np.asarray(got), rtol=1e-4, atol=1e-4):
            return f"first at layer {layer.name!r}"
    return "at its output"


# --- Loaders for sources.py ---------------------------------------------------------------------------------


def load_full_model(keras, path, allow_unsafe):
    """The Keras 3 model of a Keras 2 ``.h5``, ``.keras`` or SavedModel folder, weights and all."""
    model = load_tf_keras_model(path, allow_unsafe)
    return Keras2Network(keras, model, path, allow_unsafe).to_keras3(path)


def weights_loader(architecture_path, allow_unsafe):
    """``load(keras, path)`` for Keras 2 weights (``.h5``, TensorFlow-format ``save_weights`` checkpoints) of the
    Keras 2 ``architecture_path``: restored by tf_keras' own ``load_weights``, then copied into one Keras 3 model."""
    built = {}

    def load(keras, path):
        if "network" not in built:
            model = load_tf_keras_model(architecture_path, allow_unsafe)
            built["network"] = Keras2Network(keras, model, architecture_path, allow_unsafe)
        network = built["network"]
        restore_weights(network.model, path, architecture_path)
        return network.to_keras3(path)

    return load


def restore_weights(model, path, architecture_path):
    """Load ``path`` into the tf_keras ``model``; raise naming the variables the file did not fill.

    ``model.save_weights`` (and ``ModelCheckpoint(save_weights_only=True)``)
    makes the model the checkpoint's root; ``tf.train.Checkpoint(model=model)``
    stores it under a name. Both are restored by TensorFlow's matching of the
    object graph; variables left NaN are the ones the file lacks.
    """
    import tensorflow as tf

    from .tf_checkpoints import INDEX_SUFFIX, shape_mismatch

    variables = [variable for variable in model.weights if variable.dtype.is_floating]
    for variable in variables:
        variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype.as_numpy_dtype))
    fit_hint = f"does not fit the architecture {os.path.basename(architecture_path)}"

    def untouched():
        return [variable for variable in variables if np.isnan(variable.numpy()).all()]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not os.path.isfile(path + INDEX_SUFFIX):  # an .h5 of weights
                model.load_weights(path)
            elif (roots := _checkpoint_roots(tf, path)) is None:
                model.load_weights(path).expect_partial()
            else:
                for root in roots:
                    tf.train.Checkpoint(**{root: model}).read(path).expect_partial()
                    if not untouched():
                        break
    except (ValueError, AssertionError, tf.errors.OpError) as error:  # a stored variable of another shape, mostly
        raise BlenderCNNError(path, f"{fit_hint}: {shape_mismatch(error) or _short(error)}") from None
    missing = [variable.name.removesuffix(":0") for variable in untouched()]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise BlenderCNNError(path, f"{fit_hint}: it lacks the variables {shown}")
    return model


def _checkpoint_roots(tf, prefix):
    """None when ``prefix`` holds a model as its root (Keras 2 ``save_weights``), else the names it may be under."""
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    from .tf_checkpoints import BOOKKEEPING_NAMES, OBJECT_GRAPH_KEY

    try:
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(tf.train.load_checkpoint(prefix).get_tensor(OBJECT_GRAPH_KEY))
    except Exception as error:  # TensorFlow raises OpErrors, ValueError, DecodeError for damaged files
        raise BlenderCNNError(prefix, f"cannot be read as a TensorFlow checkpoint ({_short(error)})") from None
    names = [child.local_name for child in graph.nodes[0].children]
    if any(name.startswith(KERAS2_LAYER_NAMES) for name in names):
        return None
    roots = [name for name in names if name not in BOOKKEEPING_NAMES]
    if not roots:
        raise BlenderCNNError(prefix, f"holds no model, only {', '.join(names)}")
    return roots


def _short(error):
    text = first_line(error) if isinstance(error, BaseException) else str(error)
    return text if len(text) <= LONGEST_REASON else text[:LONGEST_REASON].rstrip() + "..."
