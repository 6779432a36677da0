"""What one cell of a network computed, term by term, recomputed from the bundle (numpy only).

``inspect_cell`` answers for one output cell at one epoch and sample:

* a convolution (Conv2D, grouped or not, and DepthwiseConv2D): every tap of
  its window in every input channel it reads, with the input value (zero in
  the padding), the kernel weight and their product; their sum, the bias and
  the activation function;
* a Dense neuron: its strongest incoming contributions (input x weight), the
  sum of the others, the bias and the activation (softmax over the layer);
* max and average pooling: the window's values and, for max pooling, the winner;
* any other layer: its value only.

The scene's annotations, the panel's text and scripts all read this one
``Inspection``. Sums are taken in float64 and the results given as float32,
so they equal the stored activations to float32 precision.
"""

from dataclasses import dataclass

import numpy as np

from .errors import BlenderCNNError
from .forward import ACTIVATIONS
from .operations import window_geometry

CONVOLUTION, DENSE, MAX_POOLING, AVERAGE_POOLING, VALUE = "convolution", "dense", "max pooling", "average pooling", "value"
KINDS = {"Conv2D": CONVOLUTION, "DepthwiseConv2D": CONVOLUTION, "Dense": DENSE,
         "MaxPooling2D": MAX_POOLING, "AveragePooling2D": AVERAGE_POOLING}
DENSE_TERMS_SHOWN = 8


@dataclass(frozen=True)
class Term:
    """One input of the cell: where it comes from, its value and (for weighted layers) its weight."""

    source: tuple            # (row, column, channel) in the input layer, or (unit,) for Dense
    value: float             # the input's value; 0 (convolution) or nothing (pooling) in the padding
    weight: float | None = None
    padding: bool = False

    @property
    def product(self):
        return None if self.weight is None else float(np.float32(self.value) * np.float32(self.weight))


@dataclass(frozen=True)
class Inspection:
    layer: str
    layer_type: str
    kind: str
    epoch: int
    sample: object            # a sample index, or the label of a custom input
    position: tuple           # (row, column, channel), or (unit,)
    source_layer: str | None
    terms: tuple = ()
    hidden_terms: int = 0     # Dense: inputs not listed in ``terms``
    hidden_sum: float = 0.0   # ... and the sum of their products
    bias: float | None = None
    total: float | None = None        # the pre-activation: sum of products (+ bias)
    activation: str | None = None
    value: float = 0.0                # the recomputed output
    stored: float | None = None       # the output the bundle (or forward pass) holds
    winner: int | None = None         # max pooling: index of the winning term

    @property
    def products_sum(self):
        """Sum of every product, listed or not (weighted layers)."""
        listed = sum(term.product for term in self.terms if term.product is not None)
        return float(np.float32(listed + self.hidden_sum))

    def where(self):
        if len(self.position) == 1:
            return f"{self.layer} neuron {self.position[0]}"
        row, col, channel = self.position
        return f"{self.layer} channel {channel}, row {row}, column {col}"

    def equation(self):
        """One line: how the value came about (the scene's label beside the cell)."""
        if self.kind in (CONVOLUTION, DENSE):
            count = len(self.terms) + self.hidden_terms
            parts = [f"sum of {count} products {self.products_sum:.4g}"]
            if self.bias is not None:
                parts.append(f"+ bias {self.bias:.4g}")
            line = " ".join(parts) + f" = {self.total:.4g}"
            if self.activation not in (None, "linear"):
                line += f" -> {self.activation} -> {self.value:.4g}"
            return line
        if self.kind == MAX_POOLING:
            return f"max of {sum(not t.padding for t in self.terms)} values = {self.value:.4g}"
        if self.kind == AVERAGE_POOLING:
            return f"mean of {sum(not t.padding for t in self.terms)} values = {self.value:.4g}"
        return f"value {self.value:.4g}"

    def text(self):
        """The inspection as plain text, for the panel and for copying into slides."""
        lines = [f"{self.where()} ({self.layer_type}), epoch {self.epoch}, sample {self.sample}"]
        if self.kind in (CONVOLUTION, MAX_POOLING, AVERAGE_POOLING):
            lines.append(f"window in {self.source_layer}:")
            for channel in sorted({term.source[2] for term in self.terms}):
                row_terms = [t for t in self.terms if t.source[2] == channel]
                lines.append(f"  channel {channel}: " + "  ".join(_term_text(t) for t in row_terms))
            if self.winner is not None:
                row, col, channel = self.terms[self.winner].source
                lines.append(f"winner: row {row}, column {col}, channel {channel}")
        elif self.kind == DENSE:
            lines.append(f"strongest inputs from {self.source_layer} (input x weight):")
            lines += [f"  neuron {t.source[0]}: {_term_text(t)}" for t in self.terms]
            if self.hidden_terms:
                lines.append(f"  {self.hidden_terms} more: {self.hidden_sum:.4g}")
        lines.append(self.equation())
        return "\n".join(lines)


def _term_text(term):
    if term.weight is None:
        return "pad" if term.padding else f"{term.value:.3g}"
    return f"{term.value:.3g}x{term.weight:.3g}" + (" (pad)" if term.padding else "")


def inspect_cell(bundle, layer_name, position, epoch=-1, sample=0, activations=None, top=DENSE_TERMS_SHOWN):
    """How ``layer_name``'s cell at ``position`` was computed at ``epoch`` for ``sample``.

    ``position`` is ``(row, column, channel)`` for feature maps or ``(unit,)``
    (or a plain unit number) for 1-D layers. ``activations`` maps layer names
    to one input's outputs (e.g. the forward pass of a custom image); without
    it the bundle's stored activations of ``sample`` are read.
    """
    layer = bundle.layer(layer_name)
    epoch_number = bundle.epochs[bundle.epoch_index(epoch)]
    position = _checked_position(layer, position)

    def output_of(name):
        if activations is not None:
            return np.asarray(activations[name], dtype=np.float32)
        return bundle.activations(name, epoch_number, sample)

    kind = KINDS.get(layer.type, VALUE)
    source = layer.inputs[0] if len(layer.inputs) == 1 else None
    if source is None or (kind == DENSE and len(bundle.layer(source).output_shape) != 1) or \
            (kind != DENSE and kind != VALUE and len(bundle.layer(source).output_shape) != 3):
        kind = VALUE
    stored = float(output_of(layer_name)[position])
    common = dict(layer=layer_name, layer_type=layer.type, epoch=epoch_number, sample=sample, position=position,
                  source_layer=source, stored=stored)
    if kind == VALUE:
        return Inspection(kind=VALUE, value=stored, **common)
    inputs = output_of(source)
    weights = bundle.weights(layer_name, epoch_number) if layer.weights else {}
    if kind == DENSE:
        return _dense(layer, inputs, weights, position[0], top, common)
    window = window_geometry(layer.type, layer.config, bundle.layer(source).output_shape, layer.output_shape)
    if window is None:
        return Inspection(kind=VALUE, value=stored, **common)
    taps = _window_taps(window, position, inputs.shape)
    if kind == CONVOLUTION:
        return _convolution(layer, inputs, weights, window, position, taps, common)
    return _pooling(kind, inputs, taps, common)


def _checked_position(layer, position):
    position = (int(position),) if np.isscalar(position) else tuple(int(p) for p in position)
    shape = tuple(layer.output_shape)
    if len(position) != len(shape) or any(not 0 <= p < size for p, size in zip(position, shape)):
        raise BlenderCNNError(f"layer {layer.name!r}", f"has output shape {shape}; it has no cell {position}")
    return position


def _window_taps(window, position, input_shape):
    """``[(kernel row, kernel column, input row, input column, inside)]`` of the output pixel's window."""
    row, col, _channel = position
    rows, cols, _ = input_shape
    taps = []
    for i in range(window["kernel_rows"]):
        for j in range(window["kernel_cols"]):
            r = row * window["stride_rows"] - window["pad_top"] + i * window["dilation_rows"]
            c = col * window["stride_cols"] - window["pad_left"] + j * window["dilation_cols"]
            taps.append((i, j, r, c, 0 <= r < rows and 0 <= c < cols))
    return taps


def _convolution(layer, inputs, weights, window, position, taps, common):
    channel = position[2]
    kernel = weights["depthwise_kernel" if layer.type == "DepthwiseConv2D" else "kernel"]
    first = (channel // window["group_outputs"]) * window["group_inputs"]
    terms = []
    for local in range(window["group_inputs"]):
        source_channel = first + local
        for i, j, r, c, inside in taps:
            if layer.type == "DepthwiseConv2D":
                weight = kernel[i, j, source_channel, channel % window["group_outputs"]]
            else:
                weight = kernel[i, j, local, channel]
            value = float(inputs[r, c, source_channel]) if inside else 0.0
            terms.append(Term((r, c, source_channel), value, float(weight), padding=not inside))
    products = np.array([term.product for term in terms], dtype=np.float64)
    bias = _bias(layer, weights, channel)
    total = float(products.sum() + (bias or 0.0))
    activation = layer.config.get("activation") or "linear"
    value = float(_activate(activation, np.array([total], dtype=np.float32))[0])
    return Inspection(kind=CONVOLUTION, terms=tuple(terms), bias=bias, total=float(np.float32(total)),
                      activation=activation, value=value, **common)


def _dense(layer, inputs, weights, unit, top, common):
    kernel = np.asarray(weights["kernel"], dtype=np.float32)
    products = inputs.astype(np.float32) * kernel[:, unit]
    order = np.argsort(-np.abs(products), kind="stable")
    shown, hidden = order[:top], order[top:]
    terms = tuple(Term((int(i),), float(inputs[i]), float(kernel[i, unit])) for i in shown)
    bias = _bias(layer, weights, unit)
    # Softmax needs the whole layer's pre-activations; each is recomputed the same way.
    totals = inputs.astype(np.float64) @ kernel.astype(np.float64)
    if bias is not None:
        totals += np.asarray(weights["bias"], dtype=np.float64)
    activation = layer.config.get("activation") or "linear"
    value = float(_activate(activation, totals.astype(np.float32))[unit])
    return Inspection(kind=DENSE, terms=terms, hidden_terms=len(hidden),
                      hidden_sum=float(products[hidden].astype(np.float64).sum()), bias=bias,
                      total=float(np.float32(totals[unit])), activation=activation, value=value, **common)


def _pooling(kind, inputs, taps, common):
    channel = common["position"][2]
    terms = tuple(Term((r, c, channel), float(inputs[r, c, channel]) if inside else 0.0, padding=not inside)
                  for _i, _j, r, c, inside in taps)
    inside = [index for index, term in enumerate(terms) if not term.padding]
    values = np.array([terms[index].value for index in inside], dtype=np.float64)
    if kind == MAX_POOLING:
        winner = inside[int(np.argmax(values))]  # ties: the first in row-major window order, as the scene's winners
        return Inspection(kind=kind, terms=terms, value=terms[winner].value, winner=winner, **common)
    return Inspection(kind=kind, terms=terms, value=float(np.float32(values.mean())), **common)


def _bias(layer, weights, index):
    if not layer.config.get("use_bias", True) or "bias" not in weights:
        return None
    return float(weights["bias"][index])


def _activate(name, values):
    function = ACTIVATIONS.get(name)
    if function is None:
        raise BlenderCNNError(name, "is an activation the numpy forward pass cannot compute")
    return np.asarray(function(values), dtype=np.float32)
