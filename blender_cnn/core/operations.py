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
  layer's kernel flattened in Keras order ``(ky, kx, in channel, out channel)``,
  then every convolution's biases (``bias_start``), so that a sweep can show
  the whole sum of a window, bias included, for any epoch;
- ``winner_cells``: for a max-pooling cell the cell index of the input pixel
  that won its window (depends on the input and epoch), -1 elsewhere;
  ``core.timeline`` stores them per epoch and sample.

One table row per layer rather than per-cell copies keeps a VGG-sized network's
cell mesh small: the table is a few hundred bytes, the per-cell copies would be
tens of megabytes per attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from . import layer_specs as specs
from .cells import cell_count
from .layer_specs import types_where
from .numpy_layers import is_scalar, pair, window_extent

if TYPE_CHECKING:
    from .bundle import Bundle, LayerInfo, WeightInfo
    from .cells import LayerCells

# A layer table row, {column: value}: ints, and float for weight_max.
Row = dict[str, float]

# Operation kinds, as the ``op_kind`` column stores them.
OP_NONE = 0
OP_CONVOLUTION = 1
OP_MAX_POOLING = 2
OP_AVERAGE_POOLING = 3
OP_FLATTEN = 4
OP_DENSE = 5
OP_TRANSPOSED_CONVOLUTION = 6  # the window seen from the output: which input cells scatter onto a pixel
OP_GLOBAL_POOLING = 7  # a neuron (or 1x1 map) per channel, from the whole map of that channel
OP_ELEMENTWISE = 8  # Add, Multiply...: cell (row, col, channel) of every input makes the same cell
OP_CONCATENATE = 9  # channel c comes from the input whose channels span c, at c minus its offset
# The inputs of a merge the table names (an Inception module concatenates four towers).
MERGE_INPUTS_SHOWN = 4
WINDOWED_OP_KINDS = {
    specs.CONVOLUTION: OP_CONVOLUTION,
    specs.MAX_POOLING: OP_MAX_POOLING,
    specs.AVERAGE_POOLING: OP_AVERAGE_POOLING,
}
# A separable convolution's two kernels do not make one grid per tap; the others' one kernel does.
KERNEL_GRID_TYPES = types_where(operation=specs.CONVOLUTION) - types_where(inspection=specs.INSPECT_SEPARABLE)
# Kernels with more weights than this are not written as kernel points (VGG16's 3x3x512x512 layers
# hold 2.4M each): their receptive fields still show, their weight grids do not.
KERNEL_WEIGHTS_LIMIT = 2_000_000

INT_COLUMNS = (
    "op_kind",
    "layer_start",
    "map_rows",
    "map_cols",
    "channels",
    "source_layer",
    "source_start",
    "source_rows",
    "source_cols",
    "source_channels",
    "kernel_rows",
    "kernel_cols",
    "stride_rows",
    "stride_cols",
    "pad_top",
    "pad_left",
    "dilation_rows",
    "dilation_cols",
    "group_inputs",
    "group_outputs",
    "kernel_start",
    "kernel_tap_stride",
    "kernel_in_stride",
    "bias_start",
    *(f"merge_input_{k}" for k in range(MERGE_INPUTS_SHOWN)),
    *(f"merge_offset_{k}" for k in range(MERGE_INPUTS_SHOWN)),
)
FLOAT_COLUMNS = ("weight_max",)


@dataclass(frozen=True)
class OperationData:
    """What ``operation_data`` returns: the layer table, the kernel weights, and the units they were made for."""

    layer_table: dict[str, np.ndarray]
    kernel_weights: np.ndarray
    units: Mapping[str, Sequence[str]] | None = None


def operation_data(
    bundle: Bundle, layers: Sequence[LayerCells], epoch: int = -1, units: Mapping[str, Sequence[str]] | None = None
) -> OperationData:
    """The layer table and kernel weights (of ``epoch``) of a network; winners are in ``core.timeline``.

    ``layers`` are ``core.cells.LayerCells`` (from ``layer_cells``). ``units``
    (``{shown layer name: the names of its unit's layers}``, see
    ``core/graph.py``) gives a unit's row the operation of the layer that
    computes it: a Conv + BN + ReLU unit shows the convolution's window in the
    unit before it, its padding taken into account.
    """
    return OperationData(*layer_table(bundle, layers, epoch, units), units)


def layer_table(
    bundle: Bundle, layers: Sequence[LayerCells], epoch: int = -1, units: Mapping[str, Sequence[str]] | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``({column: array with one row per layer}, kernel weights float32)``."""
    by_name = {cells.name: cells for cells in layers}
    computing = [_computing_layer(bundle, layer, (units or {}).get(layer.name)) for layer in bundle.layers]
    rows = [_layer_row(layer, by_name, *how) for layer, how in zip(bundle.layers, computing)]
    kernels, kernel_start = [], 0
    for row, (layer, _source, _padding) in zip(rows, computing):
        kernel = _kernel_of(layer)
        if (
            layer.type not in KERNEL_GRID_TYPES
            or row["op_kind"] != OP_CONVOLUTION
            or kernel is None
            or int(np.prod(kernel.shape)) > KERNEL_WEIGHTS_LIMIT
        ):
            continue
        values = np.asarray(bundle.weights(layer.name, epoch)[kernel.name], dtype=np.float32)
        row["kernel_start"] = kernel_start
        row["weight_max"] = float(np.max(np.abs(bundle.array(kernel.array)))) or 1.0
        kernels.append(values.ravel())
        kernel_start += values.size
    for row, (layer, _source, _padding) in zip(rows, computing):
        bias = _bias_of(layer)
        if row["op_kind"] != OP_CONVOLUTION or bias is None:
            continue
        values = np.asarray(bundle.weights(layer.name, epoch)[bias.name], dtype=np.float32).ravel()
        if values.size < row["channels"]:
            continue  # not one bias per output channel: the window's sum is shown without it
        row["bias_start"] = kernel_start
        kernels.append(values)
        kernel_start += values.size
    table = {name: np.ascontiguousarray([row[name] for row in rows], dtype=np.int32) for name in INT_COLUMNS}
    table.update({name: np.ascontiguousarray([row[name] for row in rows], dtype=np.float32) for name in FLOAT_COLUMNS})
    weights = np.concatenate(kernels) if kernels else np.zeros(0, dtype=np.float32)
    return table, np.ascontiguousarray(weights, dtype=np.float32)


def _computing_layer(
    bundle: Bundle, layer: LayerInfo, unit: Sequence[str] | None
) -> tuple[LayerInfo, str | None, tuple[int, int]]:
    """``(layer that computes this row, the layer it reads, (rows, cols) of padding in between)``.

    A layer on its own computes itself. A unit's output is computed by the
    unit's first layer that is not padding, when that layer keeps the unit's
    output shape (the BatchNormalization and activations after it do); a
    ZeroPadding2D in front of it is read through, its padding added to the window's.
    """
    own = (layer, layer.inputs[0] if len(layer.inputs) == 1 else None, (0, 0))
    if _is_merge(layer):
        return layer, None, (0, 0)
    if not unit or len(unit) < 2:
        return own
    members = [bundle.layer(name) for name in unit]
    head = next((member for member in members if member.type != "ZeroPadding2D"), None)
    if head is None or head is layer or tuple(head.output_shape) != tuple(layer.output_shape):
        return own
    if _is_merge(head):
        return head, None, (0, 0)
    if len(head.inputs) != 1:
        return own
    source, padding = head.inputs[0], (0, 0)
    if source in unit:  # the unit's own padding
        pad = bundle.layer(source)
        if pad.type != "ZeroPadding2D" or len(pad.inputs) != 1:
            return own
        source, padding = pad.inputs[0], _padding_before(pad.config.get("padding", 1))
    return head, source, padding


def _operation_of(layer: LayerInfo) -> str | None:
    """The registry's operation kind of ``layer``'s type (``core.layer_specs``), None for outputs only."""
    spec = specs.spec_of(layer.type)
    return spec.operation if spec is not None else None


def _is_merge(layer: LayerInfo) -> bool:
    return len(layer.inputs) > 1 and _operation_of(layer) in (specs.ELEMENTWISE, specs.CONCATENATE)


def _merge_row(row: Row, merge: LayerInfo, by_name: Mapping[str, LayerCells]) -> Row:
    """A merge's inputs with cells (at most ``MERGE_INPUTS_SHOWN``) and, for a concatenation, where each one's
    channels start in the output. An input without cells of its own (folded into a unit) is left out."""
    concatenates = _operation_of(merge) == specs.CONCATENATE
    if concatenates and int(merge.config.get("axis", -1)) not in (-1, len(merge.output_shape)):
        return row  # joined along rows or columns: no channel arithmetic to show
    offset, shown = 0, 0
    for name in merge.inputs:
        source = by_name[name]
        if source.count and shown < MERGE_INPUTS_SHOWN:
            row[f"merge_input_{shown}"], row[f"merge_offset_{shown}"] = source.layer_index, offset
            shown += 1
        offset += int(source.output_shape[-1]) if concatenates else 0
    if shown:
        row["op_kind"] = OP_CONCATENATE if concatenates else OP_ELEMENTWISE
    return row


def _padding_before(padding: Any) -> tuple[int, int]:
    """(top, left) of a ZeroPadding2D's ``padding``: an int, (rows, cols), or ((top, bottom), (left, right))."""
    if is_scalar(padding):
        return int(padding), int(padding)
    rows, cols = padding
    return (int(rows) if is_scalar(rows) else int(rows[0])), (int(cols) if is_scalar(cols) else int(cols[0]))


def _layer_row(
    layer: LayerInfo,
    by_name: Mapping[str, LayerCells],
    computing: LayerInfo,
    source_name: str | None,
    padding: tuple[int, int],
) -> Row:
    """The table row of ``layer``'s cells, computed by ``computing`` from ``source_name``'s cells."""
    cells = by_name[layer.name]
    row: Row = dict.fromkeys(INT_COLUMNS, 0)
    row.update(
        op_kind=OP_NONE,
        layer_start=cells.start,
        map_rows=cells.map_rows,
        map_cols=cells.map_cols,
        channels=cells.channels,
        source_layer=-1,
        source_start=-1,
        kernel_start=-1,
        bias_start=-1,
        weight_max=1.0,
        kernel_rows=1,
        kernel_cols=1,
        stride_rows=1,
        stride_cols=1,
        dilation_rows=1,
        dilation_cols=1,
        group_inputs=1,
        group_outputs=1,
        **{f"merge_input_{k}": -1 for k in range(MERGE_INPUTS_SHOWN)},
    )
    if _is_merge(computing) and cells.count:
        return _merge_row(row, computing, by_name)
    if source_name is None or not cells.count or not by_name[source_name].count:
        return row  # merges, and layers folded into a unit (no cells of their own) or reading one
    source = by_name[source_name]
    row.update(
        source_layer=source.layer_index,
        source_start=source.start,
        source_rows=source.map_rows,
        source_cols=source.map_cols,
        source_channels=source.channels,
    )
    spatial = len(source.output_shape) == 3 and len(cells.output_shape) == 3
    channels_last = computing.config.get("data_format", "channels_last") == "channels_last"
    operation = _operation_of(computing)
    if operation == specs.FLATTEN:
        row["op_kind"] = OP_FLATTEN if not any(padding) else OP_NONE
    elif operation == specs.DENSE and len(source.output_shape) == 1:
        row["op_kind"] = OP_DENSE
    elif operation == specs.GLOBAL_POOLING and len(source.output_shape) == 3 and channels_last and not any(padding):
        row["op_kind"] = OP_GLOBAL_POOLING
    elif operation == specs.TRANSPOSED_CONVOLUTION and spatial and channels_last and not any(padding):
        window = transposed_window(computing.config, source.output_shape, cells.output_shape)
        if window is not None:
            row.update(window, op_kind=OP_TRANSPOSED_CONVOLUTION)
    elif spatial and channels_last and operation in specs.WINDOWED_OPERATIONS:
        padded = (
            source.output_shape[0] + 2 * padding[0],
            source.output_shape[1] + 2 * padding[1],
            source.output_shape[2],
        )
        window = window_geometry(computing.type, computing.config, padded, cells.output_shape)
        if window is not None:
            row.update(window)
            row["pad_top"] += padding[0]
            row["pad_left"] += padding[1]
            row["op_kind"] = WINDOWED_OP_KINDS[operation]
            kernel = _kernel_of(computing)
            if computing.type == "Conv2D" and kernel is not None:
                # Keras' kernel is (ky, kx, inputs per group, filters): consecutive taps are
                # inputs*filters apart, consecutive input channels filters apart.
                row["kernel_tap_stride"] = kernel.shape[2] * kernel.shape[3]
                row["kernel_in_stride"] = kernel.shape[3]
            elif computing.type == "DepthwiseConv2D" and kernel is not None:
                # (ky, kx, channels, multiplier): output channel c*M + m sits at tap*C*M + c*M + m.
                row["kernel_tap_stride"] = kernel.shape[2] * kernel.shape[3]
    return row


def window_geometry(
    layer_type: str, config: Mapping[str, Any], input_shape: Sequence[int], output_shape: Sequence[int]
) -> dict[str, int] | None:
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
    spec = specs.spec_of(layer_type)
    if spec is not None and spec.operation in (specs.MAX_POOLING, specs.AVERAGE_POOLING):
        kernel = pair(config.get("pool_size", 2))
        strides = pair(config.get("strides") or kernel)
        dilation = (1, 1)
        group_inputs, group_outputs = 1, 1
    else:
        kernel = pair(config.get("kernel_size", 1))
        strides = pair(config.get("strides", 1))
        dilation = pair(config.get("dilation_rate", 1))
        if layer_type == "DepthwiseConv2D":
            group_inputs, group_outputs = 1, max(out_channels // in_channels, 1)
        else:
            groups = int(config.get("groups", 1)) if layer_type == "Conv2D" else 1
            group_inputs, group_outputs = in_channels // groups, out_channels // groups
    extents = [(kernel[axis] - 1) * dilation[axis] + 1 for axis in (0, 1)]
    _rows, pad_top, _ = window_extent(in_rows, extents[0], strides[0], padding)
    _cols, pad_left, _ = window_extent(in_cols, extents[1], strides[1], padding)
    return dict(
        kernel_rows=kernel[0],
        kernel_cols=kernel[1],
        stride_rows=strides[0],
        stride_cols=strides[1],
        pad_top=pad_top,
        pad_left=pad_left,
        dilation_rows=dilation[0],
        dilation_cols=dilation[1],
        group_inputs=group_inputs,
        group_outputs=group_outputs,
    )


def transposed_window(
    config: Mapping[str, Any], input_shape: Sequence[int], output_shape: Sequence[int]
) -> dict[str, int] | None:
    """A Conv2DTranspose's window as table columns, read from the output: output row ``y`` receives input
    row ``r`` iff ``y + pad_top - r * stride_rows`` is a multiple of ``dilation_rows`` below ``kernel_rows``
    times it (``core.numpy_layers`` crops ``pad_top`` rows of the scattered map). Every input channel feeds every
    output channel. None for paddings other than valid/same."""
    padding = str(config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        return None
    kernel, strides = pair(config.get("kernel_size", 1)), pair(config.get("strides", 1))
    dilation = pair(config.get("dilation_rate", 1))
    before = []
    for axis in (0, 1):
        extent = (kernel[axis] - 1) * dilation[axis] + 1
        scattered = (int(input_shape[axis]) - 1) * strides[axis] + extent
        before.append(0 if padding == "valid" else max(scattered - int(output_shape[axis]), 0) // 2)
    return dict(
        kernel_rows=kernel[0],
        kernel_cols=kernel[1],
        stride_rows=strides[0],
        stride_cols=strides[1],
        pad_top=before[0],
        pad_left=before[1],
        dilation_rows=dilation[0],
        dilation_cols=dilation[1],
        group_inputs=int(input_shape[2]),
        group_outputs=int(output_shape[2]),
    )


def winner_cells(bundle: Bundle, layers: Sequence[LayerCells], activations: Mapping[str, npt.ArrayLike]) -> np.ndarray:
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
        values = np.asarray(activations[source.name], dtype=np.float32)[..., : pooled.channels]
        winners[pooled.start : pooled.start + pooled.count] = _pool_winners(
            values, window, (*pooled.output_shape[:2], pooled.channels), source.start
        )
    return np.ascontiguousarray(winners)


def _pool_winners(
    values: np.ndarray, window: Mapping[str, int], output_shape: Sequence[int], source_start: int
) -> np.ndarray:
    """Cell indices of each window's maximum, in the pooled layer's cell order (channel, row, col)."""
    rows, cols, channels = values.shape
    out_rows, out_cols, _ = output_shape
    size = (window["kernel_rows"], window["kernel_cols"])
    strides = (window["stride_rows"], window["stride_cols"])
    top, left = window["pad_top"], window["pad_left"]
    bottom = max((out_rows - 1) * strides[0] + size[0] - rows - top, 0)
    right = max((out_cols - 1) * strides[1] + size[1] - cols - left, 0)
    padded = np.pad(values, ((top, bottom), (left, right), (0, 0)), constant_values=-np.inf)
    windows = sliding_window_view(padded, size, axis=(0, 1))[:: strides[0], :: strides[1]][:out_rows, :out_cols]
    best = windows.reshape(out_rows, out_cols, channels, -1).argmax(axis=-1)  # (rows', cols', C)
    out_row, out_col = np.indices((out_rows, out_cols))
    row = out_row[..., None] * strides[0] - top + best // size[1]
    col = out_col[..., None] * strides[1] - left + best % size[1]
    channel = np.arange(channels)
    cell = source_start + (channel * rows + row) * cols + col
    return cell.transpose(2, 0, 1).ravel()


def _kernel_of(layer: LayerInfo) -> WeightInfo | None:
    return next((w for w in layer.weights if w.name in ("kernel", "depthwise_kernel")), None)


def _bias_of(layer: LayerInfo) -> WeightInfo | None:
    if not layer.config.get("use_bias", True):
        return None
    return next((w for w in layer.weights if w.name == "bias"), None)
