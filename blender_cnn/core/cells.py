"""What the scene shows, as flat numpy arrays: one cell per activation, one edge per weight.

Pure numpy, no bpy. The builder writes these arrays onto Blender geometry as
attributes; the node groups compute positions and colors from them.
Cells are ordered layer by layer; within a spatial layer channel-major, then
row, then column; within a 1D layer in unit order, so that neuron ``i`` of a
dense or flatten layer is cell ``layer_start + i``. After the cells of all
layers come the *summary* cells: one map per spatial layer holding the mean
over its channels (``is_summary`` 1), then one holding the maximum
(``is_summary`` 2); the scene shows one of them when a layer is folded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .attributes import CELLS, LAYER_TABLE, carried_by
from .layer_specs import is_known_layer_type

if TYPE_CHECKING:
    from .bundle import Bundle

SUMMARY_MEAN, SUMMARY_MAX = 1, 2
# Dense layers up to this many neurons are drawn as one column; wider ones as a near-square grid.
COLUMN_MAX_NEURONS = 64


@dataclass(frozen=True)
class LayerCells:
    """Where one layer's cells sit in the cell arrays and how its maps are shaped."""

    layer_index: int
    name: str
    type: str
    output_shape: tuple[int, ...]
    map_rows: int
    map_cols: int
    channels: int
    start: int
    count: int

    @property
    def label(self) -> str:
        shape = "x".join(str(size) for size in self.output_shape)
        label = f"{self.name}\n{self.type} {shape}"
        # Layers the add-on cannot interpret still show their outputs; the label says so.
        return label if is_known_layer_type(self.type) else label + "\n(outputs only)"


def display_shape(output_shape: Sequence[int]) -> tuple[int, int, int]:
    """(rows, cols, channels) of the maps that show a layer's output."""
    if len(output_shape) == 3:
        rows, cols, channels = output_shape
        return int(rows), int(cols), int(channels)
    units = int(np.prod(output_shape))
    if units <= COLUMN_MAX_NEURONS:
        return units, 1, 1
    cols = math.ceil(math.sqrt(units))
    return math.ceil(units / cols), cols, 1


def layer_cells(bundle: Bundle, shown: Mapping[str, int] | None = None) -> list[LayerCells]:
    """The ``LayerCells`` of every layer in the bundle, in order.

    ``shown`` (``{layer name: channels}``, None for every layer in full) says
    which layers get cells and how many of a feature-map layer's channels:
    a layer left out gets none (it is folded into a unit the scene shows, see
    ``core/graph.py``), and a capped layer its first channels only, so a deep
    network's scene stays within its memory budget.
    """
    layers, start = [], 0
    for layer in bundle.layers:
        rows, cols, channels = display_shape(layer.output_shape)
        count = int(np.prod(layer.output_shape))
        if shown is not None:
            channels = min(channels, int(shown.get(layer.name, 0)))
            count = rows * cols * channels if len(layer.output_shape) == 3 else (count if channels else 0)
        layers.append(
            LayerCells(layer.index, layer.name, layer.type, layer.output_shape, rows, cols, channels, start, count)
        )
        start += count
    return layers


# The per-cell attributes ``cell_arrays`` writes, at their types in ``core/attributes.py``.
CELL_COLUMNS = ("layer", "channel", "row", "col", "is_summary")
# The per-layer values ``layer_columns`` writes into the layer table, where the cells look them up by ``layer``:
# stored on every cell they took VGG16 353 MB (15 million cells), in the file and through every evaluation.
LAYER_COLUMNS = ("map_rows", "map_cols", "channels", "is_neuron", "act_low", "act_high")


def cell_arrays(
    bundle: Bundle, epoch: int = -1, sample: int = 0, shown: Mapping[str, int] | None = None
) -> tuple[list[LayerCells], dict[str, np.ndarray]]:
    """Per-cell int32 indices and float32 values for one epoch and sample (``shown`` as in ``layer_cells``).

    Returns ``(layers, arrays)``; ``arrays`` maps attribute names to arrays of
    length ``cell_count(layers)``. What is the same for a whole layer is in ``layer_columns``.
    """
    layers = layer_cells(bundle, shown)
    total = cell_count(layers)
    # Filled in place, slice by slice: at VGG scale (15 million cells) building per-layer
    # int64 pieces and concatenating them took seconds.
    schema = carried_by(CELLS)
    arrays: dict[str, np.ndarray] = {name: np.empty(total, dtype=schema[name].dtype) for name in CELL_COLUMNS}

    def fill(cells: LayerCells, start: int, channels: int, is_summary: int) -> int:
        """The cells of ``channels`` maps of ``cells``' shape from ``start``, channel-major, then row, then column."""
        rows, cols = cells.map_rows, cells.map_cols
        end = start + channels * rows * cols
        grid = arrays["channel"][start:end].reshape(channels, rows, cols)
        grid[...] = np.arange(channels, dtype=np.int32)[:, None, None]
        arrays["row"][start:end].reshape(channels, rows, cols)[...] = np.arange(rows, dtype=np.int32)[None, :, None]
        arrays["col"][start:end].reshape(channels, rows, cols)[...] = np.arange(cols, dtype=np.int32)[None, None, :]
        arrays["layer"][start:end] = cells.layer_index
        arrays["is_summary"][start:end] = int(is_summary)
        return end

    for cells in layers:
        if not cells.count:
            continue
        if len(cells.output_shape) == 3:
            fill(cells, cells.start, cells.channels, is_summary=False)
        else:
            # A 1D layer: unit u sits at row u // cols, column u % cols of one map; a last row may be short.
            unit = np.arange(cells.count, dtype=np.int32)
            span = slice(cells.start, cells.start + cells.count)
            arrays["channel"][span], arrays["row"][span], arrays["col"][span] = (
                0,
                unit // cells.map_cols,
                unit % cells.map_cols,
            )
            arrays["layer"][span], arrays["is_summary"][span] = cells.layer_index, 0
    start = sum(cells.count for cells in layers)
    for kind in (SUMMARY_MEAN, SUMMARY_MAX):
        for cells in summarized(layers):
            start = fill(cells, start, 1, is_summary=kind)
    arrays.update(
        cell_activations(
            layers, {cells.name: bundle.activations(cells.name, epoch, sample) for cells in layers if cells.count}
        )
    )
    return layers, arrays


def layer_columns(bundle: Bundle, layers: Sequence[LayerCells]) -> dict[str, np.ndarray]:
    """``{column: array}``, one row per layer of the bundle (``layer_index``): ``LAYER_COLUMNS``.

    ``act_low``/``act_high`` are the layer's range over all epochs and samples, so colors stay comparable through
    training; a layer without cells has an empty range (inf, -inf), which widens no range it is part of.
    """
    schema = carried_by(LAYER_TABLE)
    count = len(bundle.layers)
    columns: dict[str, np.ndarray] = {name: np.zeros(count, dtype=schema[name].dtype) for name in LAYER_COLUMNS}
    columns["act_low"][:], columns["act_high"][:] = np.inf, -np.inf
    for cells in layers:
        if not cells.count:
            continue
        row = cells.layer_index
        spatial = len(cells.output_shape) == 3
        columns["map_rows"][row], columns["map_cols"][row] = cells.map_rows, cells.map_cols
        columns["channels"][row] = cells.channels if spatial else 1
        # Only neurons drawn as a column get the larger pitch: a wide layer drawn as a grid (a flatten
        # of thousands) would otherwise dwarf the feature maps.
        columns["is_neuron"][row] = int(not spatial and cells.map_cols == 1)
        # A layer's range scans all its epochs and samples.
        low, high = activation_range(bundle.array(bundle.layer(cells.name).activations))
        columns["act_low"][row], columns["act_high"][row] = low, high
    return columns


def summarized(layers: Sequence[LayerCells]) -> list[LayerCells]:
    """The layers that get a summary map when folded: those with feature maps that are shown."""
    return [cells for cells in layers if len(cells.output_shape) == 3 and cells.count]


def cell_count(layers: Sequence[LayerCells]) -> int:
    """Cells of all layers plus their two summary maps: the length of every cell array."""
    return sum(cells.count for cells in layers) + 2 * summary_cell_count(layers)


def summary_cell_count(layers: Sequence[LayerCells]) -> int:
    """Cells of one kind of summary map (mean or max) over all layers."""
    return sum(cells.map_rows * cells.map_cols for cells in summarized(layers))


def cell_activations(layers: Sequence[LayerCells], activations: Mapping[str, npt.ArrayLike]) -> dict[str, np.ndarray]:
    """``activation`` per cell, in cell order, from ``{layer name: one sample's output}``.

    A layer's cells get its output; its summary cells the mean over its
    channels, then the maximum. Serves activations read from a bundle and
    those computed by the forward pass alike.
    """
    activation = np.empty(cell_count(layers), dtype=np.float32)
    for cells in layers:
        if not cells.count:
            continue
        values = np.asarray(activations[cells.name], dtype=np.float32)
        target = activation[cells.start : cells.start + cells.count]
        if len(cells.output_shape) == 3:
            # The summary maps below still cover every channel, shown or not.
            target.reshape(cells.channels, cells.map_rows, cells.map_cols)[...] = values[
                ..., : cells.channels
            ].transpose(2, 0, 1)
        else:
            target[...] = values.ravel()
    start = sum(cells.count for cells in layers)
    for summary in (np.mean, np.max):
        for cells in summarized(layers):
            end = start + cells.map_rows * cells.map_cols
            activation[start:end] = summary(np.asarray(activations[cells.name], dtype=np.float32), axis=2).ravel()
            start = end
    return {"activation": activation}


def activation_range(all_activations: np.ndarray) -> tuple[float, float]:
    """(low, high) for coloring: zero-based for non-negative layers, symmetric when signed."""
    low, high = float(np.min(all_activations)), float(np.max(all_activations))
    if low >= 0.0:
        low = 0.0
    else:
        bound = max(-low, high)
        low, high = -bound, bound
    if high <= low:
        high = low + 1.0
    return low, high
