"""Presets (``core.presets``) turned into Keras models.

Keras is imported inside the functions: the add-on imports this package in
Blender's Python, where TensorFlow may be missing.
"""

import os

from ..core.design import sorted_design, validate_design
from ..core.errors import BlenderCNNError, first_line
from ..core.presets import INPUT_NAME, check_preset, load_design
from .datasets import resolve_dataset

# Layers that would run code or load files named by the preset, which is data.
REFUSED_LAYER_TYPES = {"Lambda", "TFSMLayer", "InputLayer", "Input"}


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
    """A compiled Keras functional model built from a preset dict (see ``core.presets``)."""
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
            raise BlenderCNNError(
                where, f"layer {entry['name']!r} cannot take input from {', '.join(sources)}: {first_line(error)}"
            ) from None
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
        raise BlenderCNNError(
            where, f"the last layer outputs shape {tuple(model.output.shape[1:])}, but there are {class_count} classes"
        )
    return model


def _make_layer(keras, type_name, name, kwargs, where):
    layer_class = getattr(keras.layers, type_name, None) if not type_name.startswith("_") else None
    if (
        type_name in REFUSED_LAYER_TYPES
        or not isinstance(layer_class, type)
        or not issubclass(layer_class, keras.layers.Layer)
    ):
        raise BlenderCNNError(where, f"layer {name!r}: {type_name!r} is not a Keras layer type this add-on builds")
    try:
        return layer_class(name=name, **kwargs)
    except (TypeError, ValueError) as error:
        raise BlenderCNNError(where, f"layer {name!r} ({type_name}): {first_line(error)}") from None
