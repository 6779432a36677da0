"""What one cell of a network computed, term by term, recomputed from the bundle (numpy only).

``inspect_cell`` answers for one output cell at one epoch and sample:

* a convolution (Conv2D, grouped or not, and DepthwiseConv2D, any depth
  multiplier): every tap of its window in every input channel it reads, with
  the input value (zero in the padding), the kernel weight and their product;
  their sum, the bias and the activation function;
* a SeparableConv2D: each input channel's depthwise window and its sum, then
  the pointwise products of those sums, the bias and the activation;
* a Conv2DTranspose: the input cells (and kernel taps) whose scattered kernel
  covers the cell, as products; their sum, the bias and the activation;
* a Dense neuron: its strongest incoming contributions (input x weight), the
  sum of the others, the bias and the activation (softmax over the layer);
* max and average pooling: the window's values and, for max pooling, the
  winner; global pooling: the channel's whole map, its count, and the winner;
* Add, Multiply (and Subtract, Average, Maximum, Minimum): each input's value
  at the cell and the result; Concatenate: which input and which of its cells;
* BatchNormalization, Normalization, Rescaling: the input value, the
  statistics (mean, variance, gamma, beta) or scale, and the result;
* activation layers (Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax): the
  input value, the function and the result;
* plumbing (input, Flatten, Reshape, padding, cropping, dropout, ...): the value only.

Any other layer raises ``BlenderCNNError`` naming it. The scene's
annotations, the panel's text and scripts all read this one ``Inspection``.
Sums are taken in float64 and the results given as float32, so they equal the
stored activations to float32 precision. The record and its text are in
``inspection_record``, the computations in ``inspection_windows`` and
``inspection_elementwise``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import inspection_elementwise as elementwise
from . import inspection_windows as windows
from . import layer_specs as specs
from .errors import BlenderCNNError
from .inspection_record import (
    ACTIVATION,
    AVERAGE_POOLING,
    CONCATENATION,
    CONVOLUTION,
    DENSE,
    GLOBAL_AVERAGE_POOLING,
    GLOBAL_MAX_POOLING,
    MAX_POOLING,
    MERGE,
    NORMALIZATION,
    SEPARABLE,
    VALUE,
    CellFields,
    Inspection,
    Term,
)
from .numpy_layers import is_scalar

if TYPE_CHECKING:
    from .bundle import Bundle, LayerInfo

__all__ = [
    "inspect_cell",
    "Inspection",
    "Term",
    "DENSE_TERMS_SHOWN",
    "ACTIVATION",
    "AVERAGE_POOLING",
    "CONCATENATION",
    "CONVOLUTION",
    "DENSE",
    "GLOBAL_AVERAGE_POOLING",
    "GLOBAL_MAX_POOLING",
    "MAX_POOLING",
    "MERGE",
    "NORMALIZATION",
    "SEPARABLE",
    "VALUE",
]

DENSE_TERMS_SHOWN = 8
# An inspector: function(layer, input values of one sample, weights, common, top) -> Inspection.
Inspector = Callable[["LayerInfo", Sequence[np.ndarray], Mapping[str, np.ndarray], CellFields, int], Inspection]


def _dense(
    layer: LayerInfo, inputs: Sequence[np.ndarray], weights: Mapping[str, np.ndarray], common: CellFields, top: int
) -> Inspection:
    """A Dense unit (of a 1-D layer, or of one pixel of a feature map): its strongest contributions."""
    position = common["position"]
    vector = inputs[0][position[:-1]].astype(np.float32)
    unit = position[-1]
    kernel = np.asarray(weights["kernel"], dtype=np.float32)
    products = vector * kernel[:, unit]
    order = np.argsort(-np.abs(products), kind="stable")
    shown, hidden = order[:top], order[top:]
    terms = tuple(Term(position[:-1] + (int(i),), float(vector[i]), float(kernel[i, unit])) for i in shown)
    use_bias = layer.config.get("use_bias", True) and "bias" in weights
    # Softmax needs the whole layer's pre-activations; each is recomputed the same way.
    totals = vector.astype(np.float64) @ kernel.astype(np.float64)
    if use_bias:
        totals += np.asarray(weights["bias"], dtype=np.float64)
    activation = layer.config.get("activation") or "linear"
    value = float(windows.activate(layer, activation, totals.astype(np.float32))[unit])
    return Inspection(
        kind=DENSE,
        terms=terms,
        hidden_terms=len(hidden),
        hidden_sum=float(products[hidden].astype(np.float64).sum()),
        bias=float(weights["bias"][unit]) if use_bias else None,
        total=float(np.float32(totals[unit])),
        activation=activation,
        value=value,
        **common,
    )


# Inspection kind (core.layer_specs) -> (function, the input ranks it inspects: None for any, or (rank of each input,)).
INSPECTORS: dict[str, tuple[Inspector, tuple[int, ...] | None]] = {
    specs.INSPECT_CONVOLUTION: (windows.convolution, (3,)),
    specs.INSPECT_SEPARABLE: (windows.separable, (3,)),
    specs.INSPECT_TRANSPOSED: (windows.transposed, (3,)),
    specs.INSPECT_POOLING: (windows.pooling, (3,)),
    specs.INSPECT_GLOBAL_POOLING: (windows.global_pooling, (3,)),
    specs.INSPECT_DENSE: (_dense, None),
    specs.INSPECT_MERGE: (elementwise.merge, None),
    specs.INSPECT_CONCATENATION: (elementwise.concatenate, None),
    specs.INSPECT_BATCH_NORMALIZATION: (elementwise.batch_normalization, None),
    specs.INSPECT_NORMALIZATION: (elementwise.normalization, None),
    specs.INSPECT_RESCALING: (elementwise.rescaling, None),
    specs.INSPECT_ACTIVATION: (elementwise.activation, None),
}


def inspect_cell(
    bundle: Bundle,
    layer_name: str,
    position: Sequence[int] | int,
    epoch: int = -1,
    sample: int | str = 0,
    activations: Mapping[str, npt.ArrayLike] | None = None,
    top: int = DENSE_TERMS_SHOWN,
) -> Inspection:
    """How ``layer_name``'s cell at ``position`` was computed at ``epoch`` for ``sample``.

    ``position`` is ``(row, column, channel)`` for feature maps or ``(unit,)``
    (or a plain unit number) for 1-D layers. ``activations`` maps layer names
    to one input's outputs (e.g. the forward pass of a custom image); without
    it the bundle's stored activations of ``sample`` are read. ``top``: how many
    terms a Dense unit or a global pooling over a large map lists.
    """
    layer = bundle.layer(layer_name)
    epoch_number = bundle.epochs[bundle.epoch_index(epoch)]
    position = _checked_position(layer, position)

    def output_of(name: str) -> np.ndarray:
        if activations is not None:
            return np.asarray(activations[name], dtype=np.float32)
        assert not isinstance(sample, str), "a custom input's label comes with its activations"
        return bundle.activations(name, epoch_number, sample)

    stored = float(output_of(layer_name)[position])
    source = layer.inputs[0] if len(layer.inputs) == 1 else None
    common = CellFields(
        layer=layer_name,
        layer_type=layer.type,
        epoch=epoch_number,
        sample=sample,
        position=position,
        source_layer=source,
        stored=stored,
    )
    spec = specs.spec_of(layer.type)
    if not layer.inputs or (spec is not None and spec.inspection == specs.INSPECT_VALUE):
        return Inspection(kind=VALUE, value=stored, **common)
    function, ranks = _inspector(layer)
    inputs = [output_of(name) for name in layer.inputs]
    if ranks is not None and tuple(values.ndim for values in inputs) != ranks:
        raise BlenderCNNError(
            f"layer {layer_name!r}",
            f"is a {layer.type} layer with inputs of shapes "
            f"{[values.shape for values in inputs]}, whose cells "
            "inspection cannot take apart",
        )
    weights = bundle.weights(layer_name, epoch_number) if layer.weights else {}
    weights = {key: np.asarray(value, dtype=np.float32) for key, value in weights.items()}
    return function(layer, inputs, weights, common, top)


def _inspector(layer: LayerInfo) -> tuple[Inspector, tuple[int, ...] | None]:
    spec = specs.spec_of(layer.type)
    found = INSPECTORS.get(spec.inspection) if spec is not None and spec.inspection is not None else None
    if spec is None or found is None:
        raise BlenderCNNError(
            f"layer {layer.name!r}", f"is a {layer.type} layer, whose cells inspection cannot take apart term by term"
        )
    if spec.takes != specs.MANY_INPUTS and len(layer.inputs) != 1:
        raise BlenderCNNError(
            f"layer {layer.name!r}",
            f"is a {layer.type} layer with {len(layer.inputs)} inputs, whose cells inspection cannot take apart",
        )
    return found


def _checked_position(layer: LayerInfo, position: Any) -> tuple[int, ...]:
    """``position`` (a sequence of ints, numpy's too, or one unit number) as a cell of ``layer``'s output."""
    position = (int(position),) if is_scalar(position) else tuple(int(p) for p in position)
    shape = tuple(layer.output_shape)
    if len(position) != len(shape) or any(not 0 <= p < size for p, size in zip(position, shape)):
        raise BlenderCNNError(f"layer {layer.name!r}", f"has output shape {shape}; it has no cell {position}")
    return position
