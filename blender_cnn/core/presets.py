"""Presets: networks described as data, read from JSON and checked for structure, with training defaults.

A preset is JSON: ``name``, ``input_shape``, ``class_names``, a ``layers``
list in which each entry is a Keras layer class name (``type``), a ``name``
and the layer's keyword arguments, and a ``training`` section. A layer takes
the previous layer's output, or the layers named in its optional ``inputs``
list, so branching networks (Add, Concatenate) can be written too. The
training section's ``dataset`` is a spec: ``"digits"`` or ``{"folder": path}``
(``extract.datasets`` loads it).

Plain Python, no TensorFlow: ``core.design`` judges designs by these rules,
``extract.keras_models`` builds and trains the presets they pass.
"""

from __future__ import annotations

import json
import os
from typing import Any, NoReturn

from .errors import BlenderCNNError

INPUT_NAME = "input"  # what a layer's ``inputs`` call the network's input
TRAINING_DEFAULTS = {
    "dataset": "digits",
    "epochs": 8,
    "batch_size": 32,
    "learning_rate": 0.001,
    "validation_split": 0.2,
    "seed": 0,
    "samples_per_class": 1,
}
DATASETS = ("digits",)
FOLDER_KEY = "folder"
DATASET_HINT = f'use "digits" or {{"{FOLDER_KEY}": "path/to/images"}} (one subfolder per class)'


def load_design(path: str | os.PathLike[str]) -> Any:  # whatever the JSON holds
    """Read a design or preset JSON file without validating it; BlenderCNNError when it is missing or not JSON."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise BlenderCNNError(path, "no such preset or design file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BlenderCNNError(path, f"is not a readable JSON preset or design ({error})") from None


def check_preset(preset: object, where: str = "preset") -> dict[str, Any]:
    """Return a copy of ``preset`` with training defaults filled in, or raise BlenderCNNError."""

    def fail(message: str) -> NoReturn:
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
        if (
            not isinstance(layer, dict)
            or not isinstance(layer.get("type"), str)
            or not isinstance(layer.get("name"), str)
        ):
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


def dataset_problem(spec: object) -> str | None:
    """Why ``spec`` is not a dataset spec (``"digits"`` or ``{"folder": path}``), or None when it is one."""
    if isinstance(spec, str):
        return None if spec in DATASETS else f"dataset {spec!r} is unknown; {DATASET_HINT}"
    if isinstance(spec, dict):
        folder = spec.get(FOLDER_KEY)
        if set(spec) == {FOLDER_KEY} and isinstance(folder, str) and folder.strip():
            return None
    return f"dataset must be a name or an object with one key {FOLDER_KEY!r} (a path), got {spec!r}; {DATASET_HINT}"
