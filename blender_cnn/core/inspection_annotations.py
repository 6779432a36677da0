"""The numbers Inspect writes beside the cells: templates, and their numbers at every epoch and sample.

Pure numpy. ``texts_of`` turns one ``Inspection`` into the texts the scene
places: a number on each input cell the inspected cell read (a convolution's
input value, kernel weight and their product; a Dense neuron's contribution;
a pooled or merged value) and the equation beside the inspected cell. Each
text is a format string over numbers ``n0, n1, ...`` whose words depend only
on the layer and on which terms are listed. ``annotation_timeline`` recomputes
the same cell at every stored epoch and sample slot and gives each text's
numbers there, so that the scene can blend them as it blends the cells
(``nodes/annotations.py``): the annotations follow the Epoch and Sample inputs,
and at each stored epoch they are that epoch's arithmetic.

A Dense neuron lists the strongest contributions of the epoch and sample it
was inspected at; the other epochs show the same inputs' contributions, and
the sum of all of them in the equation, so every epoch's equation adds up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import layer_specs as specs
from .inspection import inspect_cell
from .inspection_record import CONVOLUTION, DENSE, SEPARABLE, Inspection, Term, escaped, fill

if TYPE_CHECKING:
    from .bundle import Bundle

# Where a text stands (the ``annotation_place`` attribute).
ON_CELL = 0  # on the cell it labels, centred
ABOVE_MAP = 1  # above the map of the cell, centred over it
RIGHT_OF_NEURON = 2  # to the right of a neuron in a column, starting there
# ``inspect_cell``'s ``top`` that lists every term: another epoch's terms are then found by their source.
EVERY_TERM = 1 << 30
WEIGHTED_KINDS = (CONVOLUTION, SEPARABLE)
# The fields the scene fills besides the numbers: the epoch and the sample shown.
EPOCH_FIELD, SAMPLE_FIELD = "epoch", "sample"


@dataclass(frozen=True)
class Annotation:
    """One text: where it stands (``place`` by the cell ``position`` of ``layer``) and its template's numbers."""

    place: int
    layer: str
    position: tuple[int, ...]  # (row, column, channel) or (unit,)
    template: str  # a format string over n0, n1, ... (and, for the equation, {epoch} and {sample})
    numbers: tuple[float, ...]

    @property
    def lines(self) -> int:
        return self.template.count("\n") + 1

    def text(self, epoch: float = 0.0, sample: object = 0) -> str:
        return fill(self.template, self.numbers, **{EPOCH_FIELD: epoch, SAMPLE_FIELD: sample})


def cell_template(inspection: Inspection) -> str:
    """The text on each input cell: a convolution's value, weight and product; a contribution; a value.

    Two decimals, as the scene writes numbers on cells (``nodes/annotations.py``'s Number Lines).
    """
    if inspection.kind == DENSE:
        return "{n0:+.2f}"
    if inspection.kind in WEIGHTED_KINDS:
        return "{n0:.2f}\n×{n1:.2f}\n={n2:.2f}"
    return "{n0:.2f}"


def _cell_numbers(inspection: Inspection, term: Term) -> tuple[float, ...]:
    if inspection.kind == DENSE:
        return (_product(term),)
    if inspection.kind in WEIGHTED_KINDS:
        assert term.weight is not None  # a convolution's terms all have a weight
        return (term.value, term.weight, _product(term))
    return (term.value,)


def _product(term: Term) -> float:
    product = term.product
    assert product is not None, "a weighted term has a product"
    return product


def labelled_terms(inspection: Inspection) -> list[Term]:
    """The terms that get a number on their cell: all but those in the padding."""
    return [term for term in inspection.terms if not term.padding]


def header_template(inspection: Inspection) -> str:
    """The equation's first line: the cell, and the epoch and sample the scene shows."""
    return f"{escaped(inspection.where())}, epoch {{{EPOCH_FIELD}:.1f}}, sample {{{SAMPLE_FIELD}}}"


def texts_of(inspection: Inspection) -> list[Annotation]:
    """Every text of ``inspection``: a number on each labelled term's cell, then the equation by the cell."""
    texts = [
        Annotation(
            ON_CELL,
            str(term.layer or inspection.source_layer),
            term.source,
            cell_template(inspection),
            _cell_numbers(inspection, term),
        )
        for term in labelled_terms(inspection)
    ]
    template, numbers = inspection.equation_template()
    place = ABOVE_MAP if len(inspection.position) == 3 else RIGHT_OF_NEURON
    texts.append(
        Annotation(place, inspection.layer, inspection.position, f"{header_template(inspection)}\n{template}", numbers)
    )
    return texts


def _key(term: Term) -> tuple[object, ...]:
    return (term.layer, term.source, term.tap, term.into)


def numbers_like(reference: Inspection, other: Inspection) -> list[tuple[float, ...]]:
    """The numbers of ``reference``'s texts, read from ``other`` (the same cell at another epoch or sample).

    ``other`` must list every term (``inspect_cell(..., top=EVERY_TERM)``):
    each labelled cell's numbers are those of the term with the same source.
    """
    by_key = {_key(term): term for term in other.terms}
    cells = [_cell_numbers(other, by_key[_key(term)]) for term in labelled_terms(reference)]
    template, numbers = other.equation_template()
    expected, _numbers = reference.equation_template()
    if template != expected:
        raise AssertionError(f"the equation's words changed between epochs: {expected!r} and {template!r}")
    return [*cells, numbers]


# An input of the network to inspect at every epoch: a bundle sample (its index), or a function giving one
# input's activations ({layer: values}) at an epoch number (a picture shown with Show Image).
SampleSource = int | Callable[[int], Mapping[str, np.ndarray]]


@dataclass(frozen=True)
class AnnotationTimeline:
    """``texts_of`` one inspection, and their numbers at every epoch position and sample slot."""

    annotations: tuple[Annotation, ...]
    slots: tuple[int, ...]
    numbers: np.ndarray  # (epochs, slots, annotations, most numbers of an annotation) float32, 0 where unused

    @property
    def width(self) -> int:
        return int(self.numbers.shape[-1])


def annotation_timeline(
    bundle: Bundle, reference: Inspection, sources: Mapping[int, SampleSource]
) -> AnnotationTimeline:
    """The texts of ``reference`` and their numbers at each epoch of ``bundle`` for each sample slot of ``sources``."""
    texts = texts_of(reference)
    width = max(len(text.numbers) for text in texts)
    slots = tuple(sources)
    numbers = np.zeros((len(bundle.epochs), len(slots), len(texts), width), dtype=np.float32)
    position = reference.position
    for epoch_index, epoch in enumerate(bundle.epochs):
        for slot_index, source in enumerate(sources.values()):
            if isinstance(source, int):
                other = inspect_cell(bundle, reference.layer, position, epoch, source, top=EVERY_TERM)
            else:
                other = inspect_cell(
                    bundle,
                    reference.layer,
                    position,
                    epoch,
                    reference.sample,
                    activations=source(epoch),
                    top=EVERY_TERM,
                )
            for text_index, values in enumerate(numbers_like(reference, other)):
                numbers[epoch_index, slot_index, text_index, : len(values)] = values
    return AnnotationTimeline(tuple(texts), slots, numbers)


# ---------------------------------------------------------------- what a sweep writes after the sum

ACTIVATION_WORDS = {"BatchNormalization": "batch norm", "LayerNormalization": "layer norm"}


def after_sum(bundle: Bundle, layer_name: str, unit: Sequence[str] | None = None) -> str:
    """What turns a window's sum into the cell's value, in words ("relu", "batch norm, relu"; "" for nothing).

    ``unit`` names the layers of the unit the cell shows (``core/graph.py``):
    the folded normalization and activations after the convolution.
    """
    members = [bundle.layer(name) for name in (unit or [layer_name])]
    head = next((index for index, member in enumerate(members) if member.type != "ZeroPadding2D"), 0)
    words = []
    for member in members[head:]:
        spec = specs.spec_of(member.type)
        activation = member.config.get("activation")
        if member is members[head]:
            if isinstance(activation, str) and activation != "linear":
                words.append(activation)
        elif spec is not None and spec.inspection == specs.INSPECT_ACTIVATION:
            words.append(str(activation or member.type).lower() if member.type == "Activation" else member.type.lower())
        elif member.type in ACTIVATION_WORDS:
            words.append(ACTIVATION_WORDS[member.type])
        elif spec is None or spec.inspection != specs.INSPECT_VALUE:
            words.append(member.type.lower())
    return ", ".join(words)
