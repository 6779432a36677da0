"""Refuse model files that would run code when loaded, naming the layer that would.

A Keras architecture is JSON naming classes; the dangerous entries are
``Lambda`` layers (Python bytecode stored in the file), ``TFSMLayer`` (loads
another model from a path) and classes that are not Keras' own (custom objects,
whose code the file does not carry). The configuration is read and checked
before Keras sees the file; Keras' own safe mode stays on as a second guard.
"""

import json
import zipfile

from ..core.errors import BlenderCNNError

CODE_LAYER_TYPES = {
    "Lambda": "a Lambda layer (it stores Python code, which would run on loading)",
    "TFSMLayer": "a TFSMLayer (it loads another model from a path named in the file)",
}
# Modules Keras' own classes are serialized from; anything else is user code.
KERAS_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow.keras", "builtins")
SAFETY_HINT = "If you trust the file, import it with allow_unsafe=True (command line: --allow-unsafe)"


def read_model_config(path):
    """The architecture JSON inside a ``.keras`` zip or a full-model ``.h5``, or None for a weights-only ``.h5``."""
    if path.lower().endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as archive:
                text = archive.read("config.json").decode("utf-8")
        except KeyError:
            raise BlenderCNNError(path, "is a zip file but not a Keras model (it has no config.json)") from None
        except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as error:
            raise BlenderCNNError(path, f"is damaged or not a .keras file ({_first_line(error)})") from None
    else:
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                text = handle.attrs.get("model_config")
        except OSError as error:
            raise BlenderCNNError(path, f"is damaged or not an HDF5 file ({_first_line(error)})") from None
        if text is None:
            return None
        text = text.decode("utf-8") if isinstance(text, bytes) else str(text)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise BlenderCNNError(path, f"holds an architecture that is not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise BlenderCNNError(path, "holds an architecture that is not a JSON object")
    return config


def check_config(config, where, allow_unsafe):
    """Raise BlenderCNNError naming the first layer of ``config`` that would run code, unless ``allow_unsafe``."""
    if allow_unsafe:
        return
    problems = unsafe_objects(config)
    if problems:
        name, reason = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BlenderCNNError(where, f"layer {name!r} is {reason}{more}; it was not loaded. {SAFETY_HINT}")


def unsafe_objects(config):
    """``[(name, reason)]`` for every entry of a Keras config that would run code or needs code not in the file."""
    import keras

    found = []

    def visit(node, in_layer_list):
        if isinstance(node, list):
            for item in node:
                visit(item, in_layer_list)
            return
        if not isinstance(node, dict):
            return
        class_name = node.get("class_name")
        inner = node.get("config")
        name = inner.get("name") if isinstance(inner, dict) else None
        name = name or class_name
        module = node.get("module")
        if isinstance(class_name, str):
            if class_name in CODE_LAYER_TYPES:
                found.append((name, CODE_LAYER_TYPES[class_name]))
            elif isinstance(module, str) and not module.startswith(KERAS_MODULE_PREFIXES):
                found.append((name, f"of class {class_name!r} from module {module!r}, code that is not in the file"))
            elif in_layer_list and not _is_keras_layer_class(keras, class_name):
                found.append((name, f"of class {class_name!r}, which is not a Keras layer; its code is not in "
                                    "the file"))
        for key, value in node.items():
            visit(value, key == "layers")

    visit(config, False)
    return found


def _is_keras_layer_class(keras, class_name):
    if class_name in ("Functional", "Model", "Sequential"):
        return True
    layer_class = getattr(keras.layers, class_name, None)
    return isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
