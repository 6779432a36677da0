"""Networks described as data (presets) turned into Keras models.

A preset is JSON: ``input_shape``, ``class_names``, a ``layers`` list in which
each entry is a Keras layer class name (``type``), a ``name`` and the layer's
keyword arguments, and a ``training`` section. A layer takes the previous
layer's output, or the layers named in its optional ``inputs`` list, so
branching networks (Add, Concatenate) can be written too.

Keras is imported inside the functions: the add-on imports this package in
Blender's Python, where TensorFlow may be missing.
"""

import os

from ..core.design import load_design
from ..core.errors import BlenderCNNError
from .datasets import dataset_problem, resolve_dataset

INPUT_NAME = "input"
TRAINING_DEFAULTS = {
    "dataset": "digits",
    "epochs": 8,
    "batch_size": 32,
    "learning_rate": 0.001,
    "validation_split": 0.2,
    "seed": 0,
    "samples_per_class": 1,
}
# Layers that would run code or load files named by the preset, which is data.
REFUSED_LAYER_TYPES = {"Lambda", "TFSMLayer", "InputLayer", "Input"}


def load_preset(path):
    """Read a preset file, check its structure and fill in training defaults."""
    path = os.fspath(path)
    return check_preset(load_design(path), where=path)


def check_preset(preset, where="preset"):
    """Return a copy of ``preset`` with training defaults filled in, or raise BlenderCNNError."""

    def fail(message):
        raise BlenderCNNError(where, message)

    if not isinstance(preset, dict):
        fail("must be a JSON object")
    if not isinstance(preset.get("name"), str) or not preset["name"]:
        fail("needs a 'name' (text)")
    shape = preset.get("input_shape")
    if not isinstance(shape, list) or not shape or not all(isinstance(n, int) and n > 0 for n in shape):
        fail(f"'input_shape' must be a list of positive integers, got {shape!r}")
    if not isinstance(preset.get("class_names"), list) or not preset["class_names"]:
        fail("needs 'class_names', a non-empty list")
    layers = preset.get("layers")
    if not isinstance(layers, list) or not layers:
        fail("needs 'layers', a non-empty list")
    seen = {INPUT_NAME}
    for position, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("type"), str) \
                or not isinstance(layer.get("name"), str):
            fail(f"layer #{position} needs a 'type' (a Keras layer class) and a 'name'")
        if layer["name"] in seen:
            fail(f"layer name {layer['name']!r} is used twice (the input is called {INPUT_NAME!r})")
        for source in layer.get("inputs", []):
            if source not in seen:
                fail(f"layer {layer['name']!r} takes input from {source!r}, which is not a layer before it")
        seen.add(layer["name"])
    training = preset.get("training", {})
    if not isinstance(training, dict):
        fail("'training' must be an object")
    training = {**TRAINING_DEFAULTS, **training}
    problem = dataset_problem(training["dataset"])
    if problem:
        fail(f"training {problem}")
    for key in ("epochs", "batch_size", "samples_per_class"):
        if not isinstance(training[key], int) or training[key] < (0 if key == "epochs" else 1):
            fail(f"training {key!r} must be a positive integer, got {training[key]!r}")
    return {**preset, "training": training}


def load_network(source, dataset=None):
    """A preset or a design (a dict, or the path of its JSON file) as a checked preset, ready to build and train.

    A design whose ``inputs`` name layers listed after them is put in preset
    order (``core.design.sorted_design``); when the file is no valid preset,
    ``core.design.validate_design`` gives the reasons (all of them, in one
    error). The training dataset's folder, if any, is made absolute against
    the file's folder (the current folder for a dict). ``dataset`` (a spec:
    ``"digits"`` or ``{"folder": path}``, a relative path taken against the
    current folder) replaces the preset's.
    """
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        base_dir = os.path.dirname(os.path.abspath(where))
        design = load_design(where)
    else:
        design, where, base_dir = source, None, os.getcwd()
        name = design.get("name") if isinstance(design, dict) else None
        where = f"design {name!r}" if isinstance(name, str) and name else "design"
    try:
        preset, preset_error = check_preset(design, where=where), None
    except BlenderCNNError as error:
        preset, preset_error = None, error
    if preset is None:
        from ..core.design import sorted_design, validate_design

        validate_design(design, where)  # raises with every reason when the design is invalid
        try:
            preset = check_preset(sorted_design(design), where=where)
        except BlenderCNNError:
            raise preset_error from None
    training = dict(preset["training"])
    if dataset is not None:
        training["dataset"] = resolve_dataset(dataset)
    else:
        training["dataset"] = resolve_dataset(training["dataset"], base_dir)
    return {**preset, "training": training}


def build_model(preset):
    """A compiled Keras functional model built from a preset dict (see the module docstring)."""
    import keras

    preset = check_preset(preset)
    where = f"preset {preset['name']!r}"
    tensors = {INPUT_NAME: keras.Input(shape=tuple(preset["input_shape"]), name=INPUT_NAME)}
    previous = INPUT_NAME
    for entry in preset["layers"]:
        kwargs = {key: value for key, value in entry.items() if key not in ("type", "name", "inputs")}
        layer = _make_layer(keras, entry["type"], entry["name"], kwargs, where)
        sources = entry.get("inputs") or [previous]
        inputs = [tensors[source] for source in sources]
        try:
            tensors[entry["name"]] = layer(inputs[0] if len(inputs) == 1 else inputs)
        except (TypeError, ValueError) as error:
            raise BlenderCNNError(where, f"layer {entry['name']!r} cannot take input from "
                                         f"{', '.join(sources)}: {_first_line(error)}") from None
        previous = entry["name"]
    model = keras.Model(tensors[INPUT_NAME], tensors[previous], name=preset["name"])
    training = preset["training"]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(training["learning_rate"])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    class_count = len(preset["class_names"])
    if tuple(model.output.shape[1:]) != (class_count,):
        raise BlenderCNNError(where, f"the last layer outputs shape {tuple(model.output.shape[1:])}, "
                                     f"but there are {class_count} classes")
    return model


def _make_layer(keras, type_name, name, kwargs, where):
    layer_class = getattr(keras.layers, type_name, None) if not type_name.startswith("_") else None
    if (type_name in REFUSED_LAYER_TYPES or not isinstance(layer_class, type)
            or not issubclass(layer_class, keras.layers.Layer)):
        raise BlenderCNNError(where, f"layer {name!r}: {type_name!r} is not a Keras layer type this add-on builds")
    try:
        return layer_class(name=name, **kwargs)
    except (TypeError, ValueError) as error:
        raise BlenderCNNError(where, f"layer {name!r} ({type_name}): {_first_line(error)}") from None


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
