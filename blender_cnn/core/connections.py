"""The connections between dense layers as curves: which weights are drawn, and their bundled shape.

Pure numpy, no bpy. One curve per drawn weight of every Dense layer fed by a
1D layer (a flatten or another dense layer), from source neuron to target
neuron, with ``points_per_edge`` points. When a layer has more weights than
are drawn, the drawn ones are chosen over the whole run: the union of each
epoch's strongest, within the count one epoch's choice would draw, so a
training animation shows connections appearing, strengthening and fading.
Each curve carries its bundling route (``core/bundling.py``'s ``Routes``:
the ids of its groups and clusters) and each point its weights along the
route; the scene's node group draws the route from wherever the neurons
stand, and the keyframable bundling strength blends it with straight lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from . import bundling, importance, importance_timeline
from .errors import BlenderCNNError
from .layout import MINIMUM_SPACING, neuron_positions
from .timeline import weight_name

if TYPE_CHECKING:
    from .bundle import Bundle
    from .cells import LayerCells

ALL, STRONGEST_PER_NEURON, STRONGEST_SHARE = "ALL", "STRONGEST_PER_NEURON", "STRONGEST_SHARE"
# When the drawn weights are chosen: over every epoch of the run, or at the epoch the scene shows.
OVER_RUN, AT_EPOCH = "RUN", "EPOCH"
BY_WEIGHT, BY_IMPORTANCE = "WEIGHT", "IMPORTANCE"
# Above this many weights a layer pair is drawn by its strongest per neuron unless the user asks for all:
# a wall of two million straight lines is unreadable and slow to build.
AUTO_MAX_EDGES = 20_000


@dataclass(frozen=True)
class EdgeSelection:
    """Which weights of each dense layer become curves.

    ``mode``: ``ALL``; ``STRONGEST_PER_NEURON``: the ``per_neuron`` incoming
    weights of largest magnitude of every target neuron; ``STRONGEST_SHARE``:
    the ``share`` (0..1] of the layer's weights of largest magnitude. ``None``
    (the default) draws all of a layer's weights up to ``AUTO_MAX_EDGES`` and
    the strongest per neuron within that many above it. ``rank_by``: what
    "strongest" means, the weight's magnitude (``BY_WEIGHT``) or the
    connection's importance (``BY_IMPORTANCE``, ``core.importance``) for
    ``importance_class`` (-1: all classes). ``chosen``: ``OVER_RUN`` (the
    default) keeps the union of each epoch's strongest within the count one
    epoch's choice keeps (``selected_over_run``); ``AT_EPOCH`` the strongest
    at the epoch drawn only.
    """

    mode: str | None = None
    per_neuron: int = 0
    share: float = 1.0
    rank_by: str = BY_WEIGHT
    importance_class: int = -1
    chosen: str = OVER_RUN

    def __post_init__(self) -> None:
        if self.mode not in (None, ALL, STRONGEST_PER_NEURON, STRONGEST_SHARE):
            raise BlenderCNNError("edge selection", f"unknown mode {self.mode!r}")
        if self.mode == STRONGEST_PER_NEURON and self.per_neuron < 1:
            raise BlenderCNNError("edge selection", f"per_neuron must be at least 1, got {self.per_neuron}")
        if self.mode == STRONGEST_SHARE and not 0.0 < self.share <= 1.0:
            raise BlenderCNNError("edge selection", f"share must be in (0, 1], got {self.share}")
        if self.rank_by not in (BY_WEIGHT, BY_IMPORTANCE):
            raise BlenderCNNError("edge selection", f"unknown ranking {self.rank_by!r}")
        if self.chosen not in (OVER_RUN, AT_EPOCH):
            raise BlenderCNNError("edge selection", f"unknown choice {self.chosen!r}: {OVER_RUN} or {AT_EPOCH}")

    def for_kernel(self, inputs: int, outputs: int) -> EdgeSelection:
        """The concrete selection for a kernel of ``inputs`` x ``outputs`` weights."""
        if self.mode is not None:
            return self
        if inputs * outputs <= AUTO_MAX_EDGES:
            return EdgeSelection(ALL)
        return EdgeSelection(
            STRONGEST_PER_NEURON,
            per_neuron=max(1, AUTO_MAX_EDGES // outputs),
            rank_by=self.rank_by,
            importance_class=self.importance_class,
            chosen=self.chosen,
        )

    def describe(self, class_names: Sequence[str] = (), epochs: int = 1, epoch: int | None = None) -> str:
        """How the drawn weights were chosen, for a layer's label: ``epochs`` in the run, ``epoch`` drawn."""
        if self.mode == STRONGEST_PER_NEURON:
            chosen = f"strongest {self.per_neuron} per neuron"
        elif self.mode == STRONGEST_SHARE:
            chosen = f"strongest {self.share:.0%}"
        else:
            return "all"
        if self.rank_by == BY_IMPORTANCE:
            known = 0 <= self.importance_class < len(class_names)
            chosen += " by importance for " + (
                f"class {class_names[self.importance_class]}" if known else "all classes"
            )
        if epochs > 1 and self.chosen == OVER_RUN:
            chosen += " over the run"
        elif epochs > 1 and epoch is not None:
            chosen += f" at epoch {epoch}"
        return chosen

    def strengths(self, bundle: Bundle, layer_name: str, epoch: int, kernel: np.ndarray) -> np.ndarray:
        """What ranks the weights of a layer's ``kernel``: their magnitudes or the connections' importance."""
        if self.rank_by == BY_WEIGHT:
            return kernel
        class_count = len(bundle.class_names)
        class_index = self.importance_class if 0 <= self.importance_class < class_count else class_count
        return importance.edge_importance(bundle, layer_name, bundle.epoch_index(epoch), class_index)

    def chosen_weights(
        self, bundle: Bundle, layer_name: str, epoch: int, every_epoch: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(input index, output index) of the drawn weights of a layer whose kernel at every epoch is ``every_epoch``.

        ``epoch`` is the epoch drawn: the one that chooses with ``AT_EPOCH``.
        """
        chosen = self.for_kernel(*every_epoch.shape[1:])
        if chosen.mode == ALL:
            return selected_weights(every_epoch[0], chosen)
        if chosen.chosen == AT_EPOCH or len(every_epoch) == 1:
            index = bundle.epoch_index(epoch)
            return selected_weights(chosen.strengths(bundle, layer_name, epoch, every_epoch[index]), chosen)
        return selected_over_run(
            [
                chosen.strengths(bundle, layer_name, number, every_epoch[index])
                for index, number in enumerate(bundle.epochs)
            ],
            chosen,
        )


def selected_weights(kernel: npt.ArrayLike, selection: EdgeSelection) -> tuple[np.ndarray, np.ndarray]:
    """(input index, output index) int arrays of the weights ``selection`` keeps, sorted by output then input.

    Magnitude decides (``kernel`` holds weights, or importances: see
    ``EdgeSelection.strengths``); among equal magnitudes the lower index wins,
    so the result is the same on every run.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    inputs, outputs = kernel.shape
    selection = selection.for_kernel(inputs, outputs)
    if selection.mode == ALL:
        target, source = np.divmod(np.arange(inputs * outputs), inputs)
        return source, target
    # (outputs, inputs): one row per target neuron, each row contiguous, or partitioning the rows strides through
    # memory (CIFAR-10's 8192 x 256 kernel: 15 ms instead of 2).
    magnitude = np.abs(kernel.T, order="C")
    if selection.mode == STRONGEST_PER_NEURON:
        chosen = _strongest(magnitude, min(selection.per_neuron, inputs))
    else:
        keep = max(1, math.ceil(selection.share * inputs * outputs))
        chosen = _strongest(magnitude.reshape(1, -1), keep).reshape(outputs, inputs)
    target, source = np.nonzero(chosen)
    return source, target


def selected_over_run(kernels: Sequence[npt.ArrayLike], selection: EdgeSelection) -> tuple[np.ndarray, np.ndarray]:
    """(input index, output index) int arrays: the union of each epoch's strongest, within one epoch's count.

    ``kernels`` are one layer's weights (or importances) at each epoch. The
    count is what ``selected_weights`` keeps of one kernel: ``per_neuron``
    per target neuron, or the ``share`` of the layer. Within it, a neuron
    (or the layer) keeps the union of every epoch's strongest ``r`` for the
    largest ``r`` that fits, then fills the count from the weights that are
    some epoch's ``r + 1``-th strongest, those of largest magnitude over the
    run first. So a weight that matters at any epoch is drawn, and the count
    is the same at every epoch of an animation. Sorted by output then input;
    ties in magnitude go to the lower index, so the result is the same on
    every run.
    """
    first = np.asarray(kernels[0], dtype=np.float32)
    inputs, outputs = first.shape
    selection = selection.for_kernel(inputs, outputs)
    if selection.mode == ALL or len(kernels) == 1:
        return selected_weights(first, selection)
    per_neuron = selection.mode == STRONGEST_PER_NEURON
    # One row per target neuron, or a single row of the whole layer (output-major, as selected_weights).
    rows, columns = (outputs, inputs) if per_neuron else (1, inputs * outputs)
    keep = min(selection.per_neuron, inputs) if per_neuron else max(1, math.ceil(selection.share * inputs * outputs))
    best_rank = np.full((rows, columns), keep, dtype=np.int32)  # keep: in no epoch's strongest
    peak = np.zeros((rows, columns), dtype=np.float32)
    row_of = np.repeat(np.arange(rows), keep)
    for kernel in kernels:
        magnitude = np.abs(np.asarray(kernel, dtype=np.float32).T, order="C").reshape(rows, columns)
        np.maximum(peak, magnitude, out=peak)
        # Each row's strongest, found in linear time; only they are sorted, to rank them.
        _row, column = np.nonzero(_strongest(magnitude, keep))
        column = column.reshape(rows, keep)  # ascending, so a stable sort ranks ties by lower index
        order = np.argsort(-magnitude[row_of, column.ravel()].reshape(rows, keep), axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(keep)[None, :], axis=1)
        best = best_rank[row_of, column.ravel()].reshape(rows, keep)
        best_rank[row_of, column.ravel()] = np.minimum(best, rank).ravel()
    # Better ranks first, then the larger peak (a share below 1), so a fill never beats a better rank.
    score = (keep - best_rank).astype(np.float64) + peak / np.float64(max(float(peak.max()), 1e-30) * 2.0)
    target, source = np.nonzero(_strongest(score, keep))
    if not per_neuron:
        target, source = np.divmod(source, inputs)
    return source, target


def _strongest(values: np.ndarray, keep: int) -> np.ndarray:
    """bool mask of the ``keep`` largest values of each row; ties go to the lower index.

    A partition finds each row's threshold in linear time; a full sort of a
    2-million-weight kernel took most of a CIFAR-sized build.
    """
    columns = values.shape[1]
    threshold = np.partition(values, columns - keep, axis=1)[:, columns - keep][:, None]
    above = values > threshold
    ties = values == threshold
    missing = keep - above.sum(axis=1, keepdims=True)
    chosen = above | ties
    # Only rows with more ties at the threshold than places left need the lower indices picked.
    crowded = np.flatnonzero(ties.sum(axis=1, keepdims=True)[:, 0] > missing[:, 0])
    if len(crowded):
        chosen[crowded] = above[crowded] | (ties[crowded] & (np.cumsum(ties[crowded], axis=1) <= missing[crowded]))
    return chosen


@dataclass(frozen=True)
class DrawnLayer:
    """What one dense layer's curves show: how many of its weights, chosen how."""

    name: str
    drawn: int
    total: int
    selection: str

    @property
    def label(self) -> str:
        return f"{self.drawn:,} of {self.total:,} connections ({self.selection})"


def dense_connections(
    bundle: Bundle,
    layers: Sequence[LayerCells],
    epoch: int = -1,
    selection: EdgeSelection = EdgeSelection(),
    bundle_options: dict[str, Any] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], int, list[DrawnLayer]]:
    """The curves of every Dense layer fed by a 1D layer.

    Returns ``(curve_arrays, point_arrays, points_per_edge, drawn_layers)``:
    int32 ``source_cell``/``target_cell`` and float32 ``weight`` (at
    ``epoch``), ``weight_e{E}`` (at every epoch) and ``weight_max`` (the
    largest magnitude of that layer's kernel over all epochs) per curve, with
    its bundling route (``bundling.Routes.curve_arrays``); float32
    ``bundle_route`` (points, 3) per point (``Routes.point_arrays``); and a
    ``DrawnLayer`` per dense layer. ``selection`` chooses the drawn weights
    over the run or at ``epoch``. ``bundle_options`` go to
    ``bundling.route_edges``.
    """
    by_name = {cells.name: cells for cells in layers}
    curves: dict[str, list[np.ndarray]] = {
        name: []
        for name in (
            "source_cell",
            "target_cell",
            "weight",
            "weight_max",
            *(weight_name(index) for index in range(len(bundle.epochs))),
        )
    }
    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    drawn_layers: list[DrawnLayer] = []
    for layer in bundle.layers:
        if layer.type != "Dense" or len(layer.inputs) != 1:
            continue
        source_cells, target_cells = by_name[layer.inputs[0]], by_name[layer.name]
        kernel_info = next((w for w in layer.weights if w.name == "kernel"), None)
        if (
            len(source_cells.output_shape) != 1
            or kernel_info is None
            or not (source_cells.count and target_cells.count)
        ):
            continue
        kernel = np.asarray(bundle.weights(layer.name, epoch)["kernel"], dtype=np.float32)
        every_epoch = bundle.array(kernel_info.array)
        chosen = selection.for_kernel(*kernel.shape)
        source_unit, target_unit = chosen.chosen_weights(bundle, layer.name, epoch, every_epoch)
        curves["source_cell"].append(source_cells.start + source_unit)
        curves["target_cell"].append(target_cells.start + target_unit)
        curves["weight"].append(kernel[source_unit, target_unit])
        for index in range(len(bundle.epochs)):
            curves[weight_name(index)].append(np.asarray(every_epoch[index][source_unit, target_unit]))
        weight_max = float(np.max(np.abs(every_epoch))) or 1.0
        curves["weight_max"].append(np.full(len(source_unit), weight_max))
        for name, values in importance_timeline.edge_importance_arrays(
            bundle, layer.name, source_unit, target_unit
        ).items():
            curves.setdefault(name, []).append(values)
        # Where the cell layout puts the neurons by default: the routes found there hold wherever they go later.
        sources.append(neuron_positions(source_cells.count, source_cells.layer_index * MINIMUM_SPACING)[source_unit])
        targets.append(neuron_positions(target_cells.count, target_cells.layer_index * MINIMUM_SPACING)[target_unit])
        described = chosen.describe(bundle.class_names, len(bundle.epochs), bundle.epochs[bundle.epoch_index(epoch)])
        drawn_layers.append(DrawnLayer(layer.name, len(source_unit), kernel.size, described))
    integer = (
        "source_cell",
        "target_cell",
        *(importance_timeline.top_class_name(index) for index in range(len(bundle.epochs))),
    )
    curve_arrays = {
        name: np.ascontiguousarray(
            np.concatenate(chunks) if chunks else np.zeros(0), dtype=np.int32 if name in integer else np.float32
        )
        for name, chunks in curves.items()
    }
    count = len(curve_arrays["weight"])
    points = bundling.default_points_per_edge(count)
    no_edges = np.zeros((0, 3), np.float32)
    routes = bundling.route_edges(
        np.concatenate(sources) if count else no_edges,
        np.concatenate(targets) if count else no_edges,
        points,
        **(bundle_options or {}),
    )
    curve_arrays.update(routes.curve_arrays())
    return curve_arrays, routes.point_arrays(), points, drawn_layers
