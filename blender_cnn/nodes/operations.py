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
from ..core.attributes import EDGE_COLOR, HIGHLIGHT_COLOR
from ..core.scene_plan import LABELED_CLASSES_LIMIT
from .annotations import (
    ANNOTATION_CALCULATIONS,
    ANNOTATION_TOP_CLASSES,
    INSPECTION_NODE,
    LINE_SPACING,
    ensure_annotation_lines,
    ensure_no_inspection,
    ensure_window_numbers,
    format_string,
    write,
    written_by,
)
from .builder import ensure_group
from .groups import QUAD_FACING_VIEW, facing_quads, text_mesh, without_layout_attributes
from .timeline import ensure_trained_weights

FOCUS_CELL = "BCNN Focus Cell"
RECEPTIVE_FIELD = "BCNN Receptive Field"
KERNEL_TAPS = "BCNN Kernel Taps"
POOLING_LINKS = "BCNN Pooling Links"
FLATTEN_LINKS = "BCNN Flatten Links"
PROBABILITY = "BCNN Probability"
TOP_CLASSES = "BCNN Top Classes"
PROBABILITY_NUMBERS = "BCNN Probability Numbers"

OVERLAY_WINDOW, OVERLAY_FOCUS, OVERLAY_KERNEL, OVERLAY_WINNER, OVERLAY_BAR, OVERLAY_KERNEL_BACKING = 1, 2, 3, 4, 5, 6
OVERLAY_PENDING = 7  # a sweep's output pixel not computed yet
LINK_WINDOW, LINK_POOLING, LINK_FLATTEN = 1, 2, 3
# The cells' per-epoch and per-sample attributes (core/attributes.py's families), which no drawn line needs.
TIMELINE_FAMILIES = ("activation_e*", "winner_cell_e*")

# Linear RGB.
WINDOW_COLOR = (1.0, 0.32, 0.04)
FOCUS_COLOR = (1.0, 0.85, 0.25)
WINNER_COLOR = (1.0, 0.08, 0.45)
FLATTEN_COLOR = (0.25, 0.45, 1.0)
BAR_COLOR = (0.75, 0.8, 0.9)
BAR_LENGTH = 6.0  # a certain class's bar, in cell pitches
# A probability's number, in its neuron's pitch: as tall as the class name on its line (groups.NEURON_LABEL's 0.8).
PROBABILITY_SIZE = 0.8
# The top classes' readout (``top_classes_readout``): at most this many rows, and the rows a network shows by default
# when it has more classes than core.scene_plan's LABELED_CLASSES_LIMIT (a class name per neuron of 1000 cannot be read
# in a view of the network, and the neurons labelled instead are the most probable of the sample it was built with).
MAX_TOP_CLASSES = 10
DEFAULT_TOP_CLASSES = 5
# The readout's last line stands this many text heights above the output layer's lowest neuron, clear of its label.
READOUT_RISE = 0.6
KERNEL_BACKING_COLOR = (0.45, 0.45, 0.5)
PENDING_COLOR = (0.035, 0.035, 0.045)
# All Calculations draws at most this many window lines by default: about 1 kB each once drawn as tubes, so a
# million stays near a gigabyte, and beyond it an even grid of the windows is drawn.
MAX_CALCULATION_LINES = 1_000_000


def ensure_focus_cell():
    return ensure_group(FOCUS_CELL, _build_focus_cell)


def ensure_receptive_field():
    return ensure_group(RECEPTIVE_FIELD, _build_receptive_field)


def ensure_kernel_taps():
    return ensure_group(KERNEL_TAPS, _build_kernel_taps)


def ensure_pooling_links():
    return ensure_group(POOLING_LINKS, _build_pooling_links)


def ensure_flatten_links():
    return ensure_group(FLATTEN_LINKS, _build_flatten_links)


def ensure_probability():
    return ensure_group(PROBABILITY, _build_probability)


def ensure_top_classes():
    return ensure_group(TOP_CLASSES, _build_top_classes)


def ensure_probability_numbers():
    return ensure_group(PROBABILITY_NUMBERS, _build_probability_numbers)


# ---------------------------------------------------------------- small helpers


def _table(b, operations, index, clamp=False):
    """``column(name)``: the layer table's column ``name`` at row ``index`` (a layer index); ``clamp`` where it is
    a cell's own layer, always a row (``TreeBuilder.sample_index``)."""

    def column(name):
        return b.sample_index(operations, b.attribute(name), index, clamp=clamp)

    return column


def _real_cell(b):
    """Not one of the summary cells a folded layer shows (the attribute may be absent: then 0)."""
    return b.compare(b.attribute("is_summary"), "==", 0)


def _flatten_source(b, neuron, column):
    """The cell that flatten neuron (cell index) ``neuron`` copies: Keras flattens (row, col, channel)."""
    unit = b.int_subtract(neuron, column("layer_start"))
    channels, rows, cols = column("source_channels"), column("source_rows"), column("source_cols")
    pixel = b.int_divide(unit, channels)
    channel = b.int_modulo(unit, channels)
    row = b.int_divide(pixel, cols)
    col = b.int_modulo(pixel, cols)
    return _cell_index(b, column("source_start"), channel, rows, row, cols, col)


def _cell_index(b, start, channel, rows, row, cols, col):
    """``start + (channel * rows + row) * cols + col``: the cell at (channel, row, col) of a layer's maps."""
    return b.int_add(start, b.int_add(b.int_multiply(b.int_add(b.int_multiply(channel, rows), row), cols), col))


def _sampling_step(b, points, selection, max_count):
    """Keep every n-th selected point so that about ``max_count`` remain: n = ceil(count / max)."""
    count = b.statistic(points, 1.0, selection)["Sum"]
    step = b.maximum(b.ceil(b.divide(count, b.maximum(max_count, 1.0))), 1.0)
    return b.all_of(selection, b.compare(b.int_modulo(b.index(), step), "==", 0))


def _facing_quads(b, points, size, behind, material, selection=None):
    """A square of ``size`` facing the view on each point, ``behind`` the point (along +X), as instances."""
    moved = b.set_position(points, offset=b.combine_xyz(behind, 0.0, 0.0))
    return facing_quads(b, moved, size, material, selection)


def _overlay(b, points, kind, color):
    """Tag ``points`` as overlay ``kind`` with ``color`` (a constant or a field)."""
    tagged = b.store(points, "overlay", kind)
    return b.store(tagged, HIGHLIGHT_COLOR, color if not isinstance(color, tuple) else (*color, 1.0))


def _links(b, points, start, end, radius, color, kind, material, selection=None):
    """A thin tube from ``start`` to ``end`` (fields on ``points``) per selected point.

    Every point attribute (``source_cell``, ``target_cell``, ...) reaches the tube, but the cells' stored
    epochs and samples: joined with everything else drawn as a mesh, each of those hundreds of attributes would
    be written on every vertex of it (text too), which made a frame change with numbers shown twice as slow.
    """
    stored = b.store(points, "link_start", start)
    stored = b.store(stored, "link_end", end)
    stored = b.store(stored, "link", kind)
    stored = b.store(stored, EDGE_COLOR, (*color, 1.0), domain="POINT")
    for family in TIMELINE_FAMILIES:
        stored = b.remove_attribute(stored, family)
    line = b.node("GeometryNodeCurvePrimitiveLine", {"Start": (0.0, 0.0, 0.0), "End": (0.0, 0.0, 1.0)})
    lines = b.realize(b.instance_on_points(stored, line.outputs[0], selection=selection))
    factor = b.spline_parameter()["Factor"]
    placed = b.set_position(lines, b.mix(factor, b.attribute("link_start"), b.attribute("link_end"), "VECTOR"))
    profile = b.node("GeometryNodeCurvePrimitiveCircle", {"Resolution": 6, "Radius": 1.0})
    tubes = b.node(
        "GeometryNodeCurveToMesh", {"Curve": placed, "Profile Curve": profile.outputs["Curve"], "Scale": radius}
    )
    return b.set_material(without_layout_attributes(b, tubes.outputs[0]), material)


def _text(b, text, size, align_x, anchor, material):
    return text_mesh(b, text, size, align_x, "Middle", anchor, material)


# ---------------------------------------------------------------- groups


def _build_focus_cell(b):
    """The cell index of the focus pixel, its layer, channel, row and column clamped into the layer.

    With Show Sweep the row and column come from Sweep instead (0..1 across the
    map in reading order), and ``Filled`` says how many of the map's pixels the
    window has passed (-1 without a sweep: all are shown); ``Revealed`` how many
    of the window's taps are summed so far (all unless Sweep Taps).
    """
    b.tree.description = "Which cell the focus inputs name"
    operations = b.add_input("Operations", "GEOMETRY")
    layer = b.add_input("Layer", "INT", 1, 0)
    channel = b.add_input("Channel", "INT", 0, 0)
    row = b.add_input("Row", "INT", 0, 0)
    col = b.add_input("Column", "INT", 0, 0)
    show_sweep = b.add_input("Show Sweep", "BOOLEAN", False)
    sweep = b.add_input("Sweep", "FLOAT", 0.0, 0.0, 1.0)
    sweep_taps = b.add_input("Sweep Taps", "BOOLEAN", False)
    for name in ("Index", "Layer", "Channel", "Row", "Column", "Filled", "Revealed"):
        b.add_output(name, "INT")

    def clamped(value, count):
        return b.int_clamp(value, 0, b.int_subtract(count, 1))

    with b.frame("Layer and channel, clamped into the network and the layer"):
        layer = clamped(layer, b.point_count(operations))
        column = _table(b, operations, layer)
        channel = clamped(channel, column("channels"))
    with b.frame("The sweep: the pixels passed, the window's place, and the taps summed so far"):
        rows, cols = column("map_rows"), column("map_cols")
        pixels = b.int_multiply(rows, cols)
        # A little more than Sweep x pixels: a key at k/pixels lands on pixel k, not just before it.
        progress = b.multiply(b.clamp(sweep, 0.0, 1.0), pixels)
        passed = b.int_clamp(
            b.node("FunctionNodeFloatToInt", {"Float": b.add(progress, 1e-3)}, rounding_mode="FLOOR").outputs[0],
            0,
            pixels,
        )
        at = b.int_minimum(passed, b.int_subtract(pixels, 1))
        taps = b.int_multiply(b.int_multiply(column("kernel_rows"), column("kernel_cols")), column("group_inputs"))
        # Within the window's share of the sweep: one more tap per 1 / (taps + 1) of it, the whole sum at the end.
        share = b.clamp(b.subtract(progress, at), 0.0, 1.0)
        step = b.node(
            "FunctionNodeFloatToInt", {"Float": b.multiply(share, b.int_add(taps, 1))}, rounding_mode="FLOOR"
        ).outputs[0]
        revealed = b.switch("INT", b.all_of(show_sweep, sweep_taps), 1 << 30, b.int_minimum(b.int_add(step, 1), taps))
        filled = b.switch("INT", show_sweep, -1, passed)
        row = b.switch("INT", show_sweep, row, b.int_divide(at, cols))
        col = b.switch("INT", show_sweep, col, b.int_modulo(at, cols))
    with b.frame("Row and column clamped, and the cell's index"):
        row = clamped(row, rows)
        col = clamped(col, cols)
        cell = _cell_index(b, column("layer_start"), channel, rows, row, cols, col)
    b.set_outputs(Index=cell, Layer=layer, Channel=channel, Row=row, Column=col, Filled=filled, Revealed=revealed)


def _focus_inputs(b):
    operations = b.add_input("Operations", "GEOMETRY")
    focus = {name: b.add_input(f"Focus {name}", "INT", 0, 0) for name in ("Layer", "Channel", "Row", "Column")}
    node = b.group(ensure_focus_cell(), {"Operations": operations, **focus})
    return operations, {name: node.outputs[name] for name in ("Index", "Layer", "Channel", "Row", "Column")}


def _build_receptive_field(b):
    """The focus pixel's window: ``focus`` (0/1) on the cells it sees, frames, lines and kernel tiles.

    With All Calculations the lines are drawn for every output pixel of the
    focus channel (with All Channels, of every channel of the layer); when they
    would be more than Max Lines, for an even grid of them, and a label under
    the map says how many windows of how many are drawn. While a sweep runs
    (Filled >= 0) the focus map's pixels from Filled on are not computed yet:
    they are hidden, and dark squares stand in their place.
    """
    b.tree.description = "What one output pixel is computed from"
    cells = b.add_input("Cells", "GEOMETRY")
    operations, focus = _focus_inputs(b)
    filled = b.add_input(
        "Filled", "INT", -1, -1, description="Pixels of the focus map the sweep has passed (-1: no sweep)"
    )
    kernels = b.add_input("Kernels", "GEOMETRY")
    show = b.add_input("Show", "BOOLEAN", True)
    all_calculations = b.add_input("All Calculations", "BOOLEAN", False)
    all_channels = b.add_input("All Channels", "BOOLEAN", False)
    max_lines = b.add_input("Max Lines", "INT", MAX_CALCULATION_LINES, 1)
    kernel_position = b.add_input("Kernel Position", "FLOAT", 0.3, 0.0, 1.0)
    radius = b.add_input("Line Radius", "FLOAT", 0.05, 0.0)
    cell_gap = b.add_input("Cell Gap", "FLOAT", 0.12, 0.0, 0.95)
    label_size = b.add_input("Label Size", "FLOAT", 1.0, 0.0, description="Text height of the count, in cell pitches")
    colormap = b.add_input("Colormap", "MENU")
    highlight = b.add_input("Highlight Material", "MATERIAL")
    edge = b.add_input("Edge Material", "MATERIAL")
    text_material = b.add_input("Text Material", "MATERIAL")
    plate_material = b.add_input("Plate Material", "MATERIAL")
    b.add_output("Cells", "GEOMETRY")
    b.add_output("Mesh", "GEOMETRY")
    b.add_output("Taps", "GEOMETRY")

    column = _table(b, operations, focus["Layer"])
    kind = column("op_kind")
    channel = b.attribute("channel")

    with b.frame("Cells in the focus pixel's window (convolution, pooling, transposed)"):
        windowed = b.all_of(b.compare(kind, ">=", ops.OP_CONVOLUTION), b.compare(kind, "<=", ops.OP_AVERAGE_POOLING))
        channel_low = b.int_multiply(b.int_divide(focus["Channel"], column("group_outputs")), column("group_inputs"))

        # Per cell: is it in the focus pixel's window?
        def in_window(index, focus_index, pad, stride, dilation, size):
            offset = b.int_subtract(b.int_add(index, column(pad)), b.int_multiply(focus_index, column(stride)))
            return b.all_of(
                b.compare(offset, ">=", 0),
                b.compare(b.int_modulo(offset, column(dilation)), "==", 0),
                b.compare(b.int_divide(offset, column(dilation)), "<", column(size)),
            )

        channel_ok = b.all_of(
            b.compare(channel, ">=", channel_low),
            b.compare(channel, "<", b.int_add(channel_low, column("group_inputs"))),
        )
        window = b.all_of(
            windowed,
            channel_ok,
            in_window(b.attribute("row"), focus["Row"], "pad_top", "stride_rows", "dilation_rows", "kernel_rows"),
            in_window(b.attribute("col"), focus["Column"], "pad_left", "stride_cols", "dilation_cols", "kernel_cols"),
        )
        # A transposed convolution's window read from the output: the focus pixel's index and the cell's swap roles.
        scattered = b.all_of(
            b.compare(kind, "==", ops.OP_TRANSPOSED_CONVOLUTION),
            channel_ok,
            in_window(focus["Row"], b.attribute("row"), "pad_top", "stride_rows", "dilation_rows", "kernel_rows"),
            in_window(focus["Column"], b.attribute("col"), "pad_left", "stride_cols", "dilation_cols", "kernel_cols"),
        )
    with b.frame("Cells a global pooling, flatten, dense layer or merge reads"):
        # Global pooling: neuron c (or 1x1 map c) reads the whole map of channel c.
        pooled_map = b.all_of(
            b.compare(kind, "==", ops.OP_GLOBAL_POOLING),
            b.compare(channel, "==", b.int_subtract(focus["Index"], column("layer_start"))),
        )
        flatten = b.all_of(
            b.compare(kind, "==", ops.OP_FLATTEN),
            b.compare(b.index(), "==", _flatten_source(b, focus["Index"], column)),
        )
        dense = b.compare(kind, "==", ops.OP_DENSE)
        merged = _merged_cells(b, operations, column, kind, channel, focus)
    with b.frame("Seen: stored as focus"):
        in_source = b.compare(b.attribute("layer"), "==", column("source_layer"))
        read = b.any_of(
            b.all_of(in_source, b.any_of(b.any_of(window, scattered), b.any_of(pooled_map, b.any_of(flatten, dense)))),
            merged,
        )
        # Worked out only on the cells that can be read: the source layer's, or for a merge (whose inputs are other
        # layers) every cell; the others are stored 0. The window's arithmetic on every one of VGG16's 15 million
        # cells took about a CPU second. Stored only while shown: every cell's zero cost 0.1 GB at the peak.
        readable = b.any_of(
            in_source, b.any_of(b.compare(kind, "==", ops.OP_ELEMENTWISE), b.compare(kind, "==", ops.OP_CONCATENATE))
        )
        seen_field = b.all_of(_real_cell(b), read)
        focused = b.switch("GEOMETRY", show, cells, b.store(cells, "focus", seen_field, selection=readable))
        seen = b.greater_than(b.attribute("focus"), 0.5)
    with b.frame("The sweep: the focus map's pixels the window has not reached are hidden"):
        map_index = b.int_add(b.int_multiply(b.attribute("row"), column("map_cols")), b.attribute("col"))
        sweeping = b.compare(filled, ">=", 0)
        pending = b.all_of(
            sweeping,
            b.compare(b.attribute("layer"), "==", focus["Layer"]),
            b.compare(channel, "==", focus["Channel"]),
            _real_cell(b),
            b.compare(map_index, ">=", filled),
        )
        # Only while sweeping: hiding no pixel still rewrote every cell's scale.
        hidden = b.store(focused, "cell_scale", b.multiply(b.attribute("cell_scale"), b.logical_not(pending)))
        focused = b.switch("GEOMETRY", sweeping, focused, hidden)

    with b.frame("Frames behind the window's cells and the focus pixel"):
        # The few framed cells are kept first: tagged, moved and sized on every cell instead, the two
        # frames took 2 of VGG16's 11 CPU seconds of evaluation (15 million cells; issue 21).
        pitch = b.attribute("cell_pitch")
        frames = _facing_quads(
            b,
            _overlay(b, b.keep(focused, seen), OVERLAY_WINDOW, WINDOW_COLOR),
            b.multiply(pitch, 1.22),
            b.multiply(pitch, 0.08),
            highlight,
        )
        is_focus = b.all_of(show, b.compare(b.index(), "==", focus["Index"]))
        focus_frame = _facing_quads(
            b,
            _overlay(b, b.keep(focused, is_focus), OVERLAY_FOCUS, FOCUS_COLOR),
            b.multiply(pitch, 1.3),
            b.multiply(pitch, 0.08),
            highlight,
        )

    with b.frame("Stand-ins for the pixels the sweep has not reached"):
        pitch = b.attribute("cell_pitch")
        stand_ins = _facing_quads(
            b,
            _overlay(b, b.keep(focused, pending), OVERLAY_PENDING, PENDING_COLOR),
            b.multiply(pitch, b.subtract(1.0, cell_gap)),
            0.0,
            highlight,
        )
        # Only while sweeping: drawing no square still goes over every cell.
        stand_ins = b.switch("GEOMETRY", sweeping, None, stand_ins)

    with b.frame("Output pixels whose windows are drawn: the focus pixel, or every one (an even grid of them)"):
        map_rows, map_cols = column("map_rows"), column("map_cols")
        maps = b.switch("INT", all_channels, 1, column("channels"))
        windows = b.int_multiply(maps, b.int_multiply(map_rows, map_cols))
        lines_each = b.int_maximum(
            b.int_multiply(b.int_multiply(column("kernel_rows"), column("kernel_cols")), column("group_inputs")), 1
        )
        affordable = b.int_maximum(b.int_divide(max_lines, lines_each), 1)

        def windows_at(spacing):
            along = b.int_multiply(
                b.int_divide(b.int_add(map_rows, b.int_subtract(spacing, 1)), spacing),
                b.int_divide(b.int_add(map_cols, b.int_subtract(spacing, 1)), spacing),
            )
            return b.int_multiply(maps, along)

        # The grid spacing that keeps the windows affordable: sqrt(windows / affordable) rounded up, or one more.
        spacing = b.int_maximum(b.ceil(b.sqrt(b.divide(windows, affordable))), 1)
        spacing = b.switch("INT", b.compare(windows_at(spacing), ">", affordable), spacing, b.int_add(spacing, 1))
        # Maps of one pixel each that are still too many: every n-th map.
        map_step = b.int_maximum(b.ceil(b.divide(windows_at(spacing), affordable)), 1)
        in_layer = b.all_of(
            b.compare(b.attribute("layer"), "==", focus["Layer"]),
            b.switch(
                "BOOLEAN",
                all_channels,
                b.compare(channel, "==", focus["Channel"]),
                b.compare(b.int_modulo(channel, map_step), "==", 0),
            ),
            _real_cell(b),
        )
        on_grid = b.all_of(
            in_layer,
            b.compare(b.int_modulo(b.attribute("row"), spacing), "==", 0),
            b.compare(b.int_modulo(b.attribute("col"), spacing), "==", 0),
        )
        is_focus = b.all_of(show, b.compare(b.index(), "==", focus["Index"]))
        calculating = b.all_of(show, windowed, all_calculations)
        drawn = b.all_of(show, windowed, b.switch("BOOLEAN", all_calculations, is_focus, on_grid))
        drawn_count = b.statistic(focused, drawn)["Sum"]

    with b.frame("Under the layer: how many of its windows All Calculations draws"):
        listed = b.all_of(
            b.compare(b.attribute("layer"), "==", focus["Layer"]),
            _real_cell(b),
            b.any_of(all_channels, b.compare(channel, "==", focus["Channel"])),
        )
        extent = b.statistic(focused, b.position(), listed, "FLOAT_VECTOR")
        middle, bottom = b.separate_xyz(extent["Mean"]), b.separate_xyz(extent["Min"])
        focus_pitch = b.sample_index(focused, pitch, focus["Index"])
        size = b.multiply(focus_pitch, label_size)
        anchor = b.node(
            "GeometryNodePoints",
            {
                "Count": 1,
                "Position": b.combine_xyz(
                    middle["X"], middle["Y"], b.subtract(bottom["Z"], b.multiply(focus_pitch, 1.6))
                ),
            },
        ).outputs[0]
        anchor = b.store(b.store(anchor, "annotation", ANNOTATION_CALCULATIONS), "annotation_size", size)
        drawn_windows = b.node("FunctionNodeFloatToInt", {"Float": drawn_count}).outputs[0]
        anchor = b.store(b.store(anchor, "annotation_n0", drawn_count), "annotation_n1", windows)
        words = b.switch(
            "STRING",
            b.compare(drawn_windows, "<", windows),
            "all {n} windows",
            "{d} of {n} windows (an even grid of them)",
        )
        count_text = format_string(b, words, {"d": ("INT", drawn_windows), "n": ("INT", windows)})
        count_label = b.group(
            ensure_annotation_lines(),
            {"Text": count_text, "Anchors": anchor, "Text Material": text_material, "Plate Material": plate_material},
        ).outputs[0]
        count_label = b.switch("GEOMETRY", calculating, None, count_label)

    taps = b.group(
        ensure_kernel_taps(),
        {
            "Cells": focused,
            "Operations": operations,
            "Kernels": kernels,
            "Focus Layer": focus["Layer"],
            "Focus Index": focus["Index"],
            "Drawn": drawn,
            "Kernel Position": kernel_position,
            "Line Radius": radius,
            "Colormap": colormap,
            "Highlight Material": highlight,
            "Edge Material": edge,
        },
    )
    b.set_outputs(
        Cells=focused,
        Mesh=b.join([frames, focus_frame, stand_ins, taps.outputs["Mesh"], count_label]),
        Taps=taps.outputs["Taps"],
    )


def _merged_cells(b, operations, column, kind, channel, focus):
    """The cells a merge combines into the focus cell: the same cell of every input of an Add or Multiply
    (row and column 0 of a 1x1 map it broadcasts, as a squeeze-and-excitation gate), the cell of a
    Concatenate's input whose channels span the focus channel, at the channel less that input's offset."""
    elementwise = b.compare(kind, "==", ops.OP_ELEMENTWISE)
    concatenated = b.compare(kind, "==", ops.OP_CONCATENATE)
    layer = b.attribute("layer")

    def broadcast(focus_index, size):
        return b.int_multiply(focus_index, b.compare(size, ">", 1))

    # The cell's own layer's map size, from the operations table's row of that layer.
    own_layer = _table(b, operations, layer, clamp=True)
    same_place = b.all_of(
        b.compare(b.attribute("row"), "==", broadcast(focus["Row"], own_layer("map_rows"))),
        b.compare(b.attribute("col"), "==", broadcast(focus["Column"], own_layer("map_cols"))),
    )
    found = None
    for k in range(ops.MERGE_INPUTS_SHOWN):
        is_input = b.compare(layer, "==", column(f"merge_input_{k}"))
        wanted = b.int_subtract(focus["Channel"], b.switch("INT", concatenated, 0, column(f"merge_offset_{k}")))
        match = b.all_of(is_input, b.compare(channel, "==", wanted))
        found = match if found is None else b.any_of(found, match)
    return b.all_of(b.any_of(elementwise, concatenated), same_place, found)


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
    b.add_output("Taps", "GEOMETRY")
    cells = focused
    column = _table(b, operations, focus["Layer"])

    with b.frame("A point per input channel and tap of every drawn window"):
        # One point per (input channel, tap) of every drawn window: Duplicate Elements, then the
        # duplicate index says which input cell and which kernel weight it is.
        targets = b.store(focused, "target_cell", b.index(), domain="POINT")
        taps = b.int_multiply(column("kernel_rows"), column("kernel_cols"))
        duplicated = b.node(
            "GeometryNodeDuplicateElements",
            {"Geometry": targets, "Selection": drawn, "Amount": b.int_multiply(taps, column("group_inputs"))},
            domain="POINT",
        )
        duplicate = duplicated.outputs["Duplicate Index"]
        in_channel = b.int_divide(duplicate, taps)
        tap = b.int_modulo(duplicate, taps)
        ky = b.int_divide(tap, column("kernel_cols"))
        kx = b.int_modulo(tap, column("kernel_cols"))

    with b.frame("The input cell and the kernel weight of each tap; taps on the padding go"):

        def source_index(index, stride, pad, k, dilation):
            return b.int_add(
                b.int_subtract(b.int_multiply(index, column(stride)), column(pad)), b.int_multiply(k, column(dilation))
            )

        row = source_index(b.attribute("row"), "stride_rows", "pad_top", ky, "dilation_rows")
        col = source_index(b.attribute("col"), "stride_cols", "pad_left", kx, "dilation_cols")
        out_channel = b.attribute("channel")
        low = b.int_multiply(b.int_divide(out_channel, column("group_outputs")), column("group_inputs"))
        source_rows, source_cols = column("source_rows"), column("source_cols")
        source = _cell_index(b, column("source_start"), b.int_add(low, in_channel), source_rows, row, source_cols, col)
        weight_index = b.int_add(
            b.int_add(column("kernel_start"), b.int_multiply(tap, column("kernel_tap_stride"))),
            b.int_add(b.int_multiply(in_channel, column("kernel_in_stride")), out_channel),
        )
        inside = b.all_of(
            b.compare(row, ">=", 0),
            b.compare(row, "<", source_rows),
            b.compare(col, ">=", 0),
            b.compare(col, "<", source_cols),
        )
        taps_points = b.store(duplicated.outputs["Geometry"], "source_cell", source, domain="POINT")
        taps_points = b.store(taps_points, "weight_index", weight_index)
        every_tap = b.store(b.store(taps_points, "inside", inside), "tap_rank", duplicate)
        # Taps that fall on the padding read zeros: no cell, no line.
        taps_points = b.delete(every_tap, b.logical_not(b.attribute("inside")))

    with b.frame("A line from each tap's input cell to its output pixel"):
        source_cell = b.attribute("source_cell")
        source_position = b.sample_index(cells, b.position(), source_cell)
        lines = _links(b, taps_points, source_position, b.position(), radius, WINDOW_COLOR, LINK_WINDOW, edge)

    with b.frame("The kernel's weights: a tile on each line of the focus pixel, where Kernel Position says"):
        has_kernel = b.compare(column("kernel_start"), ">=", 0)
        tile_selection = b.all_of(has_kernel, b.compare(b.attribute("target_cell"), "==", focus["Index"]))
        weight = b.sample_index(kernels, b.attribute("weight"), b.attribute("weight_index"))
        weight_max = b.sample_index(operations, b.attribute("weight_max"), focus["Layer"])
        signed = b.map_range(weight, b.negate(weight_max), weight_max)
        color = b.group(_weight_colormap(), {"Factor": signed, "Colormap": colormap}).outputs[0]
        weighted = b.store(taps_points, "weight", weight, domain="POINT")
        tiles = _overlay(b, weighted, OVERLAY_KERNEL, color)
        along = b.mix(kernel_position, source_position, b.position(), "VECTOR")
        tiles = b.set_position(tiles, along)
        source_pitch = b.sample_index(cells, b.attribute("cell_pitch"), source_cell)
        tile_size = b.multiply(source_pitch, b.multiply(b.subtract(1.0, kernel_position), 0.9))
        kernel_tiles = _facing_quads(b, tiles, tile_size, 0.0, highlight, selection=tile_selection)
        # A pale backing a little larger than each tile: weights near zero are dark in the diverging
        # colormap and would vanish into the background without it.
        backing = _facing_quads(
            b,
            _overlay(b, tiles, OVERLAY_KERNEL_BACKING, KERNEL_BACKING_COLOR),
            b.multiply(tile_size, 1.18),
            b.multiply(source_pitch, 0.03),
            highlight,
            selection=tile_selection,
        )

    b.set_outputs(Mesh=b.join([lines, kernel_tiles, backing]), Taps=every_tap)


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

    with b.frame("Pooled cells with a winner, of the channel shown, at most Max Links"):
        winner = b.attribute("winner_cell")
        in_channel = b.any_of(all_channels, b.compare(b.attribute("channel"), "==", channel))
        pooled = _sampling_step(b, cells, b.all_of(b.compare(winner, ">=", 0), in_channel), max_links)
        # The winner is stored once kept; only the cell's own index needs every cell.
        kept = b.keep(b.store(cells, "target_cell", b.index(), domain="POINT"), pooled)
        kept = b.store(kept, "source_cell", winner, domain="POINT")
    with b.frame("A line from the winner, and a frame behind it"):
        winner_position = b.sample_index(cells, b.position(), b.attribute("source_cell"))
        winner_pitch = b.sample_index(cells, b.attribute("cell_pitch"), b.attribute("source_cell"))
        lines = _links(b, kept, winner_position, b.position(), radius, WINNER_COLOR, LINK_POOLING, edge)
        at_winner = b.set_position(_overlay(b, kept, OVERLAY_WINNER, WINNER_COLOR), winner_position)
        marks = _facing_quads(b, at_winner, b.multiply(winner_pitch, 1.08), b.multiply(winner_pitch, 0.04), highlight)
    b.set_outputs(Mesh=b.join([marks, lines]))


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

    with b.frame("Flatten neurons copying the channel shown, at most Max Links"):
        column = _table(b, operations, b.attribute("layer"), clamp=True)
        # The flatten layers' neurons are kept first and worked on alone: the source arithmetic and the stored
        # indices on all of VGG16's 15 million cells took 1.4 of its 6 CPU seconds of evaluation, with no
        # flatten layer at all. A network without one skips even the keeping.
        is_flatten = b.compare(column("op_kind"), "==", ops.OP_FLATTEN)
        has_flatten = b.greater_than(
            b.statistic(operations, b.compare(b.attribute("op_kind"), "==", ops.OP_FLATTEN))["Max"], 0.5
        )
        flatten_cells = b.switch("GEOMETRY", has_flatten, None, b.keep(cells, b.all_of(is_flatten, _real_cell(b))))
        # A neuron's index in the cells: neuron u of a 1D layer is cell layer_start + u (core/cells.py).
        neuron = b.int_add(
            column("layer_start"),
            b.int_add(b.int_multiply(b.attribute("row"), column("map_cols")), b.attribute("col")),
        )
        source = _flatten_source(b, neuron, column)
        source_channel = b.sample_index(cells, b.attribute("channel"), source)
        shown = b.any_of(all_channels, b.compare(source_channel, "==", channel))
        kept_selection = _sampling_step(b, flatten_cells, shown, max_links)
        with_source = b.store(flatten_cells, "source_cell", source, domain="POINT")
        with_source = b.store(with_source, "target_cell", neuron, domain="POINT")
        kept = b.keep(with_source, kept_selection)
    with b.frame("A line from the cell each copies"):
        source_position = b.sample_index(cells, b.position(), b.attribute("source_cell"))
        lines = _links(b, kept, source_position, b.position(), radius, FLATTEN_COLOR, LINK_FLATTEN, edge)
    b.set_outputs(Mesh=lines)


def _build_probability(b):
    """A bar as long as one output neuron's activation (its probability); ``probability_numbers`` writes it.

    Offset and Length are in cell pitches; the bar starts Offset to the right of the neuron.
    """
    b.tree.description = "One output neuron's probability as a bar"
    cells = b.add_input("Cells", "GEOMETRY")
    cell = b.add_input("Cell", "INT", 0, 0)
    offset = b.add_input("Offset", "FLOAT", 2.0, 0.0)
    length = b.add_input("Length", "FLOAT", BAR_LENGTH, 0.0)
    highlight = b.add_input("Highlight Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    with b.frame("The neuron: where, its pitch, its probability"):
        centre = b.sample_index(cells, b.position(), cell)
        pitch = b.sample_index(cells, b.attribute("cell_pitch"), cell)
        probability = b.sample_index(cells, b.attribute("activation"), cell)
        bar_length = b.maximum(b.multiply(b.multiply(probability, length), pitch), 1e-4)
        start = b.multiply(offset, pitch)
    with b.frame("The bar, facing the view"):
        # The grid's X becomes height (Z) and its Y the bar's length along -Y once turned to face the view.
        bar = b.grid(b.multiply(pitch, 0.5), bar_length)
        bar = b.store(b.store(bar, "probability", probability), "overlay", OVERLAY_BAR)
        bar = b.store(bar, HIGHLIGHT_COLOR, (*BAR_COLOR, 1.0))
        shift = b.combine_xyz(0.0, b.negate(b.add(start, b.multiply(bar_length, 0.5))), 0.0)
        bar = b.set_material(
            b.transform(bar, translation=b.vector_add(centre, shift), rotation=QUAD_FACING_VIEW), highlight
        )
    b.set_outputs(Mesh=bar)


def probability_segments(b, cells, heads):
    """Each labelled output neuron's probability, to be written after its bar: Number Lines' segments.

    ``heads`` are ``[(first cell of the neuron's layer, units, offset of the bar in pitches)]``. A text per
    number cost a String to Curves and a Fill Curve each: ten of them were a tenth of the demo's frame.
    They are of no ``annotation`` kind, so Number Lines writes them as labels (no plate).
    """
    parts = []
    for start, units, offset in heads:
        # Vertices of a mesh, as every writer's segments are (Number Lines counts a mesh's points).
        points = b.node("GeometryNodeMeshLine", {"Count": len(units)}).outputs[0]
        cell = b.index_switch(b.index(), [start + unit for unit in units], "INT", label="Output Neurons")
        numbers = {"Points": b.store(points, "annotation_cell", cell), "Cells": cells, "Offset": offset}
        parts.append(b.group(ensure_probability_numbers(), numbers).outputs[0])
    return b.store(b.join(parts), "annotation_line", b.index())


def _build_probability_numbers(b):
    """Each point's neuron (its ``annotation_cell``) gets its probability to write, placed after its bar.

    The same for every network: built once into the prebuilt groups rather than into every network's tree.
    """
    b.tree.description = "Places each output neuron's probability after its bar, as Number Lines' segments"
    points = b.add_input("Points", "GEOMETRY")
    cells = b.add_input("Cells", "GEOMETRY")
    offset = b.add_input("Offset", "FLOAT", 0.0, description="Where the neuron's bar starts, in cell pitches")
    b.add_output("Points", "GEOMETRY")
    cell = b.attribute("annotation_cell")
    pitch = b.sample_index(cells, b.attribute("cell_pitch"), cell)
    probability = b.sample_index(cells, b.attribute("activation"), cell)
    bar_end = b.add(b.multiply(offset, pitch), b.maximum(b.multiply(b.multiply(probability, BAR_LENGTH), pitch), 1e-4))
    after = b.combine_xyz(0.0, b.negate(b.add(bar_end, b.multiply(pitch, 0.3))), 0.0)
    points = b.set_position(points, b.vector_add(b.sample_index(cells, b.position(), cell), after))
    for name, value in (
        ("annotation_value", probability),
        ("annotation_decimals", 2),
        ("annotation_size", b.multiply(pitch, PROBABILITY_SIZE)),
        ("annotation_align", 1.0),
    ):
        points = b.store(points, name, value)
    b.set_outputs(Points=points)


def top_classes_readout(b, cells, head, output_layer, names, count, size):
    """The ``count`` most probable classes of one output head, a line each ("0.871  cat") under a title, beside its
    layer in the labels' ``size``: Annotation Lines' ``(Text, Anchors)``, from the shared group ``TOP_CLASSES``.

    The class names go in as one string, each padded to the longest's width and sliced in the group: one value
    whatever the number of classes (a node per class name made ImageNet's 1,000 a 522 s build).
    """
    width = max(len(str(name)) for name in names)
    node = b.group(
        ensure_top_classes(),
        {
            "Cells": cells,
            "Layer": output_layer.layer_index,
            "Start": output_layer.start,
            "Classes": len(names),
            # A String node: a socket's own value is cut at 1,024 bytes.
            "Names": b.node(
                "FunctionNodeInputString", string="".join(str(name).ljust(width) for name in names)
            ).outputs[0],
            "Name Width": width,
            "Head": head,
            "Count": count,
            "Size": size,
        },
    )
    return node.outputs["Text"], node.outputs["Anchors"]


def _build_top_classes(b):
    """The Count most probable of an output layer's neurons, a line each under a title, beside the layer.

    The neurons are sorted by their probability for the Epoch and Sample shown, so the readout follows them. A line's
    glyphs carry ``annotation`` ``ANNOTATION_TOP_CLASSES``, ``annotation_item`` (Head * (MAX_TOP_CLASSES + 1) +
    line, the title's line 0), ``annotation_cell`` (the class's neuron) and ``annotation_n0`` (its probability), for
    the composition checks and tests to read.
    """
    b.tree.description = "The most probable classes of an output layer, a line each"
    cells = b.add_input("Cells", "GEOMETRY")
    layer = b.add_input("Layer", "INT", 0, 0, description="The output layer")
    start = b.add_input("Start", "INT", 0, 0, description="Its first neuron's cell")
    classes = b.add_input("Classes", "INT", 1, 1, description="Its neurons, one per class")
    names = b.add_input("Names", "STRING", description="The class names, each padded to Name Width, one after another")
    width = b.add_input("Name Width", "INT", 1, 1)
    head = b.add_input("Head", "INT", 0, 0, description="Which output head: its lines' annotation_item")
    count = b.add_input("Count", "INT", DEFAULT_TOP_CLASSES, 0, description="Lines of classes")
    size = b.add_input("Size", "FLOAT", 1.0, 0.0, description="Height of the text")
    b.add_output("Text", "STRING")
    b.add_output("Anchors", "GEOMETRY")

    rows = b.int_clamp(count, 0, b.int_minimum(classes, MAX_TOP_CLASSES))
    with b.frame("Every neuron of the output layer (not only those labelled), most probable first"):
        neurons = b.node("GeometryNodePoints", {"Count": classes}).outputs[0]
        neurons = b.store(neurons, "annotation_item", b.index())
        neurons = b.store(neurons, "annotation_cell", b.int_add(b.index(), start))
        neurons = b.store(
            neurons,
            "annotation_value",
            b.sample_index(cells, b.attribute("activation"), b.attribute("annotation_cell")),
        )
        ranked = b.node(
            "GeometryNodeSortElements",
            {"Geometry": neurons, "Sort Weight": b.negate(b.attribute("annotation_value"))},
            domain="POINT",
        ).outputs[0]
    with b.frame("A line per class: its probability and name, sliced from Names"):
        lines = [format_string(b, "top {k} of {n} classes\n", {"k": ("INT", rows), "n": ("INT", classes)})]
        for rank in range(MAX_TOP_CLASSES):
            position = b.sample_index(ranked, b.attribute("annotation_item"), rank)
            name = b.node(
                "FunctionNodeSliceString",
                {"String": names, "Position": b.int_multiply(position, width), "Length": width},
            ).outputs[0]
            name = b.node("FunctionNodeTrimString", {"String": name}).outputs[0]
            line = format_string(
                b,
                "{p:.3f}  {name}\n",
                {
                    "p": ("FLOAT", b.sample_index(ranked, b.attribute("annotation_value"), rank)),
                    "name": ("STRING", name),
                },
            )
            lines.append(b.switch("STRING", b.compare(rank, "<", rows), "", line))
        text = b.join_strings(*lines)
    with b.frame("Each line's anchor: beside the layer, its last line level with the lowest neuron, reading down"):
        in_layer = b.compare(b.attribute("layer"), "==", layer)
        extent = b.statistic(cells, b.position(), in_layer, "FLOAT_VECTOR")
        middle, low = b.separate_xyz(extent["Mean"]), b.separate_xyz(extent["Min"])
        pitch = b.sample_index(cells, b.attribute("cell_pitch"), start)
        line = b.index()
        rank = b.int_subtract(line, 1)
        # The layer's label hangs under its lowest neuron, as wide as its notes: the readout rises from there, into
        # the room above the network's end, and stands a letter's height of room after the neurons.
        bottom = b.add(low["Z"], b.multiply(size, READOUT_RISE))
        z = b.add(bottom, b.multiply(b.int_subtract(rows, line), b.multiply(size, LINE_SPACING)))
        y = b.subtract(low["Y"], b.add(b.multiply(pitch, 0.5), size))
        anchors = b.node("GeometryNodeMeshLine", {"Count": b.int_add(rows, 1)}).outputs[0]
        anchors = b.set_position(anchors, b.combine_xyz(middle["X"], y, z))
        is_title = b.compare(line, "==", 0)
        values = {
            "annotation": ANNOTATION_TOP_CLASSES,
            "annotation_item": b.int_add(b.int_multiply(head, MAX_TOP_CLASSES + 1), line),
            "annotation_cell": b.switch(
                "INT", is_title, b.sample_index(ranked, b.attribute("annotation_cell"), rank), -1
            ),
            "annotation_n0": b.switch(
                "FLOAT", is_title, b.sample_index(ranked, b.attribute("annotation_value"), rank), 0.0
            ),
            "annotation_size": size,
            "annotation_align": 1.0,
        }
        for name, value in values.items():
            anchors = b.store(anchors, name, value)
    b.set_outputs(Text=text, Anchors=anchors)


# ---------------------------------------------------------------- wiring into a network's tree

# Modifier inputs: (name, kind, default, min, max, description). The focus defaults are per network
# (``focus_defaults``).
OPERATION_INPUTS = (
    ("Focus Layer", "INT", 1, 0, None, "Layer of the output pixel whose calculation is shown"),
    ("Focus Channel", "INT", 0, 0, None, "Channel (feature map) of the focus pixel"),
    ("Focus Row", "INT", 0, 0, None, "Row of the focus pixel (neuron number for dense layers)"),
    ("Focus Column", "INT", 0, 0, None, "Column of the focus pixel"),
    (
        "Show Sweep",
        "BOOLEAN",
        False,
        None,
        None,
        "Sweep the focus window across the focus layer's channel (a convolution or pooling): its map fills in as "
        "the window passes, with the window's products and their sum",
    ),
    (
        "Sweep",
        "FLOAT",
        0.0,
        0.0,
        1.0,
        "How far the sweep has gone: 0 = before the first pixel, 1 = the whole map, in reading order; keyframe it",
    ),
    (
        "Sweep Taps",
        "BOOLEAN",
        False,
        None,
        None,
        "Add the window's products one at a time (a running sum) before the window moves on; for slow sweeps",
    ),
    ("Sweep Numbers", "BOOLEAN", True, None, None, "Write each input value, weight and product on the window's cells"),
    ("Number Size", "FLOAT", 1.0, 0.0, None, "Size of the numbers of a sweep and of Inspect"),
    (
        "Show Receptive Field",
        "BOOLEAN",
        True,
        None,
        None,
        "Frame the input cells the focus pixel is computed from, with lines and the kernel's weights",
    ),
    (
        "Kernel Position",
        "FLOAT",
        0.3,
        0.0,
        1.0,
        "Where the kernel's weight tiles float: 0 = on the input window, 1 = at the focus pixel",
    ),
    (
        "All Calculations",
        "BOOLEAN",
        False,
        None,
        None,
        "Draw the window of every output pixel of the focus channel (with All Channels, of every channel of the "
        "layer), not only the focus pixel's",
    ),
    (
        "Max Lines",
        "INT",
        MAX_CALCULATION_LINES,
        1,
        None,
        "All Calculations draws at most about this many window lines: beyond it, an even grid of the windows, and "
        "the label under the layer says how many of how many",
    ),
    (
        "Show Pooling",
        "BOOLEAN",
        True,
        None,
        None,
        "Frame the winning input pixel of each max-pooling window and link it to its pooled pixel",
    ),
    (
        "All Channels",
        "BOOLEAN",
        False,
        None,
        None,
        "Pooling winners, flatten links and All Calculations' windows of every channel, not only of the focus "
        "channel's maps",
    ),
    ("Show Flatten", "BOOLEAN", True, None, None, "Link each cell of the last feature maps to its flatten neuron"),
    ("Max Links", "INT", 2000, 1, None, "At most about this many pooling and flatten links each (evenly sampled)"),
    ("Show Probabilities", "BOOLEAN", True, None, None, "Bars and numbers of the output layer's probabilities"),
    (
        "Top Classes",
        "INT",
        0,
        0,
        None,
        "0 = a class name and probability beside every output neuron; more = instead, a readout beside the output "
        "layer of this many most probable classes (at most 10), in the labels' size",
    ),
)


def focus_defaults(layers, table):
    """The first convolution's centre pixel (else the first layer with an operation): where focus starts."""
    kinds = table["op_kind"]
    order = (
        [i for i, kind in enumerate(kinds) if kind == ops.OP_CONVOLUTION]
        or [i for i, kind in enumerate(kinds) if kind != ops.OP_NONE]
        or [0]
    )
    layer = layers[order[0]]
    return {
        "Focus Layer": layer.layer_index,
        "Focus Channel": 0,
        "Focus Row": layer.map_rows // 2,
        "Focus Column": layer.map_cols // 2,
    }


# In ``objects``: {layer index: (its name, what makes its value of a window's sum: "relu")}.
LAYER_WORDS = "layer words"


# The module's objects and materials a network gives it: (input name, kind, description).
OPERATION_SOURCES = (
    ("Operations", "OBJECT", "The mesh that holds one vertex per layer: how it is computed"),
    ("Kernels", "OBJECT", "The mesh that holds one vertex per convolution kernel weight"),
    ("Number Material", "MATERIAL", "The numbers' text"),
    ("Number Plate Material", "MATERIAL", "The plates behind the numbers"),
)


def add_operation_inputs(b):
    """Add the modifier inputs of this module, with defaults for no network in particular: a network's tree
    starts with them (``nodes/network.py``) and ``operation_inputs`` sets its own."""
    for name, kind, default, low, high, description in OPERATION_INPUTS:
        b.add_input(name, kind, default, low, high, description)
    for name, kind, description in OPERATION_SOURCES:
        b.add_input(name, kind, description=description)


def operation_inputs(b, inputs, layers, objects, class_count=0):
    """The sockets of this module's inputs among ``inputs`` (the tree's, by name), their defaults set for this
    network; with ``LAYER_WORDS``, what the sweep writes for each layer (``add_operation_nodes``).

    ``objects`` holds "Operations", "Kernels" and "table" (``scene/operations.py``), and may hold
    "number materials" (text, plate) and ``LAYER_WORDS``. ``class_count``: the most classes an output head names,
    which decides whether the top classes' readout is shown by default.
    """
    text, plate = objects.get("number materials", (None, None))
    defaults = {
        **focus_defaults(layers, objects["table"]),
        "Top Classes": DEFAULT_TOP_CLASSES if class_count > LABELED_CLASSES_LIMIT else 0,
        "Operations": objects["Operations"],
        "Kernels": objects["Kernels"],
        "Number Material": text,
        "Number Plate Material": plate,
    }
    for name, value in defaults.items():
        item = b.interface_inputs[name]
        if item.default_value != value:  # each change is an update of the whole tree
            item.default_value = value
    sockets = {name: inputs[name] for name, *_rest in OPERATION_INPUTS + OPERATION_SOURCES}
    sockets[LAYER_WORDS] = objects.get(LAYER_WORDS, {})
    return sockets


def labeled_heads(layers, class_names, output_heads=None):
    """``[(LayerCells, class names, units)]`` of the output heads whose neurons get a class name and probability
    bar: each of ``output_heads`` (``core.scene_plan.OutputLabels``; by default every neuron of the last layer,
    named by ``class_names``) that is drawn as one neuron per class."""
    if output_heads is None:
        chosen = [(layers[-1], tuple(class_names), tuple(range(len(class_names))))]
    else:
        chosen = [(layers[head.layer], head.class_names, head.units) for head in output_heads]
    return [
        (cells, names, units)
        for cells, names, units in chosen
        if len(cells.output_shape) == 1 and cells.count == len(names) and names
    ]


def add_operation_nodes(b, inputs, placed, settings, materials, layers, class_names, epoch_blend, output_heads=None):
    """Wire the groups of this module; returns ``(cells with the focus attribute, [geometry parts])``.

    ``epoch_blend`` holds the Epoch Low/High/Factor sockets that pick the kernels' weights;
    ``output_heads`` the output neurons that get a probability bar (see ``labeled_heads``).
    """
    # Two parts, each a group of its own built while nothing uses it (Blender updates a whole tree on every link:
    # TreeBuilder.part). Built in the part that places the cells, they took CIFAR-10 greyscale's build from 408 to
    # 447 ms (medians of 5 alternating runs).
    with b.part("What a pixel is computed from: receptive field, kernels, pooling, flatten"):
        operations = b.object_geometry(inputs["Operations"])
        kernels = b.group(
            ensure_trained_weights("POINT"), {"Geometry": b.object_geometry(inputs["Kernels"]), **epoch_blend}
        ).outputs[0]
        radius = settings["Edge Radius"]
        numbers_look = {
            "Text Material": inputs["Number Material"],
            "Plate Material": inputs["Number Plate Material"],
        }
        with b.frame("The focus pixel, or the sweep's"):
            focus = b.group(
                ensure_focus_cell(),
                {
                    "Operations": operations,
                    "Layer": inputs["Focus Layer"],
                    "Channel": inputs["Focus Channel"],
                    "Row": inputs["Focus Row"],
                    "Column": inputs["Focus Column"],
                    **{name: inputs[name] for name in ("Show Sweep", "Sweep", "Sweep Taps")},
                },
            ).outputs
        field = b.group(
            ensure_receptive_field(),
            {
                "Cells": placed,
                "Operations": operations,
                "Kernels": kernels,
                **{f"Focus {name}": focus[name] for name in ("Layer", "Channel", "Row", "Column")},
                "Filled": focus["Filled"],
                **{name: inputs[name] for name in ("All Calculations", "All Channels", "Max Lines", "Kernel Position")},
                "Show": inputs["Show Receptive Field"],
                "Line Radius": b.multiply(radius, 0.2),
                "Cell Gap": settings["Cell Gap"],
                "Label Size": b.multiply(inputs["Number Size"], 0.9),
                "Colormap": settings["Weight Colormap"],
                "Highlight Material": materials["highlight"],
                "Edge Material": materials["edge"],
                **numbers_look,
            },
        )
        timeline_inputs = {"Epoch": settings["Epoch"], **epoch_blend, "Sample": settings["Sample"]}
        with b.frame("The sweep's numbers: the window's products and their sum"):
            words = inputs.get(LAYER_WORDS) or {}
            numbers = b.group(
                ensure_window_numbers(),
                {
                    "Cells": field.outputs["Cells"],
                    "Operations": operations,
                    "Kernels": kernels,
                    "Taps": field.outputs["Taps"],
                    **{f"Focus {name}": focus[name] for name in ("Layer", "Index", "Channel", "Row", "Column")},
                    **timeline_inputs,
                    "Revealed": focus["Revealed"],
                    "Tap Numbers": inputs["Sweep Numbers"],
                    "Layer Name": b.index_switch(
                        focus["Layer"],
                        {index: name for index, (name, _after) in words.items()},
                        "STRING",
                        "Layer Names",
                    ),
                    "After Sum": b.index_switch(
                        focus["Layer"], {index: after for index, (_name, after) in words.items()}, "STRING", "After Sum"
                    ),
                    "Size": inputs["Number Size"],
                    "Show": b.all_of(inputs["Show Sweep"], inputs["Show Receptive Field"]),
                },
            )
        with b.frame("Inspect's numbers: scene/inspection.py gives this node each inspection's own group"):
            inspection = b.group(
                ensure_no_inspection(),
                {"Cells": field.outputs["Cells"], **timeline_inputs, "Size": inputs["Number Size"]},
            )
            inspection.name = INSPECTION_NODE
        pooling = b.group(
            ensure_pooling_links(),
            {
                "Cells": placed,
                "Channel": inputs["Focus Channel"],
                "All Channels": inputs["All Channels"],
                "Max Links": inputs["Max Links"],
                "Line Radius": b.multiply(radius, 0.2),
                "Highlight Material": materials["highlight"],
                "Edge Material": materials["edge"],
            },
        ).outputs[0]
        flatten = b.group(
            ensure_flatten_links(),
            {
                "Cells": placed,
                "Operations": operations,
                "Channel": inputs["Focus Channel"],
                "All Channels": inputs["All Channels"],
                "Max Links": inputs["Max Links"],
                "Line Radius": b.multiply(radius, 0.12),
                "Edge Material": materials["edge"],
            },
        ).outputs[0]
        parts = [
            field.outputs["Mesh"],
            b.switch("GEOMETRY", inputs["Show Pooling"], true=pooling),
            b.switch("GEOMETRY", inputs["Show Flatten"], true=flatten),
        ]
        written = [written_by(numbers), written_by(inspection)]

    with b.part("Probabilities, the top classes and every number written"):
        bars, heads, readouts = [], [], []
        for head, (output_layer, names, units) in enumerate(labeled_heads(layers, class_names, output_heads)):
            readouts.append(
                top_classes_readout(b, placed, head, output_layer, names, inputs["Top Classes"], settings["Label Size"])
            )
            # Bars start after the longest class name (text 0.8 pitch high, about 0.6 of that per letter).
            offset = 0.8 + 0.8 * 0.62 * max(len(str(name)) for name in names) + 0.6
            heads.append((output_layer.start, units, offset))
            bars += [
                b.group(
                    ensure_probability(),
                    {
                        "Cells": placed,
                        "Cell": output_layer.start + unit,
                        "Offset": offset,
                        "Highlight Material": materials["highlight"],
                    },
                ).outputs[0]
                for unit in units
            ]
        if bars:
            # The readout replaces the bars and numbers beside the neurons (the class names too: nodes/network.py).
            readout = b.compare(inputs["Top Classes"], ">", 0)
            shown = b.all_of(inputs["Show Probabilities"], b.logical_not(readout))
            parts.append(b.switch("GEOMETRY", shown, true=b.join(bars)))
            written.append((b.switch("GEOMETRY", shown, true=probability_segments(b, placed, heads)), None, None))
            for text, anchors in readouts:
                shown_readout = b.all_of(inputs["Show Probabilities"], readout)
                written.append((None, b.switch("STRING", shown_readout, "", text), anchors))
        with b.frame("Every number and word above written at once"):
            look = {
                "text": inputs["Number Material"],
                "plate": inputs["Number Plate Material"],
                "label": materials["label"],
            }
            parts.append(write(b, written, look))
    return field.outputs["Cells"], parts
