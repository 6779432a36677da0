"""The network a weights-only file or a TensorFlow checkpoint belongs to.

Weights files hold numbers, not the network; its architecture comes from a
``.keras`` or full-model ``.h5`` file, a Keras JSON config (``model.to_json()``)
or a blender_cnn preset (``presets/*.json``). Every one of them is checked for
layers that would run code before Keras reads it.
"""

import json
import os

from ..core.errors import BlenderCNNError, first_line
from .safety import check_config, read_model_config

ARCHITECTURE_HINT = (
    "pass the network's architecture with --architecture FILE (a .keras or .h5 model, "
    "a model.to_json() file or a preset)"
)


def is_architecture_json(path):
    """True when ``path`` is a JSON file holding a Keras model config or a preset."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return _json_kind(data) is not None


def load_architecture(keras, path, allow_unsafe):
    """A Keras model (with whatever weights the file has) built from the architecture in ``path``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise BlenderCNNError(path, "no such architecture file")
    lowered = path.lower()
    if lowered.endswith(".json"):
        return _from_json(keras, path, allow_unsafe)
    if lowered.endswith((".keras", ".h5", ".hdf5")) and not lowered.endswith(".weights.h5"):
        config = read_model_config(path)
        if config is None:
            raise BlenderCNNError(path, "holds weights only, not an architecture; " + ARCHITECTURE_HINT)
        check_config(config, path, allow_unsafe)
        return load_keras_file(keras, path, allow_unsafe)
    raise BlenderCNNError(path, "is not an architecture file; " + ARCHITECTURE_HINT)


def load_keras_file(keras, path, allow_unsafe):
    """A full model from a ``.keras`` or ``.h5`` file, Keras' safe mode on unless ``allow_unsafe``."""
    try:
        return keras.saving.load_model(path, safe_mode=not allow_unsafe, compile=False)
    except Exception as error:  # Keras raises many kinds; all mean "this file is not a model we can open"
        raise BlenderCNNError(path, f"cannot be opened as a Keras model ({first_line(error)})") from None


def _from_json(keras, path, allow_unsafe):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise BlenderCNNError(path, f"is not readable JSON ({first_line(error)})") from None
    kind = _json_kind(data)
    if kind == "preset":
        from .keras_models import build_model

        return build_model(data)
    if kind == "run":
        from .keras_models import build_model

        return build_model(data["preset"])
    if kind != "keras":
        raise BlenderCNNError(path, "is neither a Keras model config (model.to_json()) nor a blender_cnn preset")
    check_config(data, path, allow_unsafe)
    try:
        return keras.saving.deserialize_keras_object(data, safe_mode=not allow_unsafe)
    except Exception as error:  # as above: any failure means the config does not describe a model we can build
        raise BlenderCNNError(
            path, f"does not describe a Keras model this Keras can build ({first_line(error)})"
        ) from None


def _json_kind(data):
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("class_name"), str) and isinstance(data.get("config"), dict):
        return "keras"
    if isinstance(data.get("layers"), list) and "input_shape" in data:
        return "preset"
    if data.get("format") == "blender_cnn.run" and isinstance(data.get("preset"), dict):
        return "run"
    return None
