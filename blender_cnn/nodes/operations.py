"""How layers are computed, drawn by Geometry Nodes: receptive fields, kernels, pooling, flatten, output.

The data comes from ``core/operations.py``: a *layer table* (one point per layer
on the Operations object), the convolution kernels' weights (one point per
weight on the Kernels object) and ``winner_cell`` on the cells. Which cells a
chosen output pixel sees is computed here from the modifier's focus inputs and
the table, so the focus can be changed and keyframed without Python:
input row ``r`` is in the window of output row ``y`` iff
``r + pad_top - y * stride`` is a multiple of the dilation whose quotient lies
in ``[0, kernel size)``; the same for columns.

What is drawn (all but the lines carry ``overlay``, the lines ``link``):
window frames behind the receptive field's cells (overlay 1), a frame behind
the focus pixel (2), the kernel's weights as small tiles on the lines from the
window to the pixel (3), the winners of max pooling (4) and the output's
probability bars (5), the kernel tiles' pale backing (6); lines from window cells (link 1), from pooling winners
(2) and from the last feature maps to their flatten neurons (3). Lines are thin
tubes (meshes), so they never mix with the connections' curves.
"""

from ..core import operations as ops
from .builder import ensure_group
from .groups import QUAD_FACING_VIEW, facing_quads, text_mesh, without_layout_attributes
from .timeline import ensure_trained_weights

FOCUS_CELL = "BCNN Focus Cell"
RECEPTIVE_FIELD = "BCNN Receptive Field"
KERNEL_TAPS = "BCNN Kernel Taps"
POOLING_LINKS = "BCNN Pooling Links"
FLATTEN_LINKS = "BCNN Flatten Links"
PROBABILITY = "BCNN Probability"
# The color attribute the highlight material reads (Cycles needs a prefixed name).
HIGHLIGHT_COLOR = "highlight_color"
EDGE_COLOR = "edge_color"

OVERLAY_WINDOW, OVERLAY_FOCUS, OVERLAY_KERNEL, OVERLAY_WINNER, OVERLAY_BAR, OVERLAY_KERNEL_BACKING = 1, 2, 3, 4, 5, 6
LINK_WINDOW, LINK_POOLING, LINK_FLATTEN = 1, 2, 3

# Linear RGB.
WINDOW_COLOR = (1.0, 0.32, 0.04)
FOCUS_COLOR = (1.0, 0.85, 0.25)
WINNER_COLOR = (1.0, 0.08, 0.45)
FLATTEN_COLOR = (0.25, 0.45, 1.0)
BAR_COLOR = (0.75, 0.8, 0.9)
KERNEL_BACKING_COLOR = (0.45, 0.45, 0.5)


def ensure_focus_cell():
    return ensure_group(FOCUS_CELL, 2, _build_focus_cell)


def ensure_receptive_field():
    return ensure_group(RECEPTIVE_FIELD, 6, _build_receptive_field)


def ensure_kernel_taps():
    return ensure_group(KERNEL_TAPS, 1, _build_kernel_taps)


def ensure_pooling_links():
    return ensure_group(POOLING_LINKS, 3, _build_pooling_links)


def ensure_flatten_links():
    return ensure_group(FLATTEN_LINKS, 2, _build_flatten_links)


def ensure_probability():
    return ensure_group(PROBABILITY, 3, _build_probability)


# ---------------------------------------------------------------- small helpers

def _and(b, *values):
    result = values[0]
    for value in values[1:]:
        result = b.node("FunctionNodeBooleanMath", {0: result, 1: value}, operation="AND").outputs[0]
    return result


def _or(b, a, c):
    return b.node("FunctionNodeBooleanMath", {0: a, 1: c}, operation="OR").outputs[0]


def _compare(b, a, c, operation):
    return b.compare_int(a, c, operation)


def _sample(b, geometry, value, index, data_type="FLOAT"):
    return b.node("GeometryNodeSampleIndex", {"Geometry": geometry, "Value": value, "Index": index},
                  data_type=data_type, domain="POINT").outputs[0]


def _table(b, operations, index):
    """``column(name)``: the layer table's column ``name`` at row ``index`` (a layer index)."""
    def column(name):
        return _sample(b, operations, b.attribute(name, "INT"), index, "INT")
    return column


def _position(b):
    return b.node("GeometryNodeInputPosition").outputs[0]


def _index(b):
    return b.node("GeometryNodeInputIndex").outputs[0]


def _store(b, geometry, name, value, data_type="FLOAT", domain="POINT", selection=None):
    inputs = {"Geometry": geometry, "Name": name, "Value": value}
    if selection is not None:
        inputs["Selection"] = selection
    return b.node("GeometryNodeStoreNamedAttribute", inputs, data_type=data_type, domain=domain).outputs[0]


def _real_cell(b):
    """Not one of the summary cells a folded layer shows (the attribute may be absent: then 0)."""
    return _compare(b, b.attribute("is_summary", "INT"), 0, "EQUAL")


def _flatten_source(b, neuron, column):
    """The cell that flatten neuron (cell index) ``neuron`` copies: Keras flattens (row, col, channel)."""
    unit = b.int_math("SUBTRACT", neuron, column("layer_start"))
    channels, rows, cols = column("source_channels"), column("source_rows"), column("source_cols")
    pixel = b.int_math("DIVIDE_FLOOR", unit, channels)
    channel = b.int_math("FLOORED_MODULO", unit, channels)
    row = b.int_math("DIVIDE_FLOOR", pixel, cols)
    col = b.int_math("FLOORED_MODULO", pixel, cols)
    return b.int_math("ADD", column("source_start"),
                b.int_math("ADD", b.int_math("MULTIPLY", b.int_math("ADD", b.int_math("MULTIPLY", channel, rows), row), cols),
                     col))


def _sampling_step(b, points, selection, max_count):
    """Keep every n-th selected point so that about ``max_count`` remain: n = ceil(count / max)."""
    count = b.node("GeometryNodeAttributeStatistic", {"Geometry": points, "Selection": selection,
                                                      "Attribute": 1.0}, data_type="FLOAT",
                   domain="POINT").outputs["Sum"]
    step = b.math("MAXIMUM", b.math("CEIL", b.math("DIVIDE", count, b.math("MAXIMUM", max_count, 1.0))), 1.0)
    return _and(b, selection, _compare(b, b.int_math("FLOORED_MODULO", _index(b), step), 0, "EQUAL"))


def _facing_quads(b, points, size, behind, material, selection=None):
    """A square of ``size`` facing the view on each point, ``behind`` the point (along +X), as instances."""
    moved = b.node("GeometryNodeSetPosition", {"Geometry": points, "Offset": b.combine_xyz(behind, 0.0, 0.0)})
    return facing_quads(b, moved.outputs[0], size, material, selection)


def _overlay(b, points, kind, color):
    """Tag ``points`` as overlay ``kind`` with ``color`` (a constant or a field)."""
    tagged = _store(b, points, "overlay", kind, "INT")
    return _store(b, tagged, HIGHLIGHT_COLOR, color if not isinstance(color, tuple) else (*color, 1.0),
                  "FLOAT_COLOR")


def _links(b, points, start, end, radius, color, kind, material, selection=None):
    """A thin tube from ``start`` to ``end`` (fields on ``points``) per selected point.

    Every point attribute (``source_cell``, ``target_cell``, ...) reaches the tube.
    """
    stored = _store(b, points, "link_start", start, "FLOAT_VECTOR")
    stored = _store(b, stored, "link_end", end, "FLOAT_VECTOR")
    stored = _store(b, stored, "link", kind, "INT")
    stored = _store(b, stored, EDGE_COLOR, (*color, 1.0), "FLOAT_COLOR")
    line = b.node("GeometryNodeCurvePrimitiveLine", {"Start": (0.0, 0.0, 0.0), "End": (0.0, 0.0, 1.0)})
    inputs = {"Points": stored, "Instance": line.outputs[0]}
    if selection is not None:
        inputs["Selection"] = selection
    instanced = b.node("GeometryNodeInstanceOnPoints", inputs)
    realized = b.node("GeometryNodeRealizeInstances", {"Geometry": instanced.outputs[0]})
    factor = b.node("GeometryNodeSplineParameter").outputs["Factor"]
    along = b.node("ShaderNodeMix", {"Factor": factor, "A": b.attribute("link_start", "FLOAT_VECTOR"),
                                     "B": b.attribute("link_end", "FLOAT_VECTOR")}, data_type="VECTOR")
    placed = b.node("GeometryNodeSetPosition", {"Geometry": realized.outputs[0], "Position": along.outputs["Result"]})
    profile = b.node("GeometryNodeCurvePrimitiveCircle", {"Resolution": 6, "Radius": 1.0})
    tubes = b.node("GeometryNodeCurveToMesh", {"Curve": placed.outputs[0], "Profile Curve": profile.outputs["Curve"],
                                               "Scale": radius})
    return b.node("GeometryNodeSetMaterial", {"Geometry": without_layout_attributes(b, tubes.outputs[0]),
                                              "Material": material}).outputs[0]


def _join(b, parts):
    join = b.node("GeometryNodeJoinGeometry")
    for part in reversed(parts):
        b.link(part, join.inputs[0])
    return join.outputs[0]


def _text(b, text, size, align_x, anchor, material):
    return text_mesh(b, text, size, align_x, "Middle", anchor, material)


# ---------------------------------------------------------------- groups

def _build_focus_cell(b):
    """The cell index of the focus pixel, its layer, channel, row and column clamped into the layer."""
    b.tree.description = "Which cell the focus inputs name"
    operations = b.add_input("Operations", "GEOMETRY")
    layer = b.add_input("Layer", "INT", 1, 0)
    channel = b.add_input("Channel", "INT", 0, 0)
    row = b.add_input("Row", "INT", 0, 0)
    col = b.add_input("Column", "INT", 0, 0)
    for name in ("Index", "Layer", "Channel", "Row", "Column"):
        b.add_output(name, "INT")

    layers = b.node("GeometryNodeAttributeDomainSize", {"Geometry": operations}, component="MESH").outputs[0]

    def clamped(value, count):
        return b.int_math("MAXIMUM", b.int_math("MINIMUM", value, b.int_math("SUBTRACT", count, 1)), 0)

    layer = clamped(layer, layers)
    column = _table(b, operations, layer)
    channel = clamped(channel, column("channels"))
    row = clamped(row, column("map_rows"))
    col = clamped(col, column("map_cols"))
    map_row = b.int_math("ADD", b.int_math("MULTIPLY", channel, column("map_rows")), row)
    cell = b.int_math("ADD", column("layer_start"), b.int_math("ADD", b.int_math("MULTIPLY", map_row, column("map_cols")),
                                                               col))
    b.set_outputs(Index=cell, Layer=layer, Channel=channel, Row=row, Column=col)


def _focus_inputs(b):
    operations = b.add_input("Operations", "GEOMETRY")
    focus = {name: b.add_input(f"Focus {name}", "INT", 0, 0) for name in ("Layer", "Channel", "Row", "Column")}
    node = b.group(ensure_focus_cell(), {"Operations": operations, **focus})
    return operations, {name: node.outputs[name] for name in ("Index", "Layer", "Channel", "Row", "Column")}


def _build_receptive_field(b):
    """The focus pixel's window: ``focus`` (0/1) on the cells it sees, frames, lines and kernel tiles.

    With All Calculations the lines are drawn for every output position of the
    focus channel, at most Max Windows of them (evenly spaced on the map).
    """
    b.tree.description = "What one output pixel is computed from"
    cells = b.add_input("Cells", "GEOMETRY")
    operations, focus = _focus_inputs(b)
    kernels = b.add_input("Kernels", "GEOMETRY")
    show = b.add_input("Show", "BOOLEAN", True)
    all_calculations = b.add_input("All Calculations", "BOOLEAN", False)
    max_windows = b.add_input("Max Windows", "INT", 64, 1)
    kernel_position = b.add_input("Kernel Position", "FLOAT", 0.3, 0.0, 1.0)
    radius = b.add_input("Line Radius", "FLOAT", 0.05, 0.0)
    colormap = b.add_input("Colormap", "MENU")
    highlight = b.add_input("Highlight Material", "MATERIAL")
    edge = b.add_input("Edge Material", "MATERIAL")
    b.add_output("Cells", "GEOMETRY")
    b.add_output("Mesh", "GEOMETRY")

    column = _table(b, operations, focus["Layer"])
    kind = column("op_kind")
    windowed = _and(b, _compare(b, kind, ops.OP_CONVOLUTION, "GREATER_EQUAL"),
                    _compare(b, kind, ops.OP_AVERAGE_POOLING, "LESS_EQUAL"))
    channel_low = b.int_math("MULTIPLY", b.int_math("DIVIDE_FLOOR", focus["Channel"], column("group_outputs")),
                       column("group_inputs"))

    # Per cell: is it in the focus pixel's window?
    def in_window(index, focus_index, pad, stride, dilation, size):
        offset = b.int_math("SUBTRACT", b.int_math("ADD", index, column(pad)),
                      b.int_math("MULTIPLY", focus_index, column(stride)))
        return _and(b, _compare(b, offset, 0, "GREATER_EQUAL"),
                    _compare(b, b.int_math("FLOORED_MODULO", offset, column(dilation)), 0, "EQUAL"),
                    _compare(b, b.int_math("DIVIDE_FLOOR", offset, column(dilation)), column(size), "LESS_THAN"))

    channel = b.attribute("channel", "INT")
    channel_ok = _and(b, _compare(b, channel, channel_low, "GREATER_EQUAL"),
                      _compare(b, channel, b.int_math("ADD", channel_low, column("group_inputs")), "LESS_THAN"))
    window = _and(b, windowed, channel_ok,
                  in_window(b.attribute("row", "INT"), focus["Row"], "pad_top", "stride_rows", "dilation_rows",
                            "kernel_rows"),
                  in_window(b.attribute("col", "INT"), focus["Column"], "pad_left", "stride_cols", "dilation_cols",
                            "kernel_cols"))
    # A transposed convolution's window read from the output: the focus pixel's index and the cell's swap roles.
    scattered = _and(b, _compare(b, kind, ops.OP_TRANSPOSED_CONVOLUTION, "EQUAL"), channel_ok,
                     in_window(focus["Row"], b.attribute("row", "INT"), "pad_top", "stride_rows", "dilation_rows",
                               "kernel_rows"),
                     in_window(focus["Column"], b.attribute("col", "INT"), "pad_left", "stride_cols",
                               "dilation_cols", "kernel_cols"))
    # Global pooling: neuron c (or 1x1 map c) reads the whole map of channel c.
    pooled_map = _and(b, _compare(b, kind, ops.OP_GLOBAL_POOLING, "EQUAL"),
                      _compare(b, channel, b.int_math("SUBTRACT", focus["Index"], column("layer_start")), "EQUAL"))
    flatten = _and(b, _compare(b, kind, ops.OP_FLATTEN, "EQUAL"),
                   _compare(b, _index(b), _flatten_source(b, focus["Index"], column), "EQUAL"))
    dense = _compare(b, kind, ops.OP_DENSE, "EQUAL")
    in_source = _compare(b, b.attribute("layer", "INT"), column("source_layer"), "EQUAL")
    seen = _and(b, show, _real_cell(b), _or(b, _and(b, in_source, _or(b, _or(b, window, scattered), _or(
        b, pooled_map, _or(b, flatten, dense)))), _merged_cells(b, column, kind, channel, focus)))
    focused = _store(b, cells, "focus", seen, "FLOAT")

    pitch = b.attribute("cell_pitch")
    frames = _facing_quads(b, _overlay(b, focused, OVERLAY_WINDOW, WINDOW_COLOR), b.math("MULTIPLY", pitch, 1.22),
                           b.math("MULTIPLY", pitch, 0.08), highlight, selection=seen)
    is_focus = _and(b, show, _compare(b, _index(b), focus["Index"], "EQUAL"))
    focus_frame = _facing_quads(b, _overlay(b, focused, OVERLAY_FOCUS, FOCUS_COLOR), b.math("MULTIPLY", pitch, 1.3),
                                b.math("MULTIPLY", pitch, 0.08), highlight, selection=is_focus)

    # Output pixels whose windows are drawn: the focus pixel, or a grid of its channel's pixels.
    map_rows, map_cols = column("map_rows"), column("map_cols")
    spacing = b.math("CEIL", b.math("SQRT", b.math("DIVIDE", b.int_math("MULTIPLY", map_rows, map_cols),
                                                   b.math("MAXIMUM", max_windows, 1.0))))
    spacing = b.int_math("MAXIMUM", spacing, 1)
    on_grid = _and(b, _compare(b, b.attribute("layer", "INT"), focus["Layer"], "EQUAL"),
                   _compare(b, channel, focus["Channel"], "EQUAL"), _real_cell(b),
                   _compare(b, b.int_math("FLOORED_MODULO", b.attribute("row", "INT"), spacing), 0, "EQUAL"),
                   _compare(b, b.int_math("FLOORED_MODULO", b.attribute("col", "INT"), spacing), 0, "EQUAL"))
    drawn = b.node("GeometryNodeSwitch", {"Switch": all_calculations, "False": is_focus, "True": on_grid},
                   input_type="BOOLEAN").outputs[0]
    drawn = _and(b, show, windowed, drawn)

    taps = b.group(ensure_kernel_taps(), {
        "Cells": focused, "Operations": operations, "Kernels": kernels, "Focus Layer": focus["Layer"],
        "Focus Index": focus["Index"], "Drawn": drawn, "Kernel Position": kernel_position, "Line Radius": radius,
        "Colormap": colormap, "Highlight Material": highlight, "Edge Material": edge}).outputs[0]
    b.set_outputs(Cells=focused, Mesh=_join(b, [frames, focus_frame, taps]))


def _merged_cells(b, column, kind, channel, focus):
    """The cells a merge combines into the focus cell: the same cell of every input of an Add or Multiply
    (row and column 0 of a 1x1 map it broadcasts, as a squeeze-and-excitation gate), the cell of a
    Concatenate's input whose channels span the focus channel, at the channel less that input's offset."""
    elementwise = _compare(b, kind, ops.OP_ELEMENTWISE, "EQUAL")
    concatenated = _compare(b, kind, ops.OP_CONCATENATE, "EQUAL")
    layer = b.attribute("layer", "INT")
    broadcast = lambda focus_index, size: b.int_math("MULTIPLY", focus_index, _compare(b, size, 1, "GREATER_THAN"))
    same_place = _and(b, _compare(b, b.attribute("row", "INT"), broadcast(focus["Row"], b.attribute("map_rows", "INT")),
                                  "EQUAL"),
                      _compare(b, b.attribute("col", "INT"), broadcast(focus["Column"], b.attribute("map_cols", "INT")),
                               "EQUAL"))
    found = None
    for k in range(ops.MERGE_INPUTS_SHOWN):
        is_input = _compare(b, layer, column(f"merge_input_{k}"), "EQUAL")
        wanted = b.int_math("SUBTRACT", focus["Channel"], b.node(
            "GeometryNodeSwitch", {"Switch": concatenated, "False": 0, "True": column(f"merge_offset_{k}")},
            input_type="INT").outputs[0])
        match = _and(b, is_input, _compare(b, channel, wanted, "EQUAL"))
        found = match if found is None else _or(b, found, match)
    return _and(b, _or(b, elementwise, concatenated), same_place, found)


def _build_kernel_taps(b):
    """Lines from each tap of the drawn windows to its output pixel, and the kernel's weights as tiles on them.

    A group of its own: Blender adds nodes ever more slowly as a tree grows, and
    the receptive field in one tree took most of a first import's node building.
    """
    b.tree.description = "The taps of the drawn windows: lines and kernel-weight tiles"
    focused = b.add_input("Cells", "GEOMETRY")
    operations = b.add_input("Operations", "GEOMETRY")
    kernels = b.add_input("Kernels", "GEOMETRY")
    focus = {"Layer": b.add_input("Focus Layer", "INT", 0, 0), "Index": b.add_input("Focus Index", "INT", 0, 0)}
    drawn = b.add_input("Drawn", "BOOLEAN", False, description="The output pixels whose windows are drawn")
    kernel_position = b.add_input("Kernel Position", "FLOAT", 0.3, 0.0, 1.0)
    radius = b.add_input("Line Radius", "FLOAT", 0.05, 0.0)
    colormap = b.add_input("Colormap", "MENU")
    highlight = b.add_input("Highlight Material", "MATERIAL")
    edge = b.add_input("Edge Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")
    cells = focused
    column = _table(b, operations, focus["Layer"])

    # One point per (input channel, tap) of every drawn window: Duplicate Elements, then the
    # duplicate index says which input cell and which kernel weight it is.
    targets = _store(b, focused, "target_cell", _index(b), "INT")
    taps = b.int_math("MULTIPLY", column("kernel_rows"), column("kernel_cols"))
    duplicated = b.node("GeometryNodeDuplicateElements", {
        "Geometry": targets, "Selection": drawn, "Amount": b.int_math("MULTIPLY", taps, column("group_inputs"))},
        domain="POINT")
    duplicate = duplicated.outputs["Duplicate Index"]
    in_channel = b.int_math("DIVIDE_FLOOR", duplicate, taps)
    tap = b.int_math("FLOORED_MODULO", duplicate, taps)
    ky = b.int_math("DIVIDE_FLOOR", tap, column("kernel_cols"))
    kx = b.int_math("FLOORED_MODULO", tap, column("kernel_cols"))

    def source_index(index, stride, pad, k, dilation):
        return b.int_math("ADD", b.int_math("SUBTRACT", b.int_math("MULTIPLY", index, column(stride)), column(pad)),
                    b.int_math("MULTIPLY", k, column(dilation)))

    row = source_index(b.attribute("row", "INT"), "stride_rows", "pad_top", ky, "dilation_rows")
    col = source_index(b.attribute("col", "INT"), "stride_cols", "pad_left", kx, "dilation_cols")
    out_channel = b.attribute("channel", "INT")
    low = b.int_math("MULTIPLY", b.int_math("DIVIDE_FLOOR", out_channel, column("group_outputs")), column("group_inputs"))
    source_rows, source_cols = column("source_rows"), column("source_cols")
    source = b.int_math("ADD", column("source_start"), b.int_math("ADD", b.int_math("MULTIPLY", b.int_math("ADD", b.int_math("MULTIPLY", b.int_math("ADD", low, in_channel), source_rows), row), source_cols), col))
    weight_index = b.int_math("ADD", b.int_math("ADD", column("kernel_start"), b.int_math("MULTIPLY", tap,
                                                                               column("kernel_tap_stride"))),
                        b.int_math("ADD", b.int_math("MULTIPLY", in_channel, column("kernel_in_stride")), out_channel))
    inside = _and(b, _compare(b, row, 0, "GREATER_EQUAL"), _compare(b, row, source_rows, "LESS_THAN"),
                  _compare(b, col, 0, "GREATER_EQUAL"), _compare(b, col, source_cols, "LESS_THAN"))
    taps_points = _store(b, duplicated.outputs["Geometry"], "source_cell", source, "INT")
    taps_points = _store(b, taps_points, "weight_index", weight_index, "INT")
    # Taps that fall on the padding read zeros: no cell, no line.
    taps_points = b.node("GeometryNodeDeleteGeometry", {
        "Geometry": _store(b, taps_points, "inside", inside, "BOOLEAN"),
        "Selection": b.node("FunctionNodeBooleanMath", {0: b.attribute("inside", "BOOLEAN")},
                            operation="NOT").outputs[0]}, domain="POINT").outputs[0]

    source_cell = b.attribute("source_cell", "INT")
    source_position = _sample(b, cells, _position(b), source_cell, "FLOAT_VECTOR")
    lines = _links(b, taps_points, source_position, _position(b), radius, WINDOW_COLOR, LINK_WINDOW, edge)

    # The kernel's weights: a tile on each line of the focus pixel, where Kernel Position says.
    has_kernel = _compare(b, column("kernel_start"), 0, "GREATER_EQUAL")
    tile_selection = _and(b, has_kernel, _compare(b, b.attribute("target_cell", "INT"), focus["Index"], "EQUAL"))
    weight = _sample(b, kernels, b.attribute("weight"), b.attribute("weight_index", "INT"))
    weight_max = _sample(b, operations, b.attribute("weight_max"), focus["Layer"])
    signed = b.node("ShaderNodeMapRange", {"Value": weight, "From Min": b.math("MULTIPLY", weight_max, -1.0),
                                           "From Max": weight_max}, clamp=True).outputs["Result"]
    color = b.group(_weight_colormap(), {"Factor": signed, "Colormap": colormap}).outputs[0]
    weighted = _store(b, taps_points, "weight", weight, "FLOAT")
    tiles = _overlay(b, weighted, OVERLAY_KERNEL, color)
    along = b.node("ShaderNodeMix", {"Factor": kernel_position, "A": source_position, "B": _position(b)},
                   data_type="VECTOR").outputs["Result"]
    tiles = b.node("GeometryNodeSetPosition", {"Geometry": tiles, "Position": along}).outputs[0]
    source_pitch = _sample(b, cells, b.attribute("cell_pitch"), source_cell)
    tile_size = b.math("MULTIPLY", source_pitch, b.math("MULTIPLY", b.math("SUBTRACT", 1.0, kernel_position), 0.9))
    kernel_tiles = _facing_quads(b, tiles, tile_size, 0.0, highlight, selection=tile_selection)
    # A pale backing a little larger than each tile: weights near zero are dark in the diverging
    # colormap and would vanish into the background without it.
    backing = _facing_quads(b, _overlay(b, tiles, OVERLAY_KERNEL_BACKING, KERNEL_BACKING_COLOR),
                            b.math("MULTIPLY", tile_size, 1.18), b.math("MULTIPLY", source_pitch, 0.03), highlight,
                            selection=tile_selection)

    b.set_outputs(Mesh=_join(b, [lines, kernel_tiles, backing]))


def _weight_colormap():
    from . import groups  # the one weight Menu Switch of the file lives there

    return groups.ensure_weight_colormap()


def _build_pooling_links(b):
    """Max pooling: a frame behind each window's winning input pixel and a line to its pooled pixel.

    Only the pooled maps of channel Channel unless All Channels: every channel's links at once
    hide the maps they join.
    """
    b.tree.description = "Which input pixel won each max-pooling window"
    cells = b.add_input("Cells", "GEOMETRY")
    channel = b.add_input("Channel", "INT", 0, 0)
    all_channels = b.add_input("All Channels", "BOOLEAN", False)
    max_links = b.add_input("Max Links", "INT", 2000, 1)
    radius = b.add_input("Line Radius", "FLOAT", 0.04, 0.0)
    highlight = b.add_input("Highlight Material", "MATERIAL")
    edge = b.add_input("Edge Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    winner = b.attribute("winner_cell", "INT")
    in_channel = _or(b, all_channels, _compare(b, b.attribute("channel", "INT"), channel, "EQUAL"))
    pooled = _sampling_step(b, cells, _and(b, _compare(b, winner, 0, "GREATER_EQUAL"), in_channel), max_links)
    kept = _store(b, _store(b, cells, "source_cell", winner, "INT"), "target_cell", _index(b), "INT")
    kept = b.node("GeometryNodeSeparateGeometry", {"Geometry": kept, "Selection": pooled},
                  domain="POINT").outputs["Selection"]
    winner_position = _sample(b, cells, _position(b), b.attribute("source_cell", "INT"), "FLOAT_VECTOR")
    winner_pitch = _sample(b, cells, b.attribute("cell_pitch"), b.attribute("source_cell", "INT"))
    lines = _links(b, kept, winner_position, _position(b), radius, WINNER_COLOR, LINK_POOLING, edge)
    at_winner = b.node("GeometryNodeSetPosition", {"Geometry": _overlay(b, kept, OVERLAY_WINNER, WINNER_COLOR),
                                                   "Position": winner_position}).outputs[0]
    marks = _facing_quads(b, at_winner, b.math("MULTIPLY", winner_pitch, 1.08),
                          b.math("MULTIPLY", winner_pitch, 0.04), highlight)
    b.set_outputs(Mesh=_join(b, [marks, lines]))


def _build_flatten_links(b):
    """A line from each cell of the last feature maps to the flatten neuron that copies it.

    Only from the map of channel Channel unless All Channels: Keras flattens channel-last, so one
    map's cells land every ``channels`` neurons apart, which all maps' lines at once would hide.
    """
    b.tree.description = "How feature maps become a flat vector"
    cells = b.add_input("Cells", "GEOMETRY")
    operations = b.add_input("Operations", "GEOMETRY")
    channel = b.add_input("Channel", "INT", 0, 0)
    all_channels = b.add_input("All Channels", "BOOLEAN", False)
    max_links = b.add_input("Max Links", "INT", 2000, 1)
    radius = b.add_input("Line Radius", "FLOAT", 0.04, 0.0)
    edge = b.add_input("Edge Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    column = _table(b, operations, b.attribute("layer", "INT"))
    source = _flatten_source(b, _index(b), column)
    source_channel = _sample(b, cells, b.attribute("channel", "INT"), source, "INT")
    neurons = _and(b, _compare(b, column("op_kind"), ops.OP_FLATTEN, "EQUAL"), _real_cell(b),
                   _or(b, all_channels, _compare(b, source_channel, channel, "EQUAL")))
    kept_selection = _sampling_step(b, cells, neurons, max_links)
    with_source = _store(b, cells, "source_cell", source, "INT")
    with_source = _store(b, with_source, "target_cell", _index(b), "INT")
    kept = b.node("GeometryNodeSeparateGeometry", {"Geometry": with_source, "Selection": kept_selection},
                  domain="POINT").outputs["Selection"]
    source_position = _sample(b, cells, _position(b), b.attribute("source_cell", "INT"), "FLOAT_VECTOR")
    b.set_outputs(Mesh=_links(b, kept, source_position, _position(b), radius, FLATTEN_COLOR, LINK_FLATTEN, edge))


def _build_probability(b):
    """A bar as long as one output neuron's activation (its probability) and the value as text.

    Offset and Length are in cell pitches; the bar starts Offset to the right of the neuron.
    """
    b.tree.description = "One output neuron's probability as a bar and a number"
    cells = b.add_input("Cells", "GEOMETRY")
    cell = b.add_input("Cell", "INT", 0, 0)
    offset = b.add_input("Offset", "FLOAT", 2.0, 0.0)
    length = b.add_input("Length", "FLOAT", 6.0, 0.0)
    highlight = b.add_input("Highlight Material", "MATERIAL")
    label = b.add_input("Label Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    centre = _sample(b, cells, _position(b), cell, "FLOAT_VECTOR")
    pitch = _sample(b, cells, b.attribute("cell_pitch"), cell)
    probability = _sample(b, cells, b.attribute("activation"), cell)
    bar_length = b.math("MAXIMUM", b.math("MULTIPLY", b.math("MULTIPLY", probability, length), pitch), 1e-4)
    start = b.math("MULTIPLY", offset, pitch)
    # The grid's X becomes height (Z) and its Y the bar's length along -Y once turned to face the view.
    bar = b.node("GeometryNodeMeshGrid", {"Size X": b.math("MULTIPLY", pitch, 0.5), "Size Y": bar_length,
                                          "Vertices X": 2, "Vertices Y": 2}).outputs["Mesh"]
    bar = _store(b, _store(b, bar, "probability", probability), "overlay", OVERLAY_BAR, "INT")
    bar = _store(b, bar, HIGHLIGHT_COLOR, (*BAR_COLOR, 1.0), "FLOAT_COLOR")
    shift = b.combine_xyz(0.0, b.math("MULTIPLY", b.math("ADD", start, b.math("MULTIPLY", bar_length, 0.5)), -1.0),
                          0.0)
    placed = b.node("GeometryNodeTransform", {"Geometry": bar, "Rotation": QUAD_FACING_VIEW,
                                              "Translation": b.vector_math("ADD", centre, shift)}).outputs[0]
    bar = b.node("GeometryNodeSetMaterial", {"Geometry": placed, "Material": highlight}).outputs[0]
    text = b.node("FunctionNodeValueToString", {"Value": probability, "Decimals": 2}).outputs[0]
    text_at = b.vector_math("ADD", centre, b.combine_xyz(
        0.0, b.math("MULTIPLY", b.math("ADD", b.math("ADD", start, bar_length), b.math("MULTIPLY", pitch, 0.3)),
                    -1.0), 0.0))
    b.set_outputs(Mesh=_join(b, [bar, _text(b, text, b.math("MULTIPLY", pitch, 0.5), "Left", text_at, label)]))


# ---------------------------------------------------------------- wiring into a network's tree

# Modifier inputs: (name, kind, default, min, max, description). The focus defaults are per network
# (``focus_defaults``).
OPERATION_INPUTS = (
    ("Focus Layer", "INT", 1, 0, None, "Layer of the output pixel whose calculation is shown"),
    ("Focus Channel", "INT", 0, 0, None, "Channel (feature map) of the focus pixel"),
    ("Focus Row", "INT", 0, 0, None, "Row of the focus pixel (neuron number for dense layers)"),
    ("Focus Column", "INT", 0, 0, None, "Column of the focus pixel"),
    ("Show Receptive Field", "BOOLEAN", True, None, None,
     "Frame the input cells the focus pixel is computed from, with lines and the kernel's weights"),
    ("Kernel Position", "FLOAT", 0.3, 0.0, 1.0,
     "Where the kernel's weight tiles float: 0 = on the input window, 1 = at the focus pixel"),
    ("All Calculations", "BOOLEAN", False, None, None,
     "Draw the windows of every output position of the focus channel, not only the focus pixel's"),
    ("Max Windows", "INT", 64, 1, None, "At most this many windows in All Calculations (evenly spaced)"),
    ("Show Pooling", "BOOLEAN", True, None, None,
     "Frame the winning input pixel of each max-pooling window and link it to its pooled pixel"),
    ("All Channels", "BOOLEAN", False, None, None,
     "Pooling winners and flatten links of every channel, not only of the focus channel's maps"),
    ("Show Flatten", "BOOLEAN", True, None, None, "Link each cell of the last feature maps to its flatten neuron"),
    ("Max Links", "INT", 2000, 1, None, "At most about this many pooling and flatten links each (evenly sampled)"),
    ("Show Probabilities", "BOOLEAN", True, None, None, "Bars and numbers of the output layer's probabilities"),
)


def focus_defaults(layers, table):
    """The first convolution's centre pixel (else the first layer with an operation): where focus starts."""
    kinds = table["op_kind"]
    order = [i for i, kind in enumerate(kinds) if kind == ops.OP_CONVOLUTION] or \
            [i for i, kind in enumerate(kinds) if kind != ops.OP_NONE] or [0]
    layer = layers[order[0]]
    return {"Focus Layer": layer.layer_index, "Focus Channel": 0, "Focus Row": layer.map_rows // 2,
            "Focus Column": layer.map_cols // 2}


def add_operation_inputs(b, layers, objects):
    """Add the modifier inputs of this module; ``objects`` holds "Operations", "Kernels" and "table"."""
    defaults = focus_defaults(layers, objects["table"])
    sockets = {name: b.add_input(name, kind, defaults.get(name, default), low, high, description)
               for name, kind, default, low, high, description in OPERATION_INPUTS}
    sockets["Operations"] = b.add_input("Operations", "OBJECT", objects["Operations"],
                                        description="The mesh that holds one vertex per layer: how it is computed")
    sockets["Kernels"] = b.add_input("Kernels", "OBJECT", objects["Kernels"],
                                     description="The mesh that holds one vertex per convolution kernel weight")
    return sockets


def add_operation_nodes(b, inputs, placed, settings, materials, layers, class_names, epoch_blend,
                        labeled_units=None):
    """Wire the groups of this module; returns ``(cells with the focus attribute, [geometry parts])``.

    ``epoch_blend`` holds the Epoch Low/High/Factor sockets that pick the kernels' weights;
    ``labeled_units`` the output neurons that get a probability bar (all by default).
    """
    def geometry(name):
        return b.node("GeometryNodeObjectInfo", {"Object": inputs[name]}, transform_space="RELATIVE").outputs["Geometry"]

    operations = geometry("Operations")
    kernels = b.group(ensure_trained_weights("POINT"), {"Geometry": geometry("Kernels"), **epoch_blend}).outputs[0]
    radius = settings["Edge Radius"]
    field = b.group(ensure_receptive_field(), {
        "Cells": placed, "Operations": operations, "Kernels": kernels,
        **{name: inputs[name] for name in ("Focus Layer", "Focus Channel", "Focus Row", "Focus Column",
                                           "All Calculations", "Max Windows", "Kernel Position")},
        "Show": inputs["Show Receptive Field"], "Line Radius": b.math("MULTIPLY", radius, 0.2),
        "Colormap": settings["Weight Colormap"], "Highlight Material": materials["highlight"],
        "Edge Material": materials["edge"]})
    pooling = b.group(ensure_pooling_links(), {
        "Cells": placed, "Channel": inputs["Focus Channel"], "All Channels": inputs["All Channels"],
        "Max Links": inputs["Max Links"], "Line Radius": b.math("MULTIPLY", radius, 0.2),
        "Highlight Material": materials["highlight"], "Edge Material": materials["edge"]}).outputs[0]
    flatten = b.group(ensure_flatten_links(), {
        "Cells": placed, "Operations": operations, "Channel": inputs["Focus Channel"],
        "All Channels": inputs["All Channels"], "Max Links": inputs["Max Links"],
        "Line Radius": b.math("MULTIPLY", radius, 0.12), "Edge Material": materials["edge"]}).outputs[0]
    parts = [field.outputs["Mesh"], _shown(b, inputs["Show Pooling"], pooling),
             _shown(b, inputs["Show Flatten"], flatten)]

    output_layer = layers[-1]
    if len(output_layer.output_shape) == 1 and output_layer.count == len(class_names):
        # Bars start after the longest class name (text 0.8 pitch high, about 0.6 of that per letter).
        offset = 0.8 + 0.8 * 0.62 * max(len(str(name)) for name in class_names) + 0.6
        bars = [b.group(ensure_probability(), {
            "Cells": placed, "Cell": output_layer.start + unit, "Offset": offset,
            "Highlight Material": materials["highlight"], "Label Material": materials["label"]}).outputs[0]
            for unit in (range(output_layer.count) if labeled_units is None else labeled_units)]
        parts.append(_shown(b, inputs["Show Probabilities"], _join(b, bars)))
    return field.outputs["Cells"], parts


def _shown(b, show, geometry):
    return b.node("GeometryNodeSwitch", {"Switch": show, "True": geometry}, input_type="GEOMETRY").outputs[0]
