"""How each layer type of a design transforms its input's shape, and what weights it has.

One function per layer type, in Keras' shape arithmetic and defaults:
``rule(settings, input shape (or shapes, for a merge), input names) ->
(output shape, parameter count, config, {weight name: shape})``.
``core.layer_specs`` names each type's rule; ``core.design_rules`` checks a
layer's type, arguments and inputs and calls it. A layer that cannot be
built raises ``LayerProblem`` with the reason, which the design records on
that layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .numpy_layers import ACTIVATIONS, two_sided

Shape = tuple[int, ...]
# What a rule returns: (output shape, parameter count, config, {weight name: shape}).
RuleResult = tuple[Shape, int, dict[str, Any], dict[str, Shape]]
# rule(settings, input shape (a list of them for a merge), input names) -> RuleResult.
ShapeRule = Callable[["Settings", Any, Sequence[str]], RuleResult]

PADDINGS = ("valid", "same")
# Arguments that say how weights are made or trained: accepted (Keras takes them), ignored here.
IGNORED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
IGNORED_ARGUMENTS = ("trainable", "dtype", "momentum", "seed", "noise_shape")


class LayerProblem(Exception):
    """A reason a layer is invalid; ``infer_shapes`` records it on the layer."""


class Settings:
    """A layer's keyword arguments, read with Keras' defaults and checked."""

    def __init__(self, kwargs: Mapping[str, Any]) -> None:
        self.kwargs = kwargs

    def get(self, key: str, default: Any = None) -> Any:
        return self.kwargs.get(key, default)

    def positive(self, key: str, default: int | None = None) -> int:
        value = self.kwargs.get(key, default)
        if value is None:
            raise LayerProblem(f"needs {key!r}, a positive integer")
        if not is_positive_int(value):
            raise LayerProblem(f"{key} must be a positive integer, got {value!r}")
        return int(value)

    def pair(self, key: str, default: int | None = None) -> list[int]:
        value = self.kwargs.get(key, default)
        if value is None:
            raise LayerProblem(f"needs {key!r}, a positive integer or two of them")
        pair = [value, value] if not isinstance(value, (list, tuple)) else list(value)
        if len(pair) != 2 or not all(is_positive_int(v) for v in pair):
            raise LayerProblem(f"{key} must be a positive integer or two of them, got {value!r}")
        return [int(v) for v in pair]

    def padding(self) -> str:
        value = self.kwargs.get("padding", "valid")
        if not isinstance(value, str) or value.lower() not in PADDINGS:
            raise LayerProblem(f"padding must be 'valid' or 'same', got {value!r}")
        return value.lower()

    def boolean(self, key: str, default: bool) -> bool:
        value = self.kwargs.get(key, default)
        if not isinstance(value, bool):
            raise LayerProblem(f"{key} must be true or false, got {value!r}")
        return value

    def number(
        self, key: str, default: float | None = None, low: float | None = None, high: float | None = None
    ) -> float:
        value = self.kwargs.get(key, default)
        if value is None and default is None and key not in self.kwargs:
            raise LayerProblem(f"needs {key!r}, a number")
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or (low is not None and value < low)
            or (high is not None and value > high)
        ):
            bounds = (
                f" from {low} to {high}"
                if low is not None and high is not None
                else (f" of at least {low}" if low is not None else "")
            )
            raise LayerProblem(f"{key} must be a number{bounds}, got {value!r}")
        return value

    def activation(self, key: str = "activation", default: str | None = None) -> str:
        value = self.kwargs.get(key, default)
        name = "linear" if value is None else value
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise LayerProblem(
                f"{key} {value!r} is not one the numpy forward pass computes; it computes "
                f"{', '.join(sorted(ACTIVATIONS))}"
            )
        return name

    def channels_last(self) -> str:
        value = self.kwargs.get("data_format")
        if value not in (None, "channels_last"):
            raise LayerProblem(f"data_format must be 'channels_last', got {value!r}")
        return "channels_last"

    def axis(self, ndim: int, key: str = "axis") -> int:
        value = self.kwargs.get(key, -1)
        if isinstance(value, bool) or not isinstance(value, int) or not -ndim <= value < ndim:
            raise LayerProblem(f"{key} must be an axis of its {ndim}D input (-{ndim} to {ndim - 1}), got {value!r}")
        return value


def _window(size: int, extent: int, stride: int, padding: str) -> int:
    """Output size along one axis of a sliding window (numpy_layers.window_extent)."""
    if padding == "valid":
        return (size - extent) // stride + 1
    return -(-size // stride)


def _check_window(what: str, window: Sequence[int], dilation: Sequence[int], shape: Shape, padding: str) -> list[int]:
    extents = [(window[a] - 1) * dilation[a] + 1 for a in (0, 1)]
    if padding == "valid" and (extents[0] > shape[0] or extents[1] > shape[1]):
        spans = "" if dilation == [1, 1] else f" with dilation {shape_text(dilation)} spans {shape_text(extents)},"
        raise LayerProblem(
            f"{what} {shape_text(window)}{spans} is larger than its {shape_text(shape[:2])} input with padding 'valid'"
        )
    return extents


def _conv_common(s: Settings, shape: Shape) -> tuple[list[int], list[int], list[int], str]:
    kernel = s.pair("kernel_size")
    strides = s.pair("strides", 1)
    dilation = s.pair("dilation_rate", 1)
    padding = s.padding()
    s.channels_last()
    if max(strides) > 1 and max(dilation) > 1:
        raise LayerProblem(
            f"strides {shape_text(strides)} and dilation_rate {shape_text(dilation)}: Keras "
            "allows strides above 1 or dilation above 1, not both"
        )
    return kernel, strides, dilation, padding


def _conv_shape(s: Settings, shape: Shape, name: str = "kernel") -> tuple[list[int], int, int, dict[str, Any]]:
    """The kernel, the output's rows and columns, and the window's part of the config (Keras' order)."""
    kernel, strides, dilation, padding = _conv_common(s, shape)
    extents = _check_window(name, kernel, dilation, shape, padding)
    rows, cols = (_window(shape[a], extents[a], strides[a], padding) for a in (0, 1))
    window = {
        "kernel_size": kernel,
        "strides": strides,
        "padding": padding,
        "data_format": "channels_last",
        "dilation_rate": dilation,
    }
    return kernel, rows, cols, window


def _convolution(s: Settings, output: Shape, weights: dict[str, Shape], config: dict[str, Any]) -> RuleResult:
    """A convolution's result: a bias per output channel unless ``use_bias`` is false, and the config ending
    in the activation and use_bias."""
    use_bias = s.boolean("use_bias", True)
    if use_bias:
        weights["bias"] = (output[-1],)
    config.update(activation=s.activation(), use_bias=use_bias)
    return output, _count(weights), config, weights


def conv2d(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    filters = s.positive("filters")
    groups = s.positive("groups", 1)
    kernel, rows, cols, window = _conv_shape(s, shape)
    channels = shape[2]
    if channels % groups or filters % groups:
        raise LayerProblem(
            f"groups {groups} must divide both the input's {channels} channels and the {filters} filters"
        )
    weights: dict[str, Shape] = {"kernel": (*kernel, channels // groups, filters)}
    return _convolution(s, (rows, cols, filters), weights, {"filters": filters, **window, "groups": groups})


def depthwise_conv2d(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    multiplier = s.positive("depth_multiplier", 1)
    kernel, rows, cols, window = _conv_shape(s, shape)
    weights: dict[str, Shape] = {"kernel": (*kernel, shape[2], multiplier)}
    return _convolution(s, (rows, cols, shape[2] * multiplier), weights, {**window, "depth_multiplier": multiplier})


def separable_conv2d(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    filters = s.positive("filters")
    multiplier = s.positive("depth_multiplier", 1)
    kernel, rows, cols, window = _conv_shape(s, shape)
    weights: dict[str, Shape] = {
        "depthwise_kernel": (*kernel, shape[2], multiplier),
        "pointwise_kernel": (1, 1, shape[2] * multiplier, filters),
    }
    config = {"filters": filters, **window, "depth_multiplier": multiplier}
    return _convolution(s, (rows, cols, filters), weights, config)


def conv2d_transpose(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    filters = s.positive("filters")
    kernel, strides, dilation, padding = _conv_common(s, shape)
    output_padding = s.get("output_padding")
    if output_padding is not None:
        pair = [output_padding] * 2 if not isinstance(output_padding, (list, tuple)) else list(output_padding)
        if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair):
            raise LayerProblem(f"output_padding must be a non-negative integer or two of them, got {output_padding!r}")
        if any(pair[a] >= strides[a] for a in (0, 1)):
            raise LayerProblem(f"output_padding {shape_text(pair)} must be smaller than strides {shape_text(strides)}")
        output_padding = pair
    sizes = []
    for a in (0, 1):
        extent, stride, size = (kernel[a] - 1) * dilation[a] + 1, strides[a], shape[a]
        extra = None if output_padding is None else output_padding[a]
        if padding == "valid":
            sizes.append((size - 1) * stride + extent + (max(extent, stride) - extent if extra is None else extra))
        else:
            sizes.append(size * stride if extra is None else (size - 1) * stride + extent % 2 + extra)
    weights: dict[str, Shape] = {"kernel": (*kernel, filters, shape[2])}
    config = {
        "filters": filters,
        "kernel_size": kernel,
        "strides": strides,
        "padding": padding,
        "output_padding": output_padding,
        "data_format": "channels_last",
        "dilation_rate": dilation,
    }
    return _convolution(s, (*sizes, filters), weights, config)


def pooling(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    pool = s.pair("pool_size", 2)
    strides = pool if s.get("strides") is None else s.pair("strides")
    padding = s.padding()
    s.channels_last()
    _check_window("pool window", pool, [1, 1], shape, padding)
    rows, cols = (_window(shape[a], pool[a], strides[a], padding) for a in (0, 1))
    config = {"pool_size": pool, "padding": padding, "strides": strides, "data_format": "channels_last"}
    return (rows, cols, shape[2]), 0, config, {}


def global_pooling(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    s.channels_last()
    keepdims = s.boolean("keepdims", False)
    out = (1, 1, shape[2]) if keepdims else (shape[2],)
    return out, 0, {"data_format": "channels_last", "keepdims": keepdims}, {}


def batch_normalization(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    axis = s.axis(len(shape))
    if axis % len(shape) != len(shape) - 1:
        raise LayerProblem(f"normalizes axis {axis}; the designer normalizes the last axis (channels) only")
    epsilon = s.number("epsilon", 1e-3, low=0)
    center, scale = s.boolean("center", True), s.boolean("scale", True)
    channels = shape[-1]
    weights: dict[str, Shape] = {}
    if scale:
        weights["gamma"] = (channels,)
    if center:
        weights["beta"] = (channels,)
    weights.update(moving_mean=(channels,), moving_variance=(channels,))
    config = {"axis": axis, "epsilon": epsilon, "center": center, "scale": scale}
    return shape, _count(weights), config, weights


def activation_layer(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    if "activation" not in s.kwargs:
        raise LayerProblem("needs 'activation', the name of an activation function")
    return shape, 0, {"activation": s.activation()}, {}


def relu(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    max_value = s.get("max_value")
    if max_value is not None:
        s.number("max_value", low=0)
    config = {
        "max_value": max_value,
        "negative_slope": s.number("negative_slope", 0.0, low=0),
        "threshold": s.number("threshold", 0.0, low=0),
    }
    return shape, 0, config, {}


def leaky_relu(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    return shape, 0, {"negative_slope": s.number("negative_slope", 0.3, low=0)}, {}


def softmax(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    return shape, 0, {"axis": s.axis(len(shape))}, {}


def dropout(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    return shape, 0, {"rate": s.number("rate", low=0, high=1)}, {}


def flatten(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    s.channels_last()
    return (int(np.prod(shape)),), 0, {"data_format": "channels_last"}, {}


def reshape(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    target = s.get("target_shape")
    if (
        not isinstance(target, (list, tuple))
        or not target
        or not all(isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1) for v in target)
        or list(target).count(-1) > 1
    ):
        raise LayerProblem(f"target_shape must be a list of positive integers (one may be -1), got {target!r}")
    size, known = int(np.prod(shape)), int(np.prod([v for v in target if v != -1]))
    if size % known or (-1 not in target and known != size):
        raise LayerProblem(f"cannot reshape {shape_text(shape)} ({size} values) to {shape_text(target)}")
    out = tuple(size // known if v == -1 else v for v in target)
    return out, 0, {"target_shape": list(target)}, {}


def zero_padding(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    s.channels_last()
    value = s.get("padding", 1)
    try:
        sides = two_sided(value)
        if (
            isinstance(value, bool)
            or len(sides) != 2
            or not all(isinstance(v, (int, np.integer)) and v >= 0 for pair in sides for v in pair)
        ):
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise LayerProblem(f"padding must be a non-negative integer, two of them or two pairs, got {value!r}") from None
    (top, bottom), (left, right) = sides
    config = {"padding": [[top, bottom], [left, right]], "data_format": "channels_last"}
    return (shape[0] + top + bottom, shape[1] + left + right, shape[2]), 0, config, {}


def rescaling(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    return shape, 0, {"scale": s.number("scale"), "offset": s.number("offset", 0.0)}, {}


def dense(s: Settings, shape: Shape, _names: Sequence[str]) -> RuleResult:
    units = s.positive("units")
    use_bias = s.boolean("use_bias", True)
    weights: dict[str, Shape] = {"kernel": (shape[0], units)}
    if use_bias:
        weights["bias"] = (units,)
    config = {"units": units, "activation": s.activation(), "use_bias": use_bias}
    return (units,), _count(weights), config, weights


def add(s: Settings, shapes: Sequence[Shape], names: Sequence[str]) -> RuleResult:
    if any(shape != shapes[0] for shape in shapes):
        listed = ", ".join(f"{name} {shape_text(shape)}" for name, shape in zip(names, shapes))
        raise LayerProblem(f"Add needs inputs of one shape, got {listed}")
    return shapes[0], 0, {}, {}


def concatenate(s: Settings, shapes: Sequence[Shape], names: Sequence[str]) -> RuleResult:
    listed = ", ".join(f"{name} {shape_text(shape)}" for name, shape in zip(names, shapes))
    if any(len(shape) != len(shapes[0]) for shape in shapes):
        raise LayerProblem(f"Concatenate needs inputs with the same number of axes, got {listed}")
    ndim = len(shapes[0])
    axis = s.axis(ndim) % ndim
    others = {tuple(size for a, size in enumerate(shape) if a != axis) for shape in shapes}
    if len(others) > 1:
        along = "channels" if axis == ndim - 1 else f"axis {axis}"
        raise LayerProblem(f"Concatenate joins along {along}; its inputs' other sizes must match, got {listed}")
    out = list(shapes[0])
    out[axis] = sum(shape[axis] for shape in shapes)
    return tuple(out), 0, {"axis": s.get("axis", -1)}, {}


# ---------------------------------------------------------------- small helpers


def _count(weight_shapes: Mapping[str, Shape]) -> int:
    return int(sum(int(np.prod(shape)) for shape in weight_shapes.values()))


def is_positive_int(value: object) -> bool | np.bool_:  # np.bool_ for a numpy integer
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def shape_text(shape: Iterable[int]) -> str:
    return "x".join(str(size) for size in shape)
