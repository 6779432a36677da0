"""A design (or preset) saved as a Keras model file.

``export_keras`` checks the design with ``core.design.validate_design`` (one
error listing every problem), puts it in preset order (``sorted_design``),
builds it with ``keras_models.build_model`` and saves it in Keras 3's native
``.keras`` format. Presets hold no Lambda layers, so the file loads with
``keras.saving.load_model(path, safe_mode=True)``.

With a ``seed`` the model gets the design's random weights
(``core.design.random_weights``): the exported model computes what the
designed scene shows (``design_bundle`` with the same seed). With
``seed=None`` it keeps Keras' own random initial weights.
"""

import os

from ..core.errors import BlenderCNNError
from .keras_models import build_model, check_preset

KERAS_SUFFIX = ".keras"


def export_keras(design, path, seed=0, log=None):
    """Save ``design`` (a dict, or the path of a design or preset JSON file) as a ``.keras`` model at ``path``.

    Returns ``path``. Raises BlenderCNNError when the design is invalid (the
    reasons listed), ``path`` does not end in ``.keras`` or cannot be written.
    """
    from ..core.design import load_design, random_weights, sorted_design, validate_design

    if isinstance(design, (str, os.PathLike)):
        design, where = load_design(design), os.fspath(design)
    else:
        name = design.get("name") if isinstance(design, dict) else None
        where = f"design {name!r}" if isinstance(name, str) and name else "design"
    path = os.fspath(path)
    if not path.lower().endswith(KERAS_SUFFIX):
        raise BlenderCNNError(path, f"a Keras model file must end in {KERAS_SUFFIX}")
    validate_design(design, where)
    preset = check_preset(sorted_design(design), where=where)
    model = build_model(preset)
    if seed is not None:
        set_design_weights(model, random_weights(design, seed), where)
    # Built, the optimizer saves all its (zero) variables, and loading the file does not warn of missing ones.
    model.optimizer.build(model.trainable_variables)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        model.save(path)
    except OSError as error:
        raise BlenderCNNError(path, f"cannot be written ({error.strerror or error})") from None
    if log:
        log(f"wrote {path}: {preset['name']!r}, {model.count_params()} parameters, "
            f"{'design weights of seed ' + str(seed) if seed is not None else 'Keras initial weights'}")
    return path


def set_design_weights(model, weights, where="design"):
    """Give the layers of ``model`` the arrays ``{layer name: {weight name: array}}`` (as ``random_weights``)."""
    from .keras_graph import named_weights

    for layer in model.layers:
        arrays = weights.get(layer.name, {})
        named = named_weights(layer)
        if {name for name, _ in named} != set(arrays):
            raise BlenderCNNError(where, f"layer {layer.name!r}: Keras holds weights "
                                         f"{[name for name, _ in named]}, the design {sorted(arrays)}")
        for name, variable in named:
            if tuple(variable.shape) != tuple(arrays[name].shape):
                raise BlenderCNNError(where, f"layer {layer.name!r}: weight {name!r} is {tuple(variable.shape)} "
                                             f"in Keras, {tuple(arrays[name].shape)} in the design")
            variable.assign(arrays[name])
