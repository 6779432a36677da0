"""Every layer type's computation in numpy, the way Keras does it in inference mode.

Inside Blender there is numpy but no TensorFlow, so each function here
recomputes one layer's output from its config, weights and inputs
(channels last, dropout off, batch normalization from its moving
statistics), in float32: ``function(config, weights, inputs) -> output``.
``core.layer_specs`` names the function of each layer type and
``core.forward`` walks a bundle's graph with them. ``ACTIVATIONS`` maps
Keras' activation names to their functions.

Convolutions loop over the kernel's taps (9 for a 3x3 kernel), each one
matrix product over every pixel at once: as fast as one big im2col product
here, without its memory (a VGG16 layer's im2col is hundreds of MB per image).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Config = Mapping[str, Any]  # a layer's config, as a bundle stores it
Weights = Mapping[str, np.ndarray]  # {weight name: array}
# A layer's computation: function(config, weights, [input arrays]) -> output.
LayerFunction = Callable[[Config, Weights, Sequence[np.ndarray]], np.ndarray]
Activation = Callable[[np.ndarray], np.ndarray]

ACTIVATIONS: dict[str, Activation] = {}  # Keras activation name -> function(x) -> output


class ComputeProblem(Exception):
    """Raised inside a layer function; ``forward.compute_layer`` names the layer."""


def activation(name: str | None, x: np.ndarray) -> np.ndarray:
    """Keras' activation ``name`` (a string, None meaning linear) applied to ``x``."""
    function = ACTIVATIONS.get("linear" if name is None else name)
    if function is None:
        raise ComputeProblem(
            f"uses the activation {name!r}, which the numpy forward pass cannot compute; "
            f"it computes {', '.join(sorted(ACTIVATIONS))}"
        )
    return function(x)


# ---------------------------------------------------------------- activations


def _sigmoid(x: np.ndarray) -> np.ndarray:
    small = np.exp(-np.abs(x))  # never overflows, unlike exp(-x) for very negative x
    return np.where(x >= 0, 1 / (1 + small), small / (1 + small))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0), x)


def _softmax(x: np.ndarray, axis: int | tuple[int, ...] = -1) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _erf(x: np.ndarray) -> np.ndarray:
    # numpy has no erf; Abramowitz & Stegun 7.1.26 is within 1.5e-7 of it, in float64.
    x = np.asarray(x, dtype=np.float64)
    t = 1 / (1 + 0.3275911 * np.abs(x))
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1 - poly * np.exp(-x * x))


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return _relu6(x + 3) / 6


def _elu(x: np.ndarray, alpha: float | np.float32 = 1.0) -> np.ndarray:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _sparsemax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    ordered = -np.sort(-x, axis=axis)
    cumulative = np.cumsum(ordered, axis=axis)
    ranks_shape = [1] * x.ndim
    ranks_shape[axis] = -1
    ranks = np.arange(1, x.shape[axis] + 1, dtype=x.dtype).reshape(ranks_shape)
    support = ordered - (cumulative - 1) / ranks > 0
    count = np.sum(support, axis=axis, keepdims=True)
    tau = (np.sum(np.where(support, cumulative, 0), axis=axis, keepdims=True) - 1) / count
    return np.maximum(x - tau, 0)


def _glu(x: np.ndarray, axis: int = -1) -> np.ndarray:
    first, second = np.split(x, 2, axis=axis)
    return first * _sigmoid(second)


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

ACTIVATIONS.update(
    {
        "linear": lambda x: x,
        "relu": lambda x: np.maximum(x, 0),
        "relu6": _relu6,
        "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
        "elu": _elu,
        "selu": lambda x: SELU_SCALE * _elu(x, SELU_ALPHA),
        "celu": lambda x: np.maximum(x, 0) + np.expm1(np.minimum(x, 0)),
        "sigmoid": _sigmoid,
        "hard_sigmoid": _hard_sigmoid,
        "sparse_sigmoid": lambda x: np.clip(0.5 * (x + 1), 0, 1),
        "log_sigmoid": lambda x: -_softplus(-x),
        "tanh": np.tanh,
        "hard_tanh": lambda x: np.clip(x, -1, 1),
        "tanh_shrink": lambda x: x - np.tanh(x),
        "soft_shrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)),
        "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0),
        "softplus": _softplus,
        "softsign": lambda x: x / (1 + np.abs(x)),
        "squareplus": lambda x: (x + np.sqrt(x * x + 4)) / 2,
        "sparse_plus": lambda x: np.where(x <= -1, 0, np.where(x < 1, 0.25 * (x + 1) ** 2, x)),
        "silu": lambda x: x * _sigmoid(x),
        "swish": lambda x: x * _sigmoid(x),
        "hard_silu": lambda x: x * _hard_sigmoid(x),
        "hard_swish": lambda x: x * _hard_sigmoid(x),
        "gelu": lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2))),  # Keras' gelu is the exact one by default
        "mish": lambda x: x * np.tanh(_softplus(x)),
        "exponential": np.exp,
        "softmax": _softmax,
        "log_softmax": _log_softmax,
        "sparsemax": _sparsemax,
        "glu": _glu,
    }
)


# ---------------------------------------------------------------- config helpers


def _required(config: Config, key: str) -> Any:
    if key not in config:
        raise ComputeProblem(f"has no {key!r} in its config, which the numpy forward pass needs")
    return config[key]


def is_scalar(value: object) -> bool:
    """``np.isscalar`` as a plain bool, for type checking only.

    numpy's stubs narrow a value ``np.isscalar`` accepts to any scalar type (str, complex, ...),
    which ``int()`` refuses; the config values and positions read here are real numbers.
    """
    return np.isscalar(value)


def pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if is_scalar(value) else (int(value[0]), int(value[1]))


def _channels_last(config: Config) -> None:
    if config.get("data_format", "channels_last") != "channels_last":
        raise ComputeProblem(
            f"uses data_format {config['data_format']!r}; the numpy forward pass computes channels_last layers only"
        )


def _only_input(inputs: Sequence[np.ndarray]) -> np.ndarray:
    if len(inputs) != 1:
        raise ComputeProblem(f"takes {len(inputs)} inputs where one is expected")
    return inputs[0]


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """Keras' ``axis`` (an int, a list of them, or None for none) as sorted non-negative axes."""
    if axis is None:
        return ()
    return tuple(sorted(int(a) % ndim for a in (axis if isinstance(axis, (list, tuple)) else [axis])))


def _bias_and_activation(config: Config, weights: Weights, values: np.ndarray) -> np.ndarray:
    if config.get("use_bias", True) and "bias" in weights:
        values = values + weights["bias"]
    return activation(config.get("activation", "linear"), values)


# ---------------------------------------------------------------- windows (convolution, pooling)


def window_extent(size: int, window: int, stride: int, padding: str) -> tuple[int, int, int]:
    """``(output size, padding before, padding after)`` along one axis, as TensorFlow pads."""
    if padding == "valid":
        return (size - window) // stride + 1, 0, 0
    if padding == "same":
        count = -(-size // stride)
        total = max((count - 1) * stride + window - size, 0)
        return count, total // 2, total - total // 2
    raise ComputeProblem(f"uses padding {padding!r}; the numpy forward pass knows 'valid' and 'same'")


def _padded(
    x: np.ndarray, window: Sequence[int], strides: Sequence[int], padding: str, fill: float = 0.0
) -> tuple[np.ndarray, tuple[int, int]]:
    """``x`` padded for a sliding ``window`` (dilation included) and the output's (height, width)."""
    rows, top, bottom = window_extent(x.shape[1], window[0], strides[0], padding)
    cols, left, right = window_extent(x.shape[2], window[1], strides[1], padding)
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    return x, (rows, cols)


def _taps(
    x: np.ndarray, kernel_size: Sequence[int], strides: Sequence[int], dilation: Sequence[int], padding: str
) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
    """Yield ``((i, j), view)``: the input every output pixel sees through kernel tap (i, j)."""
    extent = [(kernel_size[axis] - 1) * dilation[axis] + 1 for axis in (0, 1)]
    x, (rows, cols) = _padded(x, extent, strides, padding)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            top, left = i * dilation[0], j * dilation[1]
            yield (
                (i, j),
                x[
                    :,
                    top : top + (rows - 1) * strides[0] + 1 : strides[0],
                    left : left + (cols - 1) * strides[1] + 1 : strides[1],
                ],
            )


def _conv2d(
    x: np.ndarray, kernel: np.ndarray, strides: Sequence[int], padding: str, dilation: Sequence[int]
) -> np.ndarray:
    """Keras' Conv2D without bias: ``x`` (S, H, W, C), ``kernel`` (kh, kw, C, F)."""
    out: np.ndarray | None = None
    for (i, j), view in _taps(x, kernel.shape[:2], strides, dilation, padding):
        product = np.ascontiguousarray(view).reshape(-1, kernel.shape[2]) @ kernel[i, j]
        if out is None:
            out, shape = product, view.shape[:3] + (kernel.shape[3],)
        else:
            out += product
    assert out is not None, "a kernel has at least one tap"
    return out.reshape(shape)


def _depthwise_conv2d(
    x: np.ndarray, kernel: np.ndarray, strides: Sequence[int], padding: str, dilation: Sequence[int]
) -> np.ndarray:
    """Keras' DepthwiseConv2D without bias: ``kernel`` (kh, kw, C, M) -> output channel c * M + m."""
    out: np.ndarray | None = None
    for (i, j), view in _taps(x, kernel.shape[:2], strides, dilation, padding):
        product = view[..., np.newaxis] * kernel[i, j]
        if out is None:
            out = product
        else:
            out += product
    assert out is not None, "a kernel has at least one tap"
    return out.reshape(out.shape[:3] + (-1,))


def _conv_settings(config: Config) -> tuple[tuple[int, int], str, tuple[int, int]]:
    _channels_last(config)
    return (
        pair(config.get("strides", 1)),
        str(config.get("padding", "valid")).lower(),
        pair(config.get("dilation_rate", 1)),
    )


# ---------------------------------------------------------------- layers


def identity(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # Noise and dropout layers (and ConvNeXt's StochasticDepth, which drops paths) do nothing in inference mode.
    return _only_input(inputs)


def conv2d_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    strides, padding, dilation = _conv_settings(config)
    kernel = _required(weights, "kernel")
    groups = int(config.get("groups", 1))
    if groups == 1:
        out = _conv2d(x, kernel, strides, padding, dilation)
    else:
        per_group_in, per_group_out = x.shape[-1] // groups, kernel.shape[-1] // groups
        out = np.concatenate(
            [
                _conv2d(
                    x[..., g * per_group_in : (g + 1) * per_group_in],
                    kernel[..., g * per_group_out : (g + 1) * per_group_out],
                    strides,
                    padding,
                    dilation,
                )
                for g in range(groups)
            ],
            axis=-1,
        )
    return _bias_and_activation(config, weights, out)


def depthwise_conv2d_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    strides, padding, dilation = _conv_settings(config)
    kernel = weights.get("kernel", weights.get("depthwise_kernel"))
    if kernel is None:
        raise ComputeProblem("has no weight 'kernel', which the numpy forward pass needs")
    out = _depthwise_conv2d(_only_input(inputs), kernel, strides, padding, dilation)
    return _bias_and_activation(config, weights, out)


def separable_conv2d_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    strides, padding, dilation = _conv_settings(config)
    depthwise = _depthwise_conv2d(
        _only_input(inputs), _required(weights, "depthwise_kernel"), strides, padding, dilation
    )
    pointwise = _required(weights, "pointwise_kernel")
    out = depthwise @ pointwise.reshape(pointwise.shape[-2:])
    return _bias_and_activation(config, weights, out)


def conv2d_transpose_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # The gradient of a Conv2D whose input has this layer's output shape: every input pixel
    # scatters kernel * value onto the output, at stride spacing, then the padding is cut off.
    x = _only_input(inputs)
    strides, padding, dilation = _conv_settings(config)
    kernel = _required(weights, "kernel")  # (kh, kw, filters, input channels)
    output_padding = config.get("output_padding")
    output_padding = (None, None) if output_padding is None else pair(output_padding)
    samples, rows, cols, _ = x.shape
    sizes, befores, lengths = [], [], []
    for axis, size in ((0, rows), (1, cols)):
        extent = (kernel.shape[axis] - 1) * dilation[axis] + 1
        stride, extra = strides[axis], output_padding[axis]
        if padding == "valid":
            out_size = (size - 1) * stride + extent + (max(extent, stride) - extent if extra is None else extra)
        elif padding == "same":
            out_size = size * stride if extra is None else (size - 1) * stride + extent % 2 + extra
        else:
            raise ComputeProblem(f"uses padding {padding!r}; the numpy forward pass knows 'valid' and 'same'")
        before = 0 if padding == "valid" else max((size - 1) * stride + extent - out_size, 0) // 2
        sizes.append(out_size)
        befores.append(before)
        lengths.append(max((size - 1) * stride + extent, before + out_size))
    scattered = np.zeros((samples, lengths[0], lengths[1], kernel.shape[2]), dtype=np.float32)
    flat = x.reshape(-1, x.shape[-1])
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            top, left = i * dilation[0], j * dilation[1]
            scattered[
                :,
                top : top + (rows - 1) * strides[0] + 1 : strides[0],
                left : left + (cols - 1) * strides[1] + 1 : strides[1],
            ] += (flat @ kernel[i, j].T).reshape(samples, rows, cols, -1)
    out = scattered[:, befores[0] : befores[0] + sizes[0], befores[1] : befores[1] + sizes[1]]
    return _bias_and_activation(config, weights, out)


def _pool_settings(config: Config) -> tuple[tuple[int, int], tuple[int, int], str]:
    _channels_last(config)
    pool_size = pair(_required(config, "pool_size"))
    strides = config.get("strides")
    return pool_size, pool_size if strides is None else pair(strides), str(config.get("padding", "valid")).lower()


def _pool_windows(
    x: np.ndarray, pool_size: tuple[int, int], strides: tuple[int, int], padding: str, fill: float
) -> np.ndarray:
    padded, (rows, cols) = _padded(x, pool_size, strides, padding, fill)
    windows = sliding_window_view(padded, pool_size, axis=(1, 2))  # (S, H', W', C, ph, pw)
    return windows[:, : (rows - 1) * strides[0] + 1 : strides[0], : (cols - 1) * strides[1] + 1 : strides[1]]


def max_pooling(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    pool_size, strides, padding = _pool_settings(config)
    return _pool_windows(_only_input(inputs), pool_size, strides, padding, fill=-np.inf).max(axis=(-2, -1))


def average_pooling(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # With 'same' padding Keras (TensorFlow) divides by the number of real pixels in the window.
    x = _only_input(inputs)
    pool_size, strides, padding = _pool_settings(config)
    sums = _pool_windows(x, pool_size, strides, padding, fill=0.0).sum(axis=(-2, -1))
    ones = np.ones((1,) + x.shape[1:3] + (1,), dtype=np.float32)
    counts = _pool_windows(ones, pool_size, strides, padding, fill=0.0).sum(axis=(-2, -1))
    return sums / counts


def global_average_pooling(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    _channels_last(config)
    keepdims = bool(config.get("keepdims", False))
    # numpy's stubs take keepdims as a literal True or False only, not a bool known at run time.
    return _only_input(inputs).mean(axis=(1, 2), keepdims=keepdims)  # type: ignore[call-overload]


def global_max_pooling(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    _channels_last(config)
    keepdims = bool(config.get("keepdims", False))
    # numpy's stubs take keepdims as a literal True or False only, not a bool known at run time.
    return _only_input(inputs).max(axis=(1, 2), keepdims=keepdims)  # type: ignore[call-overload]


def _feature_axis(config: Config, x: np.ndarray) -> int:
    axis = config.get("axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise ComputeProblem(f"normalizes over axes {axis}; the numpy forward pass handles one axis")
        axis = axis[0]
    return int(axis) % x.ndim


def batch_normalization(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    axis = _feature_axis(config, x)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    scale = 1 / np.sqrt(_required(weights, "moving_variance") + np.float32(config.get("epsilon", 1e-3)))
    if config.get("scale", True) and "gamma" in weights:
        scale = scale * weights["gamma"]
    shift = -_required(weights, "moving_mean") * scale
    if config.get("center", True) and "beta" in weights:
        shift = shift + weights["beta"]
    return x * scale.reshape(shape) + shift.reshape(shape)


def layer_normalization(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    axes = _axes(config.get("axis", -1), x.ndim)
    scale = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + np.float32(config.get("epsilon", 1e-3)))
    shape = [x.shape[a] if a in axes else 1 for a in range(x.ndim)]
    rms_scaling = config.get("rms_scaling", False)
    # Keras' rms_scaling divides by the standard deviation but neither centres nor shifts.
    out = x * scale if rms_scaling else (x - x.mean(axis=axes, keepdims=True)) * scale
    if config.get("scale", True) and "gamma" in weights:
        out = out * weights["gamma"].reshape(shape)
    if config.get("center", True) and "beta" in weights and not rms_scaling:
        out = out + weights["beta"].reshape(shape)
    return out


def rms_normalization(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    axes = _axes(config.get("axis", -1), x.ndim)
    out = x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + np.float32(config.get("epsilon", 1e-7)))
    if "scale" in weights:
        out = out * weights["scale"].reshape([x.shape[a] if a in axes else 1 for a in range(x.ndim)])
    return out


def normalization(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # Keras' preprocessing Normalization: its mean and variance are weights once adapted,
    # or config values (aligned right to left with the kept axes) when given when it was made.
    x = _only_input(inputs)
    kept = _axes(config.get("axis", -1), x.ndim)
    shape = [x.shape[d] if d in kept else 1 for d in range(x.ndim)]
    if "mean" in weights and "variance" in weights:
        mean, variance = weights["mean"].reshape(shape), weights["variance"].reshape(shape)
    else:
        mean, variance = (np.asarray(_required(config, key), dtype=np.float32) for key in ("mean", "variance"))
        if mean.ndim:
            aligned = [1] * x.ndim
            for position in range(1, mean.ndim + 1):
                aligned[kept[-position]] = mean.shape[-position]
            mean, variance = mean.reshape(aligned), variance.reshape(aligned)
    spread = np.maximum(np.sqrt(variance), np.float32(1e-7))  # Keras' backend epsilon
    return mean + x * spread if config.get("invert", False) else (x - mean) / spread


def activation_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return activation(_required(config, "activation"), _only_input(inputs))


def relu_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # As keras.activations.relu: x above the threshold, negative_slope * (x - threshold) below it.
    x = _only_input(inputs)
    negative_slope = float(config.get("negative_slope", 0.0) or 0.0)
    threshold = float(config.get("threshold", 0.0) or 0.0)
    max_value = config.get("max_value")
    out = np.where(x > threshold, x, 0) if threshold else np.maximum(x, 0)
    if max_value is not None:
        out = np.minimum(out, np.float32(max_value))
    if negative_slope:
        out = out - negative_slope * np.maximum(threshold - x, 0)
    return out


def leaky_relu_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    slope = config.get("negative_slope", config.get("alpha", 0.3))  # Keras 2 called it alpha
    return np.where(x >= 0, x, np.float32(slope) * x)


def elu_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return _elu(_only_input(inputs), np.float32(config.get("alpha", 1.0)))


def prelu_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    return np.where(x >= 0, x, _required(weights, "alpha") * x)


def softmax_layer(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    axis = config.get("axis", -1)
    return _softmax(_only_input(inputs), axis=tuple(axis) if isinstance(axis, list) else axis)


def flatten(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    _channels_last(config)
    x = _only_input(inputs)
    return x.reshape(len(x), -1)


def reshape(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    x = _only_input(inputs)
    return x.reshape(len(x), *_required(config, "target_shape"))


def permute(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return _only_input(inputs).transpose(0, *_required(config, "dims"))


def two_sided(value: Any) -> tuple[tuple[int, int], ...]:
    """Keras' (top, bottom), (left, right) from an int, a pair or a pair of pairs."""
    if is_scalar(value):
        return (int(value),) * 2, (int(value),) * 2
    return tuple((int(v),) * 2 if is_scalar(v) else (int(v[0]), int(v[1])) for v in value)


def zero_padding(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    _channels_last(config)
    rows, cols = two_sided(config.get("padding", 1))
    return np.pad(_only_input(inputs), ((0, 0), rows, cols, (0, 0)))


def cropping(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    _channels_last(config)
    x = _only_input(inputs)
    (top, bottom), (left, right) = two_sided(config.get("cropping", 0))
    return x[:, top : x.shape[1] - bottom, left : x.shape[2] - right]


def up_sampling(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    _channels_last(config)
    if config.get("interpolation", "nearest") != "nearest":
        raise ComputeProblem(
            f"uses {config['interpolation']!r} interpolation; the numpy forward pass computes 'nearest' only"
        )
    rows, cols = pair(config.get("size", 2))
    return _only_input(inputs).repeat(rows, axis=1).repeat(cols, axis=2)


def rescaling(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    scale = np.asarray(_required(config, "scale"), dtype=np.float32)
    offset = np.asarray(config.get("offset", 0.0), dtype=np.float32)
    return _only_input(inputs) * scale + offset


def dense(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return _bias_and_activation(config, weights, _only_input(inputs) @ _required(weights, "kernel"))


def layer_scale(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # ConvNeXt's (keras.applications): every channel times a learned factor, the layer's one weight.
    if len(weights) != 1:
        raise ComputeProblem(f"has the weights {sorted(weights)} where one vector of factors is expected")
    return _only_input(inputs) * next(iter(weights.values()))


def custom_scale(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    # InceptionResNetV2's (keras.applications) residual: the block's input plus its branch, scaled down.
    if len(inputs) != 2:
        raise ComputeProblem(f"takes {len(inputs)} inputs where two are expected")
    return inputs[0] + inputs[1] * np.float32(_required(config, "scale"))


Reduce = Callable[[Sequence[np.ndarray]], np.ndarray]  # a merge's inputs -> its output


def _merge(reduce: Reduce) -> LayerFunction:
    def merge(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
        if len(inputs) < 2:
            raise ComputeProblem(f"takes {len(inputs)} input where two or more are expected")
        return reduce(inputs)

    return merge


def _running(operation: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Reduce:
    def reduce(inputs: Sequence[np.ndarray]) -> np.ndarray:
        result = inputs[0]
        for values in inputs[1:]:
            result = operation(result, values)
        return result

    return reduce


MERGES: dict[str, LayerFunction] = {  # merge layer type -> function(config, weights, inputs)
    "Add": _merge(_running(np.add)),
    "Subtract": _merge(lambda inputs: inputs[0] - inputs[1]),
    "Multiply": _merge(_running(np.multiply)),
    "Average": _merge(lambda inputs: _running(np.add)(inputs) / np.float32(len(inputs))),
    "Maximum": _merge(_running(np.maximum)),
    "Minimum": _merge(_running(np.minimum)),
}


def _operation(function: Callable[..., Any]) -> LayerFunction:
    """A keras.ops operation, computed from its recorded call: inputs ``{"input": i}`` and constants."""

    def compute(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
        if config.get("kwargs"):
            raise ComputeProblem(
                f"is called with the keyword arguments {sorted(config['kwargs'])}, which the numpy "
                "forward pass does not take"
            )
        return function(*(_operand(value, inputs) for value in _required(config, "args")))

    return compute


def _operand(value: Any, inputs: Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(value, dict) and isinstance(value.get("input"), int):
        return inputs[value["input"]]
    if isinstance(value, (int, float, list)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float32)
    raise ComputeProblem(f"is called with the argument {value!r}, which the numpy forward pass cannot use")


# The operations arithmetic on symbolic tensors records (x + 3, x * y, -x), by keras.ops class name;
# see layer_specs.OPERATION_TYPE_PREFIX.
OPERATIONS = {
    name: _operation(function)
    for name, function in {
        "Add": np.add,
        "Subtract": np.subtract,
        "Multiply": np.multiply,
        "Divide": np.true_divide,
        "TrueDivide": np.true_divide,
        "Maximum": np.maximum,
        "Minimum": np.minimum,
        "Negative": np.negative,
    }.items()
}


def concatenate(config: Config, weights: Weights, inputs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(inputs, axis=int(config.get("axis", -1)))
