"""Inspection of windowed layers: convolutions (plain, grouped, depthwise, separable, transposed) and poolings.

Each function takes ``(layer, inputs, weights, common, top)`` (``inputs``:
the input layers' outputs for one sample, without the sample axis) and
returns an ``Inspection``. Windows are placed as ``core.numpy_layers`` places
them: its padding arithmetic (``window_extent``) is the one used here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .errors import BlenderCNNError
from .forward import compute_layer
from .inspection_record import (
    AVERAGE_POOLING,
    CONVOLUTION,
    GLOBAL_AVERAGE_POOLING,
    GLOBAL_MAX_POOLING,
    MAX_POOLING,
    SEPARABLE,
    CellFields,
    Inspection,
    Term,
)
from .numpy_layers import ACTIVATIONS, pair, window_extent

if TYPE_CHECKING:
    from .bundle import LayerInfo

GLOBAL_VALUES_SHOWN = 64  # a global pooling lists every value of maps up to 8x8, else the strongest ``top``
AXIS_ACTIVATIONS = ("softmax", "log_softmax", "sparsemax")  # need the whole channel axis, not one value


@dataclass(frozen=True)
class Window:
    kernel: tuple[int, int]  # (rows, columns)
    strides: tuple[int, int]
    dilation: tuple[int, int]
    padding: str  # 'valid' or 'same'

    def extent(self, axis: int) -> int:
        return (self.kernel[axis] - 1) * self.dilation[axis] + 1

    def taps(self, row: int, col: int, input_shape: Sequence[int]) -> list[tuple[int, int, int, int, bool]]:
        """``[(kernel row, kernel column, input row, input column, inside)]`` of output pixel (row, col)."""
        top = window_extent(input_shape[0], self.extent(0), self.strides[0], self.padding)[1]
        left = window_extent(input_shape[1], self.extent(1), self.strides[1], self.padding)[1]
        taps = []
        for i in range(self.kernel[0]):
            for j in range(self.kernel[1]):
                r = row * self.strides[0] - top + i * self.dilation[0]
                c = col * self.strides[1] - left + j * self.dilation[1]
                taps.append((i, j, r, c, 0 <= r < input_shape[0] and 0 <= c < input_shape[1]))
        return taps


def window_of(layer: LayerInfo) -> Window:
    """The window of a convolution or pooling layer, from its config; one clear error if it has none."""
    config = layer.config
    if config.get("data_format", "channels_last") != "channels_last":
        raise BlenderCNNError(
            f"layer {layer.name!r}",
            f"uses data_format {config['data_format']!r}; cells are inspected in channels_last layers only",
        )
    padding = str(config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise BlenderCNNError(f"layer {layer.name!r}", f"uses padding {padding!r}, which inspection cannot place")
    if "pool_size" in config:
        kernel = pair(config["pool_size"])
        return Window(kernel, pair(config.get("strides") or kernel), (1, 1), padding)
    return Window(
        pair(config.get("kernel_size", 1)),
        pair(config.get("strides", 1)),
        pair(config.get("dilation_rate", 1)),
        padding,
    )


# ---------------------------------------------------------------- convolutions


def convolution(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Conv2D (grouped or not) and DepthwiseConv2D: every tap of the window in every input channel read."""
    x, (row, col, channel) = inputs[0], common["position"]
    kernel = weights.get("kernel", weights.get("depthwise_kernel"))  # Keras 3 calls a depthwise kernel 'kernel'
    if kernel is None:
        raise BlenderCNNError(f"layer {layer.name!r}", "has no weight 'kernel', so its cells cannot be inspected")
    if layer.type == "DepthwiseConv2D":  # output channel c*M + m reads input channel c through kernel[..., c, m]
        multiplier = kernel.shape[3]
        reads = [(channel // multiplier, kernel[:, :, channel // multiplier, channel % multiplier])]
    else:  # a group of output channels reads its group of input channels
        group_inputs = kernel.shape[2]
        group_outputs = layer.output_shape[2] // (x.shape[2] // group_inputs)
        first = (channel // group_outputs) * group_inputs
        reads = [(first + local, kernel[:, :, local, channel]) for local in range(group_inputs)]
    taps = window_of(layer).taps(row, col, x.shape)
    terms = tuple(
        Term(
            (r, c, source),
            float(x[r, c, source]) if inside else 0.0,
            float(tap_weights[i, j]),
            padding=not inside,
            tap=(i, j),
        )
        for source, tap_weights in reads
        for i, j, r, c, inside in taps
    )
    return _weighted(layer, inputs, weights, common, CONVOLUTION, terms)


def separable(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """SeparableConv2D: each input channel's depthwise window, then the pointwise sum over them."""
    x, (row, col, channel) = inputs[0], common["position"]
    depthwise, pointwise = weights["depthwise_kernel"], weights["pointwise_kernel"]
    multiplier = depthwise.shape[3]
    taps = window_of(layer).taps(row, col, x.shape)
    terms, stages = [], []
    for into in range(x.shape[2] * multiplier):
        source = into // multiplier
        window = [
            Term(
                (r, c, source),
                float(x[r, c, source]) if inside else 0.0,
                float(depthwise[i, j, source, into % multiplier]),
                padding=not inside,
                tap=(i, j),
                into=into,
            )
            for i, j, r, c, inside in taps
        ]
        depthwise_value = np.float32(np.sum([_product(term) for term in window], dtype=np.float64))
        terms += window
        stages.append(Term((into,), float(depthwise_value), float(pointwise[0, 0, into, channel])))
    return _weighted(layer, inputs, weights, common, SEPARABLE, tuple(terms), pointwise=tuple(stages))


def _product(term: Term) -> float:
    product = term.product
    assert product is not None, "every term of a convolution's window has a weight"
    return product


def transposed(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """Conv2DTranspose seen from the output: the input cells whose scattered kernel covers this cell."""
    x, (row, col, channel) = inputs[0], common["position"]
    kernel = weights["kernel"]  # (kernel rows, kernel columns, filters, input channels)
    window = window_of(layer)
    reaching = []
    for axis, at in ((0, row), (1, col)):
        # As core.numpy_layers' transpose: the scattered map is cropped by this much before the first output row.
        before = (
            0
            if window.padding == "valid"
            else max((x.shape[axis] - 1) * window.strides[axis] + window.extent(axis) - layer.output_shape[axis], 0)
            // 2
        )
        offsets = [(at + before - i * window.dilation[axis], i) for i in range(window.kernel[axis])]
        reaching.append(
            [
                (offset // window.strides[axis], i)
                for offset, i in offsets
                if offset % window.strides[axis] == 0 and 0 <= offset // window.strides[axis] < x.shape[axis]
            ]
        )
    terms = tuple(
        Term((r, c, source), float(x[r, c, source]), float(kernel[i, j, channel, source]), tap=(i, j))
        for r, i in reaching[0]
        for c, j in reaching[1]
        for source in range(x.shape[2])
    )
    return _weighted(layer, inputs, weights, common, CONVOLUTION, terms)


def _weighted(
    layer: LayerInfo,
    inputs: Sequence[np.ndarray],
    weights: Mapping[str, np.ndarray],
    common: CellFields,
    kind: str,
    terms: tuple[Term, ...],
    pointwise: tuple[Term, ...] = (),
) -> Inspection:
    """Sum the products (of the pointwise stage, if any), add the bias and apply the activation."""
    index = common["position"][-1]
    products = np.array([term.product for term in (pointwise or terms)], dtype=np.float64)
    bias = None
    if layer.config.get("use_bias", True) and "bias" in weights:
        bias = float(weights["bias"][index])
    total = float(np.float32(products.sum() + (bias or 0.0)))
    activation = layer.config.get("activation") or "linear"
    if activation in AXIS_ACTIVATIONS:
        # The activation needs every channel's pre-activation at this pixel: the layer's linear output there.
        linear = compute_layer(
            layer.type,
            {**layer.config, "activation": "linear"},
            weights,
            [values[np.newaxis] for values in inputs],
            name=layer.name,
        )[0]
        totals = linear[common["position"][:-1]].astype(np.float32)
        totals[index] = total
    else:
        totals = np.array([total], dtype=np.float32)
        index = 0
    return Inspection(
        kind=kind,
        terms=terms,
        bias=bias,
        total=total,
        activation=activation,
        value=float(activate(layer, activation, totals)[index]),
        pointwise=pointwise,
        **common,
    )


def activate(layer: LayerInfo, name: str, values: npt.ArrayLike) -> np.ndarray:
    function = ACTIVATIONS.get(name)
    if function is None:
        raise BlenderCNNError(f"layer {layer.name!r}", f"uses the activation {name!r}, which inspection cannot compute")
    return np.asarray(function(np.asarray(values, dtype=np.float32)), dtype=np.float32)


# ---------------------------------------------------------------- poolings


def pooling(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """MaxPooling2D / AveragePooling2D: the window's values (padding left out) and, for max, the winner."""
    x, (row, col, channel) = inputs[0], common["position"]
    terms = tuple(
        Term((r, c, channel), float(x[r, c, channel]) if inside else 0.0, padding=not inside, tap=(i, j))
        for i, j, r, c, inside in window_of(layer).taps(row, col, x.shape)
    )
    inside = [index for index, term in enumerate(terms) if not term.padding]
    values = np.array([terms[index].value for index in inside], dtype=np.float64)
    if layer.type == "MaxPooling2D":
        winner = inside[int(np.argmax(values))]  # ties: the first in row-major window order, as the scene's winners
        return Inspection(kind=MAX_POOLING, terms=terms, value=terms[winner].value, winner=winner, **common)
    return Inspection(
        kind=AVERAGE_POOLING, terms=terms, total=float(values.sum()), value=float(np.float32(values.mean())), **common
    )


def global_pooling(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """GlobalAveragePooling2D / GlobalMaxPooling2D: the mean or max of the channel's whole map."""
    if layer.config.get("data_format", "channels_last") != "channels_last" or inputs[0].ndim != 3:
        raise BlenderCNNError(
            f"layer {layer.name!r}", "is a global pooling whose cells are inspected on channels_last feature maps only"
        )
    channel = common["position"][-1]
    values = inputs[0][:, :, channel]
    flat = values.astype(np.float64).ravel()
    is_max = layer.type == "GlobalMaxPooling2D"
    if flat.size <= GLOBAL_VALUES_SHOWN:
        shown = np.arange(flat.size)
    else:  # the largest values (max) or those of largest magnitude (mean); the others summed
        shown = np.argsort(-flat if is_max else -np.abs(flat), kind="stable")[:top]
    terms = tuple(
        Term((int(index) // values.shape[1], int(index) % values.shape[1], channel), float(flat[index]))
        for index in shown
    )
    hidden = np.setdiff1d(np.arange(flat.size), shown)
    hidden_terms, hidden_sum, total = len(hidden), float(flat[hidden].sum()), float(flat.sum())
    if is_max:
        winner = int(np.argmax([term.value for term in terms]))  # ties: the first in row-major order
        return Inspection(
            kind=GLOBAL_MAX_POOLING,
            terms=terms,
            winner=winner,
            value=terms[winner].value,
            hidden_terms=hidden_terms,
            hidden_sum=hidden_sum,
            total=total,
            **common,
        )
    return Inspection(
        kind=GLOBAL_AVERAGE_POOLING,
        terms=terms,
        value=float(np.float32(flat.mean())),
        hidden_terms=hidden_terms,
        hidden_sum=hidden_sum,
        total=total,
        **common,
    )
