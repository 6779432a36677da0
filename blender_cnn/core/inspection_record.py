"""What ``inspect_cell`` returns: the terms of one cell and how they make its value, as data and as text.

Plain data (numpy only). The computations live in ``inspection_windows``
(convolutions, poolings) and ``inspection_elementwise`` (merges,
normalization, activations); ``inspection.inspect_cell`` chooses between them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

# Kinds of inspection: how a cell's value is made from its terms.
CONVOLUTION = "convolution"  # Conv2D, DepthwiseConv2D, Conv2DTranspose: sum of products + bias
SEPARABLE = "separable convolution"  # depthwise window per channel, then a pointwise sum
DENSE = "dense"
MAX_POOLING, AVERAGE_POOLING = "max pooling", "average pooling"
GLOBAL_MAX_POOLING, GLOBAL_AVERAGE_POOLING = "global max pooling", "global average pooling"
MERGE = "merge"  # Add, Subtract, Multiply, Average, Maximum, Minimum
CONCATENATION = "concatenation"
NORMALIZATION = "normalization"  # BatchNormalization, Normalization, Rescaling
ACTIVATION = "activation"  # Activation, ReLU, LeakyReLU, ELU, PReLU, Softmax
VALUE = "value"  # plumbing (Flatten, padding, dropout, ...): the value only

MERGE_SYMBOLS = {"Add": " + ", "Subtract": " - ", "Multiply": " x "}
MERGE_FUNCTIONS = {"Average": "mean", "Maximum": "max", "Minimum": "min"}


@dataclass(frozen=True)
class Term:
    """One input of the cell: where it comes from, its value and (for weighted layers) its weight."""

    source: tuple[int, ...]  # (row, column, channel) in the input layer, or (unit,) for 1-D layers
    value: float  # the input's value; 0 (convolution) or nothing (pooling) in the padding
    weight: float | None = None
    padding: bool = False
    layer: str | None = None  # the layer ``source`` is in, when the cell has several inputs (merges)
    tap: tuple[int, ...] | None = None  # convolutions: the kernel tap (row, column) joining ``source`` to the cell
    into: int | None = None  # separable convolution: the depthwise channel this product adds to

    @property
    def product(self) -> float | None:
        return None if self.weight is None else float(np.float32(self.value) * np.float32(self.weight))


class CellFields(TypedDict):
    """The ``Inspection`` fields every inspector of a cell is given (``common``): which cell, what it stores."""

    layer: str
    layer_type: str
    epoch: int
    sample: int | str
    position: tuple[int, ...]
    source_layer: str | None
    stored: float


@dataclass(frozen=True)
class Inspection:
    layer: str
    layer_type: str
    kind: str
    epoch: int
    sample: int | str  # a sample index, or the label of a custom input
    position: tuple[int, ...]  # (row, column, channel), or (unit,)
    source_layer: str | None  # the input layer the terms are in (None: several, see ``Term.layer``)
    terms: tuple[Term, ...] = ()
    hidden_terms: int = 0  # Dense, global pooling: inputs not listed in ``terms``
    hidden_sum: float = 0.0  # ... and the sum of their products (values, for pooling)
    bias: float | None = None
    total: float | None = None  # the pre-activation: sum of products (+ bias); the sum for mean pooling
    activation: str | None = None
    value: float = 0.0  # the recomputed output
    stored: float | None = None  # the output the bundle (or forward pass) holds
    winner: int | None = None  # max pooling: index of the winning term
    pointwise: tuple[Term, ...] = ()  # separable convolution: Terms (depthwise channel,) x pointwise weight
    parameters: tuple[
        tuple[str, Any], ...
    ] = ()  # ((name, number), ...): normalization statistics, concatenation offsets

    @property
    def products_sum(self) -> float:
        """Sum of every product, listed or not (weighted layers; the pointwise stage of a separable one)."""
        listed = sum(term.product for term in (self.pointwise or self.terms) if term.product is not None)
        return float(np.float32(listed + self.hidden_sum))

    @property
    def count(self) -> int:
        """How many values a pooling took (padding left out)."""
        return sum(not term.padding for term in self.terms) + self.hidden_terms

    def parameter(self, name: str, default: Any = None) -> Any:
        return dict(self.parameters).get(name, default)

    def where(self) -> str:
        if len(self.position) == 1:
            return f"{self.layer} neuron {self.position[0]}"
        if len(self.position) != 3:
            return f"{self.layer} cell {self.position}"
        row, col, channel = self.position
        return f"{self.layer} channel {channel}, row {row}, column {col}"

    def equation(self) -> str:
        """One line: how the value came about (the panel's last line)."""
        special = _EQUATIONS.get(self.kind)
        return special(self) if special is not None else fill(*self.equation_template())

    def equation_template(self) -> tuple[str, tuple[float, ...]]:
        """``equation()`` as a format string over numbers ``n0, n1, ...``, and those numbers.

        The words depend only on the layer and which terms are listed, so the
        scene writes any epoch's and sample's numbers into the same template
        (``core/inspection_annotations.py``). A merge's or normalization's
        negative operand is not bracketed there, as it is in ``equation()``.
        """
        return _TEMPLATES.get(self.kind, _value_template)(self)

    def text(self) -> str:
        """The inspection as plain text, for the panel and for copying into slides."""
        lines = [f"{self.where()} ({self.layer_type}), epoch {self.epoch}, sample {self.sample}"]
        lines += _LINES.get(self.kind, lambda _inspection: [])(self)
        lines.append(self.equation())
        return "\n".join(lines)


# ---------------------------------------------------------------- equations
#
# Each kind's equation is a template over numbers n0, n1, ... (``Inspection.equation_template``): the panel's
# text fills it with this epoch's numbers, and the scene (nodes/annotations.py) fills the same template in
# Geometry Nodes with the numbers of whatever epoch and sample the network shows.

Template = tuple[str, tuple[float, ...]]


class _Numbers:
    """The numbers of a template, each placed as ``{nK:spec}`` where it is added."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def __call__(self, value: float, spec: str = ".4g") -> str:
        self.values.append(float(value))
        return f"{{n{len(self.values) - 1}:{spec}}}"


def escaped(text: str) -> str:
    """``text`` as literal text of a format string (a layer named with braces)."""
    return str(text).replace("{", "{{").replace("}", "}}")


def fill(template: str, numbers: Sequence[float], **named: Any) -> str:
    """A template's text with ``numbers`` as n0, n1, ... (and named fields, such as the scene's epoch)."""
    return template.format(**{f"n{index}": value for index, value in enumerate(numbers)}, **named)


def _with_activation(inspection: Inspection, line: str, number: _Numbers) -> str:
    if inspection.activation not in (None, "linear"):
        line += f" -> {escaped(inspection.activation)} -> {number(inspection.value)}"
    return line


def _sum_template(inspection: Inspection) -> Template:
    count = len(inspection.pointwise or inspection.terms) + inspection.hidden_terms
    prefix = "pointwise sum" if inspection.kind == SEPARABLE else "sum"
    number = _Numbers()
    line = f"{prefix} of {count} products {number(inspection.products_sum)}"
    if inspection.bias is not None:
        line += f" + bias {number(inspection.bias)}"
    assert inspection.total is not None  # every weighted layer's inspection has its pre-activation
    line = _with_activation(inspection, line + f" = {number(inspection.total)}", number)
    return line, tuple(number.values)


def _pooling_template(inspection: Inspection) -> Template:
    number = _Numbers()
    if inspection.kind in (MAX_POOLING, GLOBAL_MAX_POOLING):
        line = f"max of {_values(inspection.count)} = {number(inspection.value)}"
        if inspection.kind == GLOBAL_MAX_POOLING:
            assert inspection.winner is not None  # max pooling always names its winning term
            row, col, _channel = inspection.terms[inspection.winner].source
            line += f" at row {number(row, '.0f')}, column {number(col, '.0f')}"
    elif inspection.kind == GLOBAL_AVERAGE_POOLING:
        assert inspection.total is not None  # a mean pooling's inspection has its sum
        line = (
            f"mean of {_values(inspection.count)}: {number(inspection.total)} / {inspection.count} "
            f"= {number(inspection.value)}"
        )
    else:
        line = f"mean of {_values(inspection.count)} = {number(inspection.value)}"
    return line, tuple(number.values)


def _values(count: int) -> str:
    return "1 value" if count == 1 else f"{count} values"


def _merge_template(inspection: Inspection) -> Template:
    number = _Numbers()
    symbol = MERGE_SYMBOLS.get(inspection.layer_type)
    operands = [number(term.value) for term in inspection.terms]
    if symbol:
        joined = symbol.join(operands)
    else:
        joined = f"{MERGE_FUNCTIONS[inspection.layer_type]}({', '.join(operands)})"
    return f"{joined} = {number(inspection.value)}", tuple(number.values)


def _merge_equation(inspection: Inspection) -> str:
    symbol = MERGE_SYMBOLS.get(inspection.layer_type)
    if not symbol:
        return fill(*_merge_template(inspection))
    first, *others = inspection.terms
    joined = symbol.join([f"{first.value:.4g}"] + [_bracketed(term.value) for term in others])
    return f"{joined} = {inspection.value:.4g}"


def _concatenation_template(inspection: Inspection) -> Template:
    term, number = inspection.terms[0], _Numbers()
    return f"{escaped(str(term.layer))} {_place(term.source)} = {number(inspection.value)}", tuple(number.values)


def _normalization_template(inspection: Inspection) -> Template:
    get, number = inspection.parameter, _Numbers()
    x = number(inspection.terms[0].value)
    if inspection.layer_type == "Rescaling":
        line = f"{x} x {number(get('scale'))} + {number(get('offset'))}"
    elif inspection.layer_type == "Normalization" and get("invert"):
        mean = number(get("mean"))
        line = f"{mean} + {x} x sqrt({number(get('variance'))})"
    elif inspection.layer_type == "Normalization":
        line = f"({x} - {number(get('mean'))}) / sqrt({number(get('variance'))})"
    else:
        line = (
            f"({x} - {number(get('moving_mean'))}) / sqrt({number(get('moving_variance'))} + {number(get('epsilon'))})"
        )
        if get("gamma") is not None:
            line += f" x {number(get('gamma'))}"
        if get("beta") is not None:
            line += f" + {number(get('beta'))}"
    return f"{line} = {number(inspection.value)}", tuple(number.values)


def _normalization_equation(inspection: Inspection) -> str:
    x, get = f"{inspection.terms[0].value:.4g}", inspection.parameter
    if inspection.layer_type == "Rescaling":
        line = f"{x} x {_bracketed(get('scale'))} + {_bracketed(get('offset'))}"
    elif inspection.layer_type == "Normalization" and get("invert"):
        line = f"{get('mean'):.4g} + {_bracketed(inspection.terms[0].value)} x sqrt({get('variance'):.4g})"
    elif inspection.layer_type == "Normalization":
        line = f"({x} - {_bracketed(get('mean'))}) / sqrt({get('variance'):.4g})"
    else:
        line = f"({x} - {_bracketed(get('moving_mean'))}) / sqrt({get('moving_variance'):.4g} + {get('epsilon'):.4g})"
        if get("gamma") is not None:
            line += f" x {_bracketed(get('gamma'))}"
        if get("beta") is not None:
            line += f" + {_bracketed(get('beta'))}"
    return f"{line} = {inspection.value:.4g}"


def _bracketed(number: float) -> str:
    """A number that follows an operator: negative ones in brackets, "x - (-0.5)"."""
    return f"({number:.4g})" if number < 0 else f"{number:.4g}"


def _activation_template(inspection: Inspection) -> Template:
    number = _Numbers()
    line = f"{escaped(str(inspection.activation))}({number(inspection.terms[0].value)}) = {number(inspection.value)}"
    return line, tuple(number.values)


def _value_template(inspection: Inspection) -> Template:
    number = _Numbers()
    return f"value {number(inspection.value)}", tuple(number.values)


_TEMPLATES: dict[str, Callable[[Inspection], Template]] = {
    CONVOLUTION: _sum_template,
    SEPARABLE: _sum_template,
    DENSE: _sum_template,
    MAX_POOLING: _pooling_template,
    AVERAGE_POOLING: _pooling_template,
    GLOBAL_MAX_POOLING: _pooling_template,
    GLOBAL_AVERAGE_POOLING: _pooling_template,
    MERGE: _merge_template,
    CONCATENATION: _concatenation_template,
    NORMALIZATION: _normalization_template,
    ACTIVATION: _activation_template,
}
# The panel's text: the templates filled in, but with a merge's and a normalization's negative operands bracketed,
# which a template (the same words for every epoch) cannot do.
_EQUATIONS: dict[str, Callable[[Inspection], str]] = {
    MERGE: _merge_equation,
    NORMALIZATION: _normalization_equation,
}


# ---------------------------------------------------------------- text lines before the equation


def _window_lines(inspection: Inspection) -> list[str]:
    if inspection.layer_type == "Conv2DTranspose":
        return _scatter_lines(inspection)
    lines = [f"window in {inspection.source_layer}:"]
    for channel in sorted({term.source[2] for term in inspection.terms}):
        row_terms = [t for t in inspection.terms if t.source[2] == channel]
        lines.append(f"  channel {channel}: " + "  ".join(_term_text(t) for t in row_terms))
    if inspection.winner is not None:
        row, col, channel = inspection.terms[inspection.winner].source
        lines.append(f"winner: row {row}, column {col}, channel {channel}")
    return lines


def _scatter_lines(inspection: Inspection) -> list[str]:
    if not inspection.terms:
        return [f"no cell of {inspection.source_layer} scatters onto this cell"]
    lines = [f"cells of {inspection.source_layer} that scatter onto this cell (value x weight per channel):"]
    for row, col, tap in dict.fromkeys((t.source[0], t.source[1], t.tap) for t in inspection.terms):
        products = [t for t in inspection.terms if (t.source[0], t.source[1], t.tap) == (row, col, tap)]
        lines.append(
            f"  row {row}, column {col} through kernel tap {tap}: " + "  ".join(_term_text(t) for t in products)
        )
    return lines


def _separable_lines(inspection: Inspection) -> list[str]:
    lines = [f"depthwise window in {inspection.source_layer}, per channel:"]
    for stage in inspection.pointwise:
        into = stage.source[0]
        products = [t for t in inspection.terms if t.into == into]
        lines.append(
            f"  depthwise {into} (channel {products[0].source[2]}): "
            + "  ".join(_term_text(t) for t in products)
            + f" = {stage.value:.4g}"
        )
    lines.append("pointwise (depthwise value x weight):")
    lines.append("  " + "  ".join(f"d{t.source[0]} {_term_text(t)}" for t in inspection.pointwise))
    return lines


def _dense_lines(inspection: Inspection) -> list[str]:
    lines = [f"strongest inputs from {inspection.source_layer} (input x weight):"]
    lines += [f"  {_unit_name(t.source)}: {_term_text(t)}" for t in inspection.terms]
    if inspection.hidden_terms:
        lines.append(f"  {inspection.hidden_terms} more: {inspection.hidden_sum:.4g}")
    return lines


def _global_pooling_lines(inspection: Inspection) -> list[str]:
    channel = inspection.terms[0].source[2]
    if inspection.hidden_terms:
        strongest = "largest" if inspection.kind == GLOBAL_MAX_POOLING else "strongest"
        lines = [f"{strongest} values of channel {channel} in {inspection.source_layer}:"]
        lines += [f"  row {t.source[0]}, column {t.source[1]}: {t.value:.3g}" for t in inspection.terms]
        lines.append(f"  {inspection.hidden_terms} more: sum {inspection.hidden_sum:.4g}")
        return lines
    every = "the one value" if inspection.count == 1 else f"all {inspection.count} values"
    lines = [f"{every} of channel {channel} in {inspection.source_layer}:"]
    for row in sorted({term.source[0] for term in inspection.terms}):
        lines.append(f"  row {row}: " + "  ".join(f"{t.value:.3g}" for t in inspection.terms if t.source[0] == row))
    return lines


def _merge_lines(inspection: Inspection) -> list[str]:
    return ["inputs at this cell:"] + [
        f"  {term.layer} {_place(term.source)}: {term.value:.4g}" for term in inspection.terms
    ]


def _concatenation_lines(inspection: Inspection) -> list[str]:
    get, term = inspection.parameter, inspection.terms[0]
    first, size = get("offset"), get("size")
    return [
        f"from input {get('input') + 1} of {get('inputs')}, {term.layer}, which gives "
        f"{_axis_name(inspection.position, get('axis'))}s {first} to {first + size - 1} of {inspection.layer}:",
        f"  {term.layer} {_place(term.source)}: {term.value:.4g}",
    ]


def _normalization_lines(inspection: Inspection) -> list[str]:
    lines = [f"input {inspection.source_layer} at this cell: {inspection.terms[0].value:.4g}"]
    numbers = [(name, value) for name, value in inspection.parameters if name != "invert" and value is not None]
    if numbers:
        lines.append("  " + ", ".join(f"{name.replace('_', ' ')} {value:.4g}" for name, value in numbers))
    return lines


def _activation_lines(inspection: Inspection) -> list[str]:
    lines = [f"input {inspection.source_layer} at this cell: {inspection.terms[0].value:.4g}"]
    if inspection.parameter("axis") is not None:  # softmax and its kin: the whole axis at once
        lines.append(
            f"  {inspection.activation} over the {inspection.parameter('axis size')} "
            f"{_axis_name(inspection.position, inspection.parameter('axis'))}s through this cell"
        )
    return lines


_LINES: dict[str, Callable[[Inspection], list[str]]] = {
    CONVOLUTION: _window_lines,
    MAX_POOLING: _window_lines,
    AVERAGE_POOLING: _window_lines,
    SEPARABLE: _separable_lines,
    DENSE: _dense_lines,
    GLOBAL_MAX_POOLING: _global_pooling_lines,
    GLOBAL_AVERAGE_POOLING: _global_pooling_lines,
    MERGE: _merge_lines,
    CONCATENATION: _concatenation_lines,
    NORMALIZATION: _normalization_lines,
    ACTIVATION: _activation_lines,
}


def _term_text(term: Term) -> str:
    if term.weight is None:
        return "pad" if term.padding else f"{term.value:.3g}"
    return f"{term.value:.3g}x{term.weight:.3g}" + (" (pad)" if term.padding else "")


def _axis_name(position: Sequence[int], axis: int) -> str:
    return (
        ("row", "column", "channel")[axis]
        if len(position) == 3
        else "unit"
        if len(position) == 1
        else f"index along axis {axis}"
    )


def _unit_name(source: Sequence[int]) -> str:
    return f"neuron {source[0]}" if len(source) == 1 else _place(source)


def _place(source: Sequence[int]) -> str:
    if len(source) == 3:
        return f"channel {source[2]}, row {source[0]}, column {source[1]}"
    return f"neuron {source[0]}" if len(source) == 1 else f"cell {tuple(source)}"
