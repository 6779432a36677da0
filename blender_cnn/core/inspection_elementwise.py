"""Inspection of layers that work cell by cell: merges, concatenation, normalization and activations.

Each function takes ``(layer, inputs, weights, common, top)`` like those of
``inspection_windows`` and returns an ``Inspection``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .errors import BlenderCNNError
from .forward import compute_layer
from .inspection_record import ACTIVATION, CONCATENATION, MERGE, NORMALIZATION, CellFields, Inspection, Term
from .inspection_windows import AXIS_ACTIVATIONS

if TYPE_CHECKING:
    from .bundle import LayerInfo

MERGES = {
    "Add": np.add,
    "Subtract": np.subtract,
    "Multiply": np.multiply,
    "Maximum": np.maximum,
    "Minimum": np.minimum,
    "Average": np.add,
}


def merge(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Add, Multiply and the other merges: each input's value at the cell (broadcast like numpy) and the result."""
    position = common["position"]
    terms = tuple(
        Term(
            _broadcast_position(position, values.shape),
            float(values[_broadcast_position(position, values.shape)]),
            layer=name,
        )
        for name, values in zip(layer.inputs, inputs)
    )
    if layer.type == "Subtract" and len(terms) != 2:
        raise BlenderCNNError(f"layer {layer.name!r}", f"is a Subtract layer with {len(terms)} inputs instead of two")
    result = np.float64(terms[0].value)
    for term in terms[1:]:
        result = MERGES[layer.type](result, np.float64(term.value))
    if layer.type == "Average":
        result /= len(terms)
    return Inspection(kind=MERGE, terms=terms, value=float(np.float32(result)), **common)


def _broadcast_position(position: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """Where ``position`` of the result reads an input of ``shape``: numpy broadcasting, aligned right."""
    aligned = position[len(position) - len(shape) :]
    return tuple(index if size > 1 else 0 for index, size in zip(aligned, shape))


def concatenate(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Concatenate: which input the cell comes from, where in it, and its value."""
    position = common["position"]
    axis = _position_axis(layer, len(position))
    first = 0
    for index, (name, values) in enumerate(zip(layer.inputs, inputs)):
        if position[axis] < first + values.shape[axis]:
            source = position[:axis] + (position[axis] - first,) + position[axis + 1 :]
            term = Term(source, float(values[source]), layer=name)
            parameters = (
                ("input", index),
                ("inputs", len(inputs)),
                ("axis", axis),
                ("offset", first),
                ("size", values.shape[axis]),
            )
            return Inspection(
                kind=CONCATENATION,
                terms=(term,),
                value=term.value,
                parameters=parameters,
                **(common | {"source_layer": name}),
            )
        first += values.shape[axis]
    raise BlenderCNNError(
        f"layer {layer.name!r}", f"has inputs that do not add up to its output shape {tuple(layer.output_shape)}"
    )


def _position_axis(layer: LayerInfo, rank: int) -> int:
    """A Keras ``axis`` (counting the sample axis; negative from the end) as an index into a cell's position."""
    axis = layer.config.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise BlenderCNNError(f"layer {layer.name!r}", f"works along axes {list(axis)}; inspection takes one")
        axis = axis[0]
    axis = int(axis) % (rank + 1) - 1
    if axis < 0:
        raise BlenderCNNError(f"layer {layer.name!r}", "works along the sample axis, which inspection cannot show")
    return axis


def batch_normalization(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """BatchNormalization in inference: (x - moving mean) / sqrt(moving variance + epsilon) x gamma + beta."""
    position = common["position"]
    channel = position[_position_axis(layer, len(position))]
    x = float(inputs[0][position])
    mean, variance = float(weights["moving_mean"][channel]), float(weights["moving_variance"][channel])
    epsilon = float(np.float32(layer.config.get("epsilon", 1e-3)))
    gamma = float(weights["gamma"][channel]) if layer.config.get("scale", True) and "gamma" in weights else None
    beta = float(weights["beta"][channel]) if layer.config.get("center", True) and "beta" in weights else None
    result = (x - mean) / np.sqrt(variance + epsilon) * (1.0 if gamma is None else gamma) + (beta or 0.0)
    parameters = (
        ("moving_mean", mean),
        ("moving_variance", variance),
        ("epsilon", epsilon),
        ("gamma", gamma),
        ("beta", beta),
    )
    return _normalized(inputs, common, result, parameters)


def normalization(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Keras' preprocessing Normalization, adapted (mean and variance are weights): (x - mean) / sqrt(variance)."""
    if "mean" not in weights or "variance" not in weights:
        raise BlenderCNNError(
            f"layer {layer.name!r}",
            "is a Normalization layer whose mean and variance are not "
            "stored as weights, so its cells cannot be inspected",
        )
    position = common["position"]
    shape = tuple(inputs[0].shape)
    kept = _kept_axes(layer, len(shape))
    statistics_shape = [shape[axis] if axis in kept else 1 for axis in range(len(shape))]
    mean, variance = (_element(weights[key].reshape(statistics_shape), shape, position) for key in ("mean", "variance"))
    spread = max(np.sqrt(variance), 1e-7)  # Keras' backend epsilon
    x = float(inputs[0][position])
    invert = bool(layer.config.get("invert", False))
    result = mean + x * spread if invert else (x - mean) / spread
    return _normalized(inputs, common, result, (("mean", mean), ("variance", variance), ("invert", invert)))


def _kept_axes(layer: LayerInfo, rank: int) -> list[int]:
    """Normalization's ``axis`` (an int, a list, or None for one mean over everything) as position indices."""
    axis = layer.config.get("axis", -1)
    axes = [] if axis is None else axis if isinstance(axis, (list, tuple)) else [axis]
    return [int(a) % (rank + 1) - 1 for a in axes]


def rescaling(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Rescaling: x x scale + offset (each a number, or one per channel)."""
    position = common["position"]
    shape = tuple(inputs[0].shape)
    scale, offset = (
        _element(layer.config.get(key, default), shape, position) for key, default in (("scale", 1.0), ("offset", 0.0))
    )
    x = float(inputs[0][position])
    return _normalized(inputs, common, x * scale + offset, (("scale", scale), ("offset", offset)))


def _element(values: npt.ArrayLike, shape: tuple[int, ...], position: tuple[int, ...]) -> float:
    """The number of ``values`` (a scalar, or one per channel, ...) that applies at ``position`` of ``shape``."""
    return float(np.broadcast_to(np.asarray(values, dtype=np.float32), shape)[position])


def _normalized(
    inputs: Sequence[np.ndarray], common: CellFields, result: float, parameters: tuple[tuple[str, Any], ...]
) -> Inspection:
    term = Term(common["position"], float(inputs[0][common["position"]]))
    return Inspection(
        kind=NORMALIZATION, terms=(term,), value=float(np.float32(result)), parameters=parameters, **common
    )


def activation(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Activation, ReLU (ReLU6 is ReLU(max_value=6)), LeakyReLU, ELU, PReLU, Softmax: input value -> output."""
    position, config = common["position"], layer.config
    name, parameters = _activation_name(layer, weights, position, inputs[0].shape)
    # The function itself is core.numpy_layers', applied to the whole input (softmax needs its axis).
    output = compute_layer(layer.type, config, weights, [inputs[0][np.newaxis]], name=layer.name)[0]
    if output.shape != inputs[0].shape:
        raise BlenderCNNError(
            f"layer {layer.name!r}",
            f"uses the activation {name!r}, which changes the shape, so its cells have no one input cell to show",
        )
    if name in AXIS_ACTIVATIONS or layer.type == "Softmax":
        axis = _position_axis(layer, len(position)) if layer.type == "Softmax" else len(position) - 1
        parameters += (("axis", axis), ("axis size", inputs[0].shape[axis]))
    term = Term(position, float(inputs[0][position]))
    return Inspection(
        kind=ACTIVATION,
        terms=(term,),
        total=term.value,
        activation=name,
        value=float(output[position]),
        parameters=parameters,
        **common,
    )


def _activation_name(
    layer: LayerInfo, weights: Mapping[str, np.ndarray], position: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[str, tuple[tuple[str, float], ...]]:
    """The activation as a user reads it ("relu", "ReLU(max_value=6)", "PReLU(alpha=0.25)") and its numbers."""
    config = layer.config
    if layer.type == "Activation":
        if not isinstance(config.get("activation"), str):
            raise BlenderCNNError(
                f"layer {layer.name!r}", "uses an activation that is not named, so inspection cannot compute it"
            )
        return config["activation"], ()
    if layer.type == "Softmax":
        return "softmax", ()
    if layer.type == "PReLU":
        alpha = _element(weights["alpha"], shape, position)
        return f"PReLU(alpha={alpha:.4g})", (("alpha", alpha),)
    defaults_of: dict[str, dict[str, float | None]] = {
        "ReLU": {"max_value": None, "negative_slope": 0.0, "threshold": 0.0},
        "LeakyReLU": {"negative_slope": 0.3},
        "ELU": {"alpha": 1.0},
    }
    defaults = defaults_of[layer.type]
    given = {key: config.get(key, default) for key, default in defaults.items()}
    if layer.type == "LeakyReLU" and "negative_slope" not in config and "alpha" in config:
        given["negative_slope"] = config["alpha"]  # Keras 2 called it alpha
    changed = {
        key: value
        for key, value in given.items()
        if value is not None and (layer.type != "ReLU" or value != defaults[key])
    }
    if layer.type == "ReLU" and not changed:
        return "relu", ()
    arguments = ", ".join(f"{key}={float(value):.4g}" for key, value in changed.items())
    return f"{layer.type}({arguments})", tuple((key, float(value)) for key, value in changed.items())
