"""How each layer type of a design transforms its input's shape, what it takes and how many parameters it has.

The per-layer half of ``core/design.py``: Keras' shape arithmetic and
defaults, one function per layer type in
``RULES``. A layer that cannot be built raises ``LayerProblem`` with the
reason, which the design records on that layer.
"""

import math

import numpy as np

from .forward import ACTIVATIONS, two_sided
from .layer_types import KNOWN_LAYER_TYPES

DESIGNABLE_LAYER_TYPES = tuple(sorted(KNOWN_LAYER_TYPES - {"InputLayer"}))
PADDINGS = ("valid", "same")
FLAT_ONLY_TYPES = ("Dense",)  # refused after a 3D tensor (Keras would apply them to the last axis)
SPATIAL_TYPES = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "MaxPooling2D",
                 "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D")
MERGE_TYPES = ("Add", "Concatenate")
# Arguments that say how weights are made or trained: accepted (Keras takes them), ignored here.
IGNORED_SUFFIXES = ("_initializer", "_regularizer", "_constraint")
IGNORED_ARGUMENTS = ("trainable", "dtype", "momentum", "seed", "noise_shape")


class LayerProblem(Exception):
    """A reason a layer is invalid; ``infer_shapes`` records it on the layer."""


# ---------------------------------------------------------------- one layer

def check_type_and_arguments(info, entry):
    """The checks that need no input shape: a known type and arguments it takes. Returns the keyword arguments."""
    kwargs = {key: value for key, value in entry.items() if key not in ("type", "name", "inputs")}
    rule = RULES.get(info.type)
    if rule is None:
        raise LayerProblem(f"{info.type!r} is not a layer type the designer knows; it knows "
                           f"{', '.join(DESIGNABLE_LAYER_TYPES)}")
    allowed = rule[0]
    unknown = [key for key in kwargs if key not in allowed and key not in IGNORED_ARGUMENTS
               and not key.endswith(IGNORED_SUFFIXES)]
    if unknown:
        raise LayerProblem(f"{info.type} has no argument{'s' if len(unknown) > 1 else ''} "
                           f"{', '.join(repr(k) for k in unknown)}; it takes {', '.join(allowed) or 'none'}")
    return kwargs


def infer_layer(info, entry, sources):
    kwargs = check_type_and_arguments(info, entry)
    layer_type = info.type
    function = RULES[layer_type][1]
    shapes = [tuple(source.output_shape) for source in sources]
    if layer_type in MERGE_TYPES:
        if len(sources) < 2:
            raise LayerProblem(f"{layer_type} merges two or more inputs, it has {len(sources)}")
    else:
        if len(sources) != 1:
            raise LayerProblem(f"{layer_type} takes one input, it has {len(sources)} "
                               f"({', '.join(source.name for source in sources)})")
        shape = shapes[0]
        if layer_type in FLAT_ONLY_TYPES and len(shape) != 1:
            raise LayerProblem(f"{layer_type} needs a flat input; add Flatten after {sources[0].name} "
                               f"(its output is {shape_text(shape)})")
        if layer_type in SPATIAL_TYPES and len(shape) != 3:
            raise LayerProblem(f"{layer_type} needs an image-shaped input (height x width x channels), but "
                               f"{sources[0].name}'s output is {shape_text(shape)}")
    settings = _Settings(kwargs)
    info.output_shape, info.params, info.config, info.weight_shapes = function(
        settings, shapes if layer_type in MERGE_TYPES else shapes[0], [s.name for s in sources])
    info.output_shape = tuple(int(size) for size in info.output_shape)
    if any(size <= 0 for size in info.output_shape):
        raise LayerProblem(f"would output {shape_text(info.output_shape)}, which has an empty size")


class _Settings:
    """A layer's keyword arguments, read with Keras' defaults and checked."""

    def __init__(self, kwargs):
        self.kwargs = kwargs

    def get(self, key, default=None):
        return self.kwargs.get(key, default)

    def positive(self, key, default=None):
        value = self.kwargs.get(key, default)
        if value is None:
            raise LayerProblem(f"needs {key!r}, a positive integer")
        if not is_positive_int(value):
            raise LayerProblem(f"{key} must be a positive integer, got {value!r}")
        return int(value)

    def pair(self, key, default=None):
        value = self.kwargs.get(key, default)
        if value is None:
            raise LayerProblem(f"needs {key!r}, a positive integer or two of them")
        pair = [value, value] if not isinstance(value, (list, tuple)) else list(value)
        if len(pair) != 2 or not all(is_positive_int(v) for v in pair):
            raise LayerProblem(f"{key} must be a positive integer or two of them, got {value!r}")
        return [int(v) for v in pair]

    def padding(self):
        value = self.kwargs.get("padding", "valid")
        if not isinstance(value, str) or value.lower() not in PADDINGS:
            raise LayerProblem(f"padding must be 'valid' or 'same', got {value!r}")
        return value.lower()

    def boolean(self, key, default):
        value = self.kwargs.get(key, default)
        if not isinstance(value, bool):
            raise LayerProblem(f"{key} must be true or false, got {value!r}")
        return value

    def number(self, key, default=None, low=None, high=None):
        value = self.kwargs.get(key, default)
        if value is None and default is None and key not in self.kwargs:
            raise LayerProblem(f"needs {key!r}, a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (low is not None and value < low) or (high is not None and value > high):
            bounds = f" from {low} to {high}" if low is not None and high is not None else \
                (f" of at least {low}" if low is not None else "")
            raise LayerProblem(f"{key} must be a number{bounds}, got {value!r}")
        return value

    def activation(self, key="activation", default=None):
        value = self.kwargs.get(key, default)
        name = "linear" if value is None else value
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise LayerProblem(f"{key} {value!r} is not one the numpy forward pass computes; it computes "
                               f"{', '.join(sorted(ACTIVATIONS))}")
        return name

    def channels_last(self):
        value = self.kwargs.get("data_format")
        if value not in (None, "channels_last"):
            raise LayerProblem(f"data_format must be 'channels_last', got {value!r}")
        return "channels_last"

    def axis(self, ndim, key="axis"):
        value = self.kwargs.get(key, -1)
        if isinstance(value, bool) or not isinstance(value, int) or not -ndim <= value < ndim:
            raise LayerProblem(f"{key} must be an axis of its {ndim}D input (-{ndim} to {ndim - 1}), got {value!r}")
        return value


def _window(size, extent, stride, padding):
    """Output size along one axis of a sliding window (forward.py's rule)."""
    if padding == "valid":
        return (size - extent) // stride + 1
    return -(-size // stride)


def _check_window(what, window, dilation, shape, padding):
    extents = [(window[a] - 1) * dilation[a] + 1 for a in (0, 1)]
    if padding == "valid" and (extents[0] > shape[0] or extents[1] > shape[1]):
        spans = "" if dilation == [1, 1] else f" with dilation {shape_text(dilation)} spans " \
                                              f"{shape_text(extents)},"
        raise LayerProblem(f"{what} {shape_text(window)}{spans} is larger than its {shape_text(shape[:2])} input "
                           f"with padding 'valid'")
    return extents


def _conv_common(s, shape):
    kernel = s.pair("kernel_size")
    strides = s.pair("strides", 1)
    dilation = s.pair("dilation_rate", 1)
    padding = s.padding()
    s.channels_last()
    if max(strides) > 1 and max(dilation) > 1:
        raise LayerProblem(f"strides {shape_text(strides)} and dilation_rate {shape_text(dilation)}: Keras "
                           "allows strides above 1 or dilation above 1, not both")
    return kernel, strides, dilation, padding


def _conv_shape(s, shape, name="kernel"):
    kernel, strides, dilation, padding = _conv_common(s, shape)
    extents = _check_window(name, kernel, dilation, shape, padding)
    rows, cols = (_window(shape[a], extents[a], strides[a], padding) for a in (0, 1))
    return kernel, strides, dilation, padding, rows, cols


def _conv2d(s, shape, _names):
    filters = s.positive("filters")
    groups = s.positive("groups", 1)
    kernel, strides, dilation, padding, rows, cols = _conv_shape(s, shape)
    channels = shape[2]
    if channels % groups or filters % groups:
        raise LayerProblem(f"groups {groups} must divide both the input's {channels} channels and the "
                           f"{filters} filters")
    use_bias = s.boolean("use_bias", True)
    weights = {"kernel": (*kernel, channels // groups, filters)}
    if use_bias:
        weights["bias"] = (filters,)
    config = {"filters": filters, "kernel_size": kernel, "strides": strides, "padding": padding,
              "data_format": "channels_last", "dilation_rate": dilation, "groups": groups,
              "activation": s.activation(), "use_bias": use_bias}
    return (rows, cols, filters), _count(weights), config, weights


def _depthwise(s, shape, _names):
    multiplier = s.positive("depth_multiplier", 1)
    kernel, strides, dilation, padding, rows, cols = _conv_shape(s, shape)
    use_bias = s.boolean("use_bias", True)
    weights = {"kernel": (*kernel, shape[2], multiplier)}
    if use_bias:
        weights["bias"] = (shape[2] * multiplier,)
    config = {"kernel_size": kernel, "strides": strides, "padding": padding, "data_format": "channels_last",
              "dilation_rate": dilation, "depth_multiplier": multiplier, "activation": s.activation(),
              "use_bias": use_bias}
    return (rows, cols, shape[2] * multiplier), _count(weights), config, weights


def _separable(s, shape, _names):
    filters = s.positive("filters")
    multiplier = s.positive("depth_multiplier", 1)
    kernel, strides, dilation, padding, rows, cols = _conv_shape(s, shape)
    use_bias = s.boolean("use_bias", True)
    weights = {"depthwise_kernel": (*kernel, shape[2], multiplier),
               "pointwise_kernel": (1, 1, shape[2] * multiplier, filters)}
    if use_bias:
        weights["bias"] = (filters,)
    config = {"filters": filters, "kernel_size": kernel, "strides": strides, "padding": padding,
              "data_format": "channels_last", "dilation_rate": dilation, "depth_multiplier": multiplier,
              "activation": s.activation(), "use_bias": use_bias}
    return (rows, cols, filters), _count(weights), config, weights


def _transpose(s, shape, _names):
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
    use_bias = s.boolean("use_bias", True)
    weights = {"kernel": (*kernel, filters, shape[2])}
    if use_bias:
        weights["bias"] = (filters,)
    config = {"filters": filters, "kernel_size": kernel, "strides": strides, "padding": padding,
              "output_padding": output_padding, "data_format": "channels_last", "dilation_rate": dilation,
              "activation": s.activation(), "use_bias": use_bias}
    return (*sizes, filters), _count(weights), config, weights


def _pooling(s, shape, _names):
    pool = s.pair("pool_size", 2)
    strides = pool if s.get("strides") is None else s.pair("strides")
    padding = s.padding()
    s.channels_last()
    _check_window("pool window", pool, [1, 1], shape, padding)
    rows, cols = (_window(shape[a], pool[a], strides[a], padding) for a in (0, 1))
    config = {"pool_size": pool, "padding": padding, "strides": strides, "data_format": "channels_last"}
    return (rows, cols, shape[2]), 0, config, {}


def _global_pooling(s, shape, _names):
    s.channels_last()
    keepdims = s.boolean("keepdims", False)
    out = (1, 1, shape[2]) if keepdims else (shape[2],)
    return out, 0, {"data_format": "channels_last", "keepdims": keepdims}, {}


def _batch_normalization(s, shape, _names):
    axis = s.axis(len(shape))
    if axis % len(shape) != len(shape) - 1:
        raise LayerProblem(f"normalizes axis {axis}; the designer normalizes the last axis (channels) only")
    epsilon = s.number("epsilon", 1e-3, low=0)
    center, scale = s.boolean("center", True), s.boolean("scale", True)
    channels = shape[-1]
    weights = {}
    if scale:
        weights["gamma"] = (channels,)
    if center:
        weights["beta"] = (channels,)
    weights.update(moving_mean=(channels,), moving_variance=(channels,))
    config = {"axis": axis, "epsilon": epsilon, "center": center, "scale": scale}
    return shape, _count(weights), config, weights


def _activation_layer(s, shape, _names):
    if "activation" not in s.kwargs:
        raise LayerProblem("needs 'activation', the name of an activation function")
    return shape, 0, {"activation": s.activation()}, {}


def _relu(s, shape, _names):
    max_value = s.get("max_value")
    if max_value is not None:
        s.number("max_value", low=0)
    config = {"max_value": max_value, "negative_slope": s.number("negative_slope", 0.0, low=0),
              "threshold": s.number("threshold", 0.0, low=0)}
    return shape, 0, config, {}


def _leaky_relu(s, shape, _names):
    return shape, 0, {"negative_slope": s.number("negative_slope", 0.3, low=0)}, {}


def _softmax(s, shape, _names):
    return shape, 0, {"axis": s.axis(len(shape))}, {}


def _dropout(s, shape, _names):
    return shape, 0, {"rate": s.number("rate", low=0, high=1)}, {}


def _flatten(s, shape, _names):
    s.channels_last()
    return (int(np.prod(shape)),), 0, {"data_format": "channels_last"}, {}


def _reshape(s, shape, _names):
    target = s.get("target_shape")
    if not isinstance(target, (list, tuple)) or not target or not all(
            isinstance(v, int) and not isinstance(v, bool) and (v > 0 or v == -1) for v in target) \
            or list(target).count(-1) > 1:
        raise LayerProblem(f"target_shape must be a list of positive integers (one may be -1), got {target!r}")
    size, known = int(np.prod(shape)), int(np.prod([v for v in target if v != -1]))
    if size % known or (-1 not in target and known != size):
        raise LayerProblem(f"cannot reshape {shape_text(shape)} ({size} values) to {shape_text(target)}")
    out = tuple(size // known if v == -1 else v for v in target)
    return out, 0, {"target_shape": list(target)}, {}


def _zero_padding(s, shape, _names):
    s.channels_last()
    value = s.get("padding", 1)
    try:
        sides = two_sided(value)
        if isinstance(value, bool) or len(sides) != 2 or not all(
                isinstance(v, (int, np.integer)) and v >= 0 for pair in sides for v in pair):
            raise ValueError
    except (TypeError, ValueError, IndexError):
        raise LayerProblem(f"padding must be a non-negative integer, two of them or two pairs, got {value!r}") from None
    (top, bottom), (left, right) = sides
    config = {"padding": [[top, bottom], [left, right]], "data_format": "channels_last"}
    return (shape[0] + top + bottom, shape[1] + left + right, shape[2]), 0, config, {}


def _rescaling(s, shape, _names):
    return shape, 0, {"scale": s.number("scale"), "offset": s.number("offset", 0.0)}, {}


def _dense(s, shape, _names):
    units = s.positive("units")
    use_bias = s.boolean("use_bias", True)
    weights = {"kernel": (shape[0], units)}
    if use_bias:
        weights["bias"] = (units,)
    config = {"units": units, "activation": s.activation(), "use_bias": use_bias}
    return (units,), _count(weights), config, weights


def _add(s, shapes, names):
    if any(shape != shapes[0] for shape in shapes):
        listed = ", ".join(f"{name} {shape_text(shape)}" for name, shape in zip(names, shapes))
        raise LayerProblem(f"Add needs inputs of one shape, got {listed}")
    return shapes[0], 0, {}, {}


def _concatenate(s, shapes, names):
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


_CONV_ARGS = ("kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation", "use_bias")
RULES = {
    "Conv2D": (("filters", *_CONV_ARGS, "groups"), _conv2d),
    "DepthwiseConv2D": ((*_CONV_ARGS, "depth_multiplier"), _depthwise),
    "SeparableConv2D": (("filters", *_CONV_ARGS, "depth_multiplier"), _separable),
    "Conv2DTranspose": (("filters", *_CONV_ARGS, "output_padding"), _transpose),
    "MaxPooling2D": (("pool_size", "strides", "padding", "data_format"), _pooling),
    "AveragePooling2D": (("pool_size", "strides", "padding", "data_format"), _pooling),
    "GlobalAveragePooling2D": (("data_format", "keepdims"), _global_pooling),
    "GlobalMaxPooling2D": (("data_format", "keepdims"), _global_pooling),
    "BatchNormalization": (("axis", "epsilon", "center", "scale"), _batch_normalization),
    "Activation": (("activation",), _activation_layer),
    "ReLU": (("max_value", "negative_slope", "threshold"), _relu),
    "LeakyReLU": (("negative_slope",), _leaky_relu),
    "Softmax": (("axis",), _softmax),
    "Dropout": (("rate",), _dropout),
    "Flatten": (("data_format",), _flatten),
    "Reshape": (("target_shape",), _reshape),
    "ZeroPadding2D": (("padding", "data_format"), _zero_padding),
    "Rescaling": (("scale", "offset"), _rescaling),
    "Dense": (("units", "activation", "use_bias"), _dense),
    "Add": ((), _add),
    "Concatenate": (("axis",), _concatenate),
}
assert set(RULES) == set(DESIGNABLE_LAYER_TYPES)


# ---------------------------------------------------------------- small helpers

def _count(weight_shapes):
    return int(sum(int(np.prod(shape)) for shape in weight_shapes.values()))


def is_positive_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0


def shape_text(shape):
    return "x".join(str(size) for size in shape)
