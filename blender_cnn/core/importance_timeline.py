"""Importance as the scene stores it: a small table of rows for the cells, attributes for the connection curves.

Pure numpy. The cells look their importance up in a table with one row per
channel (feature maps) or unit (1-D layers), plus one row per layer for its
folded summary map, so millions of cells add one integer each rather than a
value per epoch and class. Connection curves carry their own values.

For every epoch ``E`` and class ``k`` there is ``importance_e{E}_c{k}``, and
``importance_e{E}_all`` for all classes (``core.importance``'s last row);
``importance_top_e{E}`` names the class each row (or curve) matters most for.
Values are divided by their layer's largest at that epoch and class, so each
layer shows which of its own neurons matter, from 0 to 1. Above
``CLASS_LIMIT`` classes only the all-classes values and the top class are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from . import importance
from .cells import cell_count, summarized

if TYPE_CHECKING:
    from .bundle import Bundle
    from .cells import LayerCells

CLASS_LIMIT = 32


def importance_name(epoch_index: int, class_index: int | None = None) -> str:
    suffix = "all" if class_index is None else f"c{class_index}"
    return f"importance_e{epoch_index}_{suffix}"


def top_class_name(epoch_index: int) -> str:
    return f"importance_top_e{epoch_index}"


def stored_class_count(bundle: Bundle) -> int:
    """How many classes get values of their own in the scene (0 when there are too many)."""
    count = len(bundle.class_names)
    return count if count <= CLASS_LIMIT else 0


def _row_starts(layers: Sequence[LayerCells]) -> tuple[dict[str, int], int]:
    """``({layer name: its first row}, row count)``: a row per channel or unit, and one for the layer's summary."""
    starts: dict[str, int] = {}
    row = 0
    for cells in layers:
        starts[cells.name] = row
        row += (cells.channels if len(cells.output_shape) == 3 else cells.count) + 1  # + the layer's summary row
    return starts, row


def cell_rows(layers: Sequence[LayerCells]) -> tuple[np.ndarray, int]:
    """``(row of every cell, row count)``: the cells in ``cells.cell_arrays``' order, summaries included."""
    starts, row = _row_starts(layers)
    rows = np.empty(cell_count(layers), dtype=np.int32)
    for cells in layers:
        span = slice(cells.start, cells.start + cells.count)
        if len(cells.output_shape) == 3:
            per_map = cells.map_rows * cells.map_cols
            rows[span] = starts[cells.name] + np.repeat(np.arange(cells.channels, dtype=np.int32), per_map)
        else:
            rows[span] = starts[cells.name] + np.arange(cells.count, dtype=np.int32)
    position = sum(cells.count for cells in layers)
    for _kind in range(2):  # mean maps, then max maps, as cell_arrays lays them out
        for cells in summarized(layers):
            size = cells.map_rows * cells.map_cols
            rows[position : position + size] = starts[cells.name] + cells.channels
            position += size
    return rows, row


def importance_table(bundle: Bundle, layers: Sequence[LayerCells]) -> dict[str, np.ndarray]:
    """``{attribute name: (rows,) array}`` of the table the cells read, every epoch and stored class."""
    _starts, row_count = _row_starts(layers)
    stored = stored_class_count(bundle)
    class_count = len(bundle.class_names)
    table: dict[str, np.ndarray] = {}
    for epoch_index in range(len(bundle.epochs)):
        values = np.zeros((class_count + 1, row_count), dtype=np.float32)
        start = 0
        for cells in layers:
            units = cells.channels if len(cells.output_shape) == 3 else cells.count
            if cells.count:
                per_unit = importance.neuron_importance(bundle, cells.name, epoch_index)  # (K+1, all units)
                values[:, start : start + units] = per_unit[:, :units]
                values[:, start + units] = per_unit.mean(axis=1)  # the folded summary map: the layer's mean
            start += units + 1
        table[top_class_name(epoch_index)] = _top_classes(values[:class_count])
        normalized = _per_layer_normalized(values, layers)
        table[importance_name(epoch_index)] = normalized[class_count]
        for class_index in range(stored):
            table[importance_name(epoch_index, class_index)] = normalized[class_index]
    return table


def edge_importance_arrays(
    bundle: Bundle, layer_name: str, source_unit: np.ndarray, target_unit: np.ndarray
) -> dict[str, np.ndarray]:
    """``{attribute name: (n,) array}`` for the drawn connections ``source_unit -> target_unit`` of a Dense layer.

    The same values as ``core.importance.edge_importance``, gathered for the
    drawn edges only: a CIFAR-sized layer has two million weights but draws
    twenty thousand.
    """
    class_count = len(bundle.class_names)
    stored = stored_class_count(bundle)
    groups = importance.class_samples(bundle.array(bundle.manifest["samples"]["labels"]), class_count)
    share = np.zeros((bundle.sample_count, class_count), dtype=np.float32)
    for k, samples in enumerate(groups):
        share[samples, k] = 1.0 / len(samples)
    arrays: dict[str, np.ndarray] = {}
    for epoch_index, epoch in enumerate(bundle.epochs):
        inputs = np.abs(importance.dense_input_activations(bundle, layer_name, epoch_index))[:, source_unit]
        weights = np.abs(
            np.asarray(bundle.weights(layer_name, epoch)["kernel"], dtype=np.float32)[source_unit, target_unit]
        )
        gradients = (
            bundle.output_gradients(layer_name, epoch)
            if importance.importance_method(bundle) == importance.GRADIENT_X_ACTIVATION
            else None
        )
        if gradients is None:
            per_class = (share.T @ inputs) * weights  # (K, n)
        else:
            gathered = np.abs(np.asarray(gradients, dtype=np.float32))[:, :, target_unit]  # (S, K, n)
            per_class = np.einsum("sk,sn,skn->kn", share, inputs, gathered) * weights
        values = np.concatenate([per_class, per_class.mean(axis=0, keepdims=True)])
        arrays[top_class_name(epoch_index)] = _top_classes(per_class)
        values /= np.maximum(values.max(axis=1, keepdims=True), 1e-30)
        arrays[importance_name(epoch_index)] = values[class_count]
        for class_index in range(stored):
            arrays[importance_name(epoch_index, class_index)] = values[class_index]
    return {name: np.ascontiguousarray(value) for name, value in arrays.items()}


def _top_classes(per_class: np.ndarray) -> np.ndarray:
    """The class each column matters most for (ties: the lower class)."""
    return np.argmax(per_class, axis=0).astype(np.int32)


def _per_layer_normalized(values: np.ndarray, layers: Sequence[LayerCells]) -> np.ndarray:
    """Each layer's rows divided by that layer's largest value, per class."""
    normalized = np.zeros_like(values)
    start = 0
    for cells in layers:
        units = (cells.channels if len(cells.output_shape) == 3 else cells.count) + 1
        part = values[:, start : start + units]
        normalized[:, start : start + units] = part / np.maximum(part.max(axis=1, keepdims=True), 1e-30)
        start += units
    return normalized
