"""Refuse model files that would run code when loaded, naming the layer that would.

A Keras architecture is JSON naming classes; the dangerous entries are
``Lambda`` layers (Python bytecode stored in the file), ``TFSMLayer`` (loads
another model from a path) and classes that are not Keras' own (custom objects,
whose code the file does not carry). Classes Keras ships outside
``keras.layers`` are its own code too: the layers of ``keras.applications``
(ConvNeXt's ``LayerScale``) and the ``keras.ops`` operations that arithmetic on
symbolic tensors records (``x + 3.0``). The configuration is read and checked
before Keras sees the file; Keras' own safe mode stays on as a second guard.
"""

import json
import sys
import zipfile

from ..core.errors import BlenderCNNError, first_line

CODE_LAYER_TYPES = {
    "Lambda": "a Lambda layer (it stores Python code, which would run on loading)",
    "TFSMLayer": "a TFSMLayer (it loads another model from a path named in the file)",
}
# Modules Keras' own classes are serialized from; anything else is user code.
KERAS_MODULE_PREFIXES = ("keras", "tf_keras", "tensorflow.keras", "builtins")
# Modules of Keras' own classes that are not in keras.layers; only modules Keras has already imported count.
KERAS_SHIPPED_MODULES = ("keras.src.applications.", "keras.src.ops.")
SAFETY_HINT = "If you trust the file, import it with allow_unsafe=True (command line: --allow-unsafe)"
SAVE_AS_KERAS_HINT = "Save the model as .keras, which names Keras' module of the class, to import it"


def read_model_config(path):
    """The architecture JSON inside a ``.keras`` zip or a full-model ``.h5``, or None for a weights-only ``.h5``."""
    if path.lower().endswith(".keras"):
        try:
            with zipfile.ZipFile(path) as archive:
                text = archive.read("config.json").decode("utf-8")
        except KeyError:
            raise BlenderCNNError(path, "is a zip file but not a Keras model (it has no config.json)") from None
        except (zipfile.BadZipFile, OSError, EOFError, UnicodeDecodeError) as error:
            raise BlenderCNNError(path, f"is damaged or not a .keras file ({first_line(error)})") from None
    else:
        import h5py

        try:
            with h5py.File(path, "r") as handle:
                text = handle.attrs.get("model_config")
        except OSError as error:
            raise BlenderCNNError(path, f"is damaged or not an HDF5 file ({first_line(error)})") from None
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
        name, reason, _ = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        # A remedy is worth naming only when it fixes every problem: allow_unsafe cannot supply missing code.
        remedies = {remedy for _, _, remedy in problems}
        remedy = f" {remedies.pop()}" if len(remedies) == 1 and "" not in remedies else ""
        raise BlenderCNNError(where, f"layer {name!r} is {reason}{more}; it was not loaded.{remedy}")


def unsafe_objects(config):
    """``[(name, reason, remedy)]`` for every entry of a Keras config that would run code or needs code not in
    the file; ``remedy`` says what lets the user import it anyway, or is empty."""
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
                found.append((name, CODE_LAYER_TYPES[class_name], SAFETY_HINT))
            elif isinstance(module, str) and not module.startswith(KERAS_MODULE_PREFIXES):
                found.append(
                    (name, f"of class {class_name!r} from module {module!r}, code that is not in the file", "")
                )
            elif in_layer_list and not _is_keras_class(keras, class_name, module):
                found.append((name, *_unknown_class_problem(keras, class_name)))
        for key, value in node.items():
            visit(value, key == "layers")

    visit(config, False)
    return found


def _is_keras_class(keras, class_name, module):
    if class_name in ("Functional", "Model", "Sequential"):
        return True
    layer_class = getattr(keras.layers, class_name, None)
    if isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer):
        return True
    return _shipped_operation(keras, class_name, module) is not None


def _unknown_class_problem(keras, class_name):
    """``(reason, remedy)`` for a class in a layer list that is not Keras' own as the file names it."""
    homes = [module for module in _shipped_modules() if _shipped_operation(keras, class_name, module)]
    if homes:  # legacy .h5 files name no module, and Keras looks such a class up in keras.layers only
        return (
            f"of class {class_name!r}, which Keras ships in {homes[0]}, but the file does not say so "
            "(legacy .h5 files do not)",
            SAVE_AS_KERAS_HINT,
        )
    return f"of class {class_name!r}, which is not a Keras layer; its code is not in the file", ""


def _shipped_modules():
    return sorted(name for name in sys.modules if name.startswith(KERAS_SHIPPED_MODULES))


def _shipped_operation(keras, class_name, module):
    """The layer or operation class ``module.class_name`` if Keras ships it outside keras.layers, else None.

    The module is looked up among those Keras imported itself, never imported
    here: a file must not choose what gets imported.
    """
    if not isinstance(module, str) or not module.startswith(KERAS_SHIPPED_MODULES):
        return None
    found = getattr(sys.modules.get(module), class_name, None)
    return found if isinstance(found, type) and issubclass(found, keras.Operation) else None
