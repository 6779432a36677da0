"""How each layer is computed from its input, as data the node groups can read.

Pure numpy, no bpy. Three kinds of arrays, written beside the cells:

- the *layer table*: one row per layer (row ``i`` is layer ``i``) saying which
  operation makes the layer from which input cells: its kind, the input layer's
  first cell and map shape, and for windowed operations (convolution, pooling)
  the window's size, strides, padding before the first row/column and dilation,
  which input channels a group of output channels reads, and where its kernel's
  weights sit among the kernel points. The node groups sample it at the focus
  layer, so which cells a chosen output pixel sees is computed in Geometry
  Nodes from the modifier's focus inputs, and can be keyframed.
- the *kernel weights*: one value per weight of every convolution kernel, each
  layer's kernel flattened in Keras order ``(ky, kx, in channel, out channel)``;
- ``winner_cells``: for a max-pooling cell the cell index of the input pixel
  that won its window (depends on the input and epoch), -1 elsewhere;
  ``core.timeline`` stores them per epoch and sample.

One table row per layer rather than per-cell copies keeps a VGG-sized network's
cell mesh small: the table is a few hundred bytes, the per-cell copies would be
tens of megabytes per attribute.
"""

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .cells import cell_count
from .forward import _window_extent

# Operation kinds, as the ``op_kind`` column stores them.
OP_NONE = 0
OP_CONVOLUTION = 1
OP_MAX_POOLING = 2
OP_AVERAGE_POOLING = 3
OP_FLATTEN = 4
OP_DENSE = 5
CONVOLUTIONS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D")
KERNEL_GRID_TYPES = ("Conv2D", "DepthwiseConv2D")
POOLINGS = {"MaxPooling2D": OP_MAX_POOLING, "AveragePooling2D": OP_AVERAGE_POOLING}
# Kernels with more weights than this are not written as kernel points (VGG16's 3x3x512x512 layers
# hold 2.4M each): their receptive fields still show, their weight grids do not.
KERNEL_WEIGHTS_LIMIT = 2_000_000

INT_COLUMNS = ("op_kind", "layer_start", "map_rows", "map_cols", "channels",
               "source_layer", "source_start", "source_rows", "source_cols", "source_channels",
               "kernel_rows", "kernel_cols", "stride_rows", "stride_cols", "pad_top", "pad_left",
               "dilation_rows", "dilation_cols", "group_inputs", "group_outputs",
               "kernel_start", "kernel_tap_stride", "kernel_in_stride")
FLOAT_COLUMNS = ("weight_max",)


@dataclass(frozen=True)
class OperationData:
    """What ``operation_data`` returns: the layer table and the kernel weights."""

    layer_table: dict
    kernel_weights: np.ndarray


def operation_data(bundle, layers, epoch=-1):
    """The layer table and kernel weights (of ``epoch``) of a network; winners are in ``core.timeline``.

    ``layers`` are ``core.cells.LayerCells`` (from ``layer_cells``).
    """
    return OperationData(*layer_table(bundle, layers, epoch))


def layer_table(bundle, layers, epoch=-1):
    """``({column: array with one row per layer}, kernel weights float32)``."""
    by_name = {cells.name: cells for cells in layers}
    rows = [_layer_row(bundle, layer, by_name) for layer in bundle.layers]
    kernels, kernel_start = [], 0
    for row, layer in zip(rows, bundle.layers):
        kernel = _kernel_of(layer)
        # A separable convolution's two kernels do not make one grid per tap; its window still shows.
        if layer.type not in KERNEL_GRID_TYPES or row["op_kind"] != OP_CONVOLUTION or kernel is None or int(np.prod(kernel.shape)) > KERNEL_WEIGHTS_LIMIT:
            continue
        values = np.asarray(bundle.weights(layer.name, epoch)[kernel.name], dtype=np.float32)
        row["kernel_start"] = kernel_start
        row["weight_max"] = float(np.max(np.abs(bundle.array(kernel.array)))) or 1.0
        kernels.append(values.ravel())
        kernel_start += values.size
    table = {name: np.ascontiguousarray([row[name] for row in rows], dtype=np.int32) for name in INT_COLUMNS}
    table.update({name: np.ascontiguousarray([row[name] for row in rows], dtype=np.float32)
                  for name in FLOAT_COLUMNS})
    weights = np.concatenate(kernels) if kernels else np.zeros(0, dtype=np.float32)
    return table, np.ascontiguousarray(weights, dtype=np.float32)


def _layer_row(bundle, layer, by_name):
    cells = by_name[layer.name]
    row = dict.fromkeys(INT_COLUMNS, 0)
    row.update(op_kind=OP_NONE, layer_start=cells.start, map_rows=cells.map_rows, map_cols=cells.map_cols,
               channels=cells.channels, source_layer=-1, source_start=-1, kernel_start=-1, weight_max=1.0,
               kernel_rows=1, kernel_cols=1, stride_rows=1, stride_cols=1, dilation_rows=1, dilation_cols=1,
               group_inputs=1, group_outputs=1)
    if len(layer.inputs) != 1 or not cells.count or not by_name[layer.inputs[0]].count:
        return row  # merges, and layers folded into a unit (no cells of their own) or reading one
    source = by_name[layer.inputs[0]]
    row.update(source_layer=source.layer_index, source_start=source.start, source_rows=source.map_rows,
               source_cols=source.map_cols, source_channels=source.channels)
    spatial = len(source.output_shape) == 3 and len(cells.output_shape) == 3
    channels_last = layer.config.get("data_format", "channels_last") == "channels_last"
    if layer.type == "Flatten":
        row["op_kind"] = OP_FLATTEN
    elif layer.type == "Dense" and len(source.output_shape) == 1:
        row["op_kind"] = OP_DENSE
    elif spatial and channels_last and (layer.type in CONVOLUTIONS or layer.type in POOLINGS):
        window = window_geometry(layer.type, layer.config, source.output_shape, cells.output_shape)
        if window is not None:
            row.update(window)
            row["op_kind"] = OP_CONVOLUTION if layer.type in CONVOLUTIONS else POOLINGS[layer.type]
            if layer.type == "Conv2D":
                kernel = _kernel_of(layer)
                if kernel is not None:
                    # Keras' kernel is (ky, kx, inputs per group, filters): consecutive taps are
                    # inputs*filters apart, consecutive input channels filters apart.
                    row["kernel_tap_stride"] = kernel.shape[2] * kernel.shape[3]
                    row["kernel_in_stride"] = kernel.shape[3]
            elif layer.type == "DepthwiseConv2D":
                kernel = _kernel_of(layer)
                if kernel is not None:
                    # (ky, kx, channels, multiplier): output channel c*M + m sits at tap*C*M + c*M + m.
                    row["kernel_tap_stride"] = kernel.shape[2] * kernel.shape[3]
    return row


def window_geometry(layer_type, config, input_shape, output_shape):
    """The window of a Conv2D/DepthwiseConv2D/SeparableConv2D/pooling layer, as table columns.

    Input row ``r`` is in the window of output row ``y`` iff ``r + pad_top - y * stride_rows``
    is a multiple of ``dilation_rows`` whose quotient lies in ``[0, kernel_rows)``; the same for
    columns. Output channel ``c`` reads the ``group_inputs`` input channels from
    ``(c // group_outputs) * group_inputs``. Returns None for paddings other than valid/same.
    """
    padding = str(config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        return None
    in_rows, in_cols, in_channels = (int(size) for size in input_shape)
    out_channels = int(output_shape[2])
    if layer_type in POOLINGS:
        kernel = _pair(config.get("pool_size", 2))
        strides = _pair(config.get("strides") or kernel)
        dilation = (1, 1)
        group_inputs, group_outputs = 1, 1
    else:
        kernel = _pair(config.get("kernel_size", 1))
        strides = _pair(config.get("strides", 1))
        dilation = _pair(config.get("dilation_rate", 1))
        if layer_type == "DepthwiseConv2D":
            group_inputs, group_outputs = 1, max(out_channels // in_channels, 1)
        else:
            groups = int(config.get("groups", 1)) if layer_type == "Conv2D" else 1
            group_inputs, group_outputs = in_channels // groups, out_channels // groups
    extents = [(kernel[axis] - 1) * dilation[axis] + 1 for axis in (0, 1)]
    _rows, pad_top, _ = _window_extent(in_rows, extents[0], strides[0], padding)
    _cols, pad_left, _ = _window_extent(in_cols, extents[1], strides[1], padding)
    return dict(kernel_rows=kernel[0], kernel_cols=kernel[1], stride_rows=strides[0], stride_cols=strides[1],
                pad_top=pad_top, pad_left=pad_left, dilation_rows=dilation[0], dilation_cols=dilation[1],
                group_inputs=group_inputs, group_outputs=group_outputs)


def winner_cells(bundle, layers, activations):
    """Per cell, the cell index of the input pixel that wins its max-pooling window; -1 elsewhere.

    ``activations`` maps layer names to one sample's output; only the inputs of
    max-pooling layers are read. Ties go to the first pixel in row-major window order,
    as numpy's argmax does.
    """
    by_name = {cells.name: cells for cells in layers}
    winners = np.full(cell_count(layers), -1, dtype=np.int32)
    for layer in bundle.layers:
        if layer.type != "MaxPooling2D" or len(layer.inputs) != 1:
            continue
        source, pooled = by_name[layer.inputs[0]], by_name[layer.name]
        if len(source.output_shape) != 3 or layer.config.get("data_format", "channels_last") != "channels_last":
            continue
        if not pooled.count or pooled.channels > source.channels:
            continue  # folded into a unit, or its winners' maps are not all shown
        window = window_geometry(layer.type, layer.config, source.output_shape, pooled.output_shape)
        if window is None:
            continue
        values = np.asarray(activations[source.name], dtype=np.float32)[..., :pooled.channels]
        winners[pooled.start:pooled.start + pooled.count] = _pool_winners(
            values, window, (*pooled.output_shape[:2], pooled.channels), source.start)
    return np.ascontiguousarray(winners)


def _pool_winners(values, window, output_shape, source_start):
    """Cell indices of each window's maximum, in the pooled layer's cell order (channel, row, col)."""
    rows, cols, channels = values.shape
    out_rows, out_cols, _ = output_shape
    size = (window["kernel_rows"], window["kernel_cols"])
    strides = (window["stride_rows"], window["stride_cols"])
    top, left = window["pad_top"], window["pad_left"]
    bottom = max((out_rows - 1) * strides[0] + size[0] - rows - top, 0)
    right = max((out_cols - 1) * strides[1] + size[1] - cols - left, 0)
    padded = np.pad(values, ((top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    windows = sliding_window_view(padded, size, axis=(0, 1))[::strides[0], ::strides[1]][:out_rows, :out_cols]
    best = windows.reshape(out_rows, out_cols, channels, -1).argmax(axis=-1)  # (rows', cols', C)
    out_row, out_col = np.indices((out_rows, out_cols))
    row = out_row[..., None] * strides[0] - top + best // size[1]
    col = out_col[..., None] * strides[1] - left + best % size[1]
    channel = np.arange(channels)
    cell = source_start + (channel * rows + row) * cols + col
    return cell.transpose(2, 0, 1).ravel()


def _kernel_of(layer):
    return next((w for w in layer.weights if w.name in ("kernel", "depthwise_kernel")), None)


def _pair(value):
    return (int(value), int(value)) if np.isscalar(value) else (int(value[0]), int(value[1]))
