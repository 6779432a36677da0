"""What the scene shows, as flat numpy arrays: one cell per activation, one edge per weight.

Pure numpy, no bpy. The builder writes these arrays onto Blender geometry as
attributes; the node groups compute positions and colors from them.
Cells are ordered layer by layer; within a spatial layer channel-major, then
row, then column; within a 1D layer in unit order, so that neuron ``i`` of a
dense or flatten layer is cell ``layer_start + i``. After the cells of all
layers come the *summary* cells (``is_summary`` 1): one map per spatial layer
holding the mean over its channels (and ``summary_max``, the maximum), which
the scene shows when a layer is folded.
"""

import math
from dataclasses import dataclass

import numpy as np

from .layer_types import is_known_layer_type

# Dense layers up to this many neurons are drawn as one column; wider ones as a near-square grid.
COLUMN_MAX_NEURONS = 64


@dataclass(frozen=True)
class LayerCells:
    """Where one layer's cells sit in the cell arrays and how its maps are shaped."""

    layer_index: int
    name: str
    type: str
    output_shape: tuple
    map_rows: int
    map_cols: int
    channels: int
    start: int
    count: int

    @property
    def label(self):
        shape = "x".join(str(size) for size in self.output_shape)
        label = f"{self.name}\n{self.type} {shape}"
        # Layers the add-on cannot interpret still show their outputs; the label says so.
        return label if is_known_layer_type(self.type) else label + "\n(outputs only)"


def display_shape(output_shape):
    """(rows, cols, channels) of the maps that show a layer's output."""
    if len(output_shape) == 3:
        return tuple(int(size) for size in output_shape)
    units = int(np.prod(output_shape))
    if units <= COLUMN_MAX_NEURONS:
        return units, 1, 1
    cols = math.ceil(math.sqrt(units))
    return math.ceil(units / cols), cols, 1


def layer_cells(bundle):
    """The ``LayerCells`` of every layer in the bundle, in order."""
    layers, start = [], 0
    for layer in bundle.layers:
        rows, cols, channels = display_shape(layer.output_shape)
        count = int(np.prod(layer.output_shape))
        layers.append(LayerCells(layer.index, layer.name, layer.type, layer.output_shape,
                                 rows, cols, channels, start, count))
        start += count
    return layers


def cell_arrays(bundle, epoch=-1, sample=0):
    """Per-cell int32 indices and float32 values for one epoch and sample.

    Returns ``(layers, arrays)``; ``arrays`` maps attribute names to arrays of
    length ``sum(layer.count)``. ``act_low``/``act_high`` are the layer's range
    over all epochs and samples, so colors stay comparable through training.
    """
    layers = layer_cells(bundle)
    columns = {name: [] for name in ("layer", "channel", "row", "col", "map_rows", "map_cols", "channels",
                                     "is_neuron", "is_summary")}
    ranges = {"act_low": [], "act_high": []}

    # A layer's range scans all its epochs and samples: once per layer, shared by its summary map.
    layer_ranges = {cells.name: activation_range(bundle.array(bundle.layer(cells.name).activations))
                    for cells in layers}

    def add(cells, channel, row, col, is_summary):
        n = len(row)
        for name, column in (("layer", np.full(n, cells.layer_index)), ("channel", channel), ("row", row),
                             ("col", col), ("map_rows", np.full(n, cells.map_rows)),
                             ("map_cols", np.full(n, cells.map_cols)), ("channels", np.full(n, cells.channels)),
                             # Only neurons drawn as a column get the larger pitch: a wide layer drawn as a
                             # grid (a flatten of thousands) would otherwise dwarf the feature maps.
                             ("is_neuron", np.full(n, int(len(cells.output_shape) == 1 and cells.map_cols == 1))),
                             ("is_summary", np.full(n, int(is_summary)))):
            columns[name].append(column)
        low, high = layer_ranges[cells.name]
        ranges["act_low"].append(np.full(n, low))
        ranges["act_high"].append(np.full(n, high))

    for cells in layers:
        if len(cells.output_shape) == 3:
            channel, row, col = np.indices((cells.channels, cells.map_rows, cells.map_cols)).reshape(3, -1)
        else:
            unit = np.arange(cells.count)
            channel, row, col = np.zeros_like(unit), unit // cells.map_cols, unit % cells.map_cols
        add(cells, channel, row, col, is_summary=False)
    for cells in summarized(layers):
        row, col = np.indices((cells.map_rows, cells.map_cols)).reshape(2, -1)
        add(cells, np.zeros_like(row), row, col, is_summary=True)
    arrays = {name: np.ascontiguousarray(np.concatenate(parts), dtype=np.int32) for name, parts in columns.items()}
    arrays.update({name: np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)
                   for name, parts in ranges.items()})
    arrays.update(cell_activations(
        layers, {cells.name: bundle.activations(cells.name, epoch, sample) for cells in layers}))
    return layers, arrays


def summarized(layers):
    """The layers that get a summary map when folded: those with feature maps."""
    return [cells for cells in layers if len(cells.output_shape) == 3]


def cell_count(layers):
    """Cells of all layers plus their summary maps: the length of every cell array."""
    return sum(cells.count for cells in layers) + sum(cells.map_rows * cells.map_cols for cells in summarized(layers))


def cell_activations(layers, activations):
    """``activation`` and ``summary_max`` per cell, in cell order, from ``{layer name: one sample's output}``.

    A layer's cells get its output; its summary cells get the mean over its
    channels as ``activation`` and the maximum as ``summary_max`` (0 on all
    other cells). Serves activations read from a bundle and those computed by
    the forward pass alike.
    """
    flat, means, maxima = [], [], []
    for cells in layers:
        values = np.asarray(activations[cells.name], dtype=np.float32)
        flat.append(values.transpose(2, 0, 1).ravel() if len(cells.output_shape) == 3 else values.ravel())
    for cells in summarized(layers):
        values = np.asarray(activations[cells.name], dtype=np.float32)
        means.append(values.mean(axis=2).ravel())
        maxima.append(values.max(axis=2).ravel())
    summaries = sum(len(mean) for mean in means)
    real = np.concatenate(flat)
    return {
        "activation": np.ascontiguousarray(np.concatenate([real, *means]), dtype=np.float32),
        "summary_max": np.ascontiguousarray(np.concatenate([np.zeros(len(real)), *maxima])
                                            if summaries else np.zeros(len(real)), dtype=np.float32),
    }


def activation_range(all_activations):
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


def dense_connections(bundle, layers, epoch=-1):
    """One edge per weight of every Dense layer fed by a 1D layer (flatten or dense).

    Returns int32 ``source_cell``/``target_cell`` and float32 ``weight`` and
    ``weight_max`` (the largest magnitude of that layer's kernel over all epochs).
    """
    by_name = {cells.name: cells for cells in layers}
    parts = {name: [] for name in ("source_cell", "target_cell", "weight", "weight_max")}
    for layer in bundle.layers:
        if layer.type != "Dense" or len(layer.inputs) != 1:
            continue
        source, target = by_name[layer.inputs[0]], by_name[layer.name]
        if len(source.output_shape) != 1:
            continue
        kernel_info = next((w for w in layer.weights if w.name == "kernel"), None)
        if kernel_info is None:
            continue
        kernel = np.asarray(bundle.weights(layer.name, epoch)["kernel"], dtype=np.float32)
        inputs, outputs = kernel.shape
        source_index, target_index = np.meshgrid(np.arange(inputs), np.arange(outputs), indexing="ij")
        parts["source_cell"].append(source.start + source_index.ravel())
        parts["target_cell"].append(target.start + target_index.ravel())
        parts["weight"].append(kernel.ravel())
        weight_max = float(np.max(np.abs(bundle.array(kernel_info.array)))) or 1.0
        parts["weight_max"].append(np.full(kernel.size, weight_max))
    dtypes = {"source_cell": np.int32, "target_cell": np.int32, "weight": np.float32, "weight_max": np.float32}
    return {name: np.ascontiguousarray(np.concatenate(chunks) if chunks else np.zeros(0), dtype=dtypes[name])
            for name, chunks in parts.items()}
