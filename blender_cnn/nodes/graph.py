"""Where a graph's layers stand, in Geometry Nodes: blocks that expand, rows that wrap, links between units.

The layer table (``core/placement.py``, one point per layer) gets each
layer's ``origin`` and ``visible`` here; the cell layout and the labels read
them at their layer. Positions follow the modifier's Layer Spacing, Lane
Spacing, Row Length and each block's Expand, so a block can be expanded and
collapsed on a keyframe and the rows follow.
"""

import math

from ..core.attributes import EDGE_COLOR
from .builder import ensure_group
from .groups import text_mesh

GRAPH_POSITION = "BCNN Graph Position"
GRAPH_LINKS = "BCNN Graph Links"
# The label of the Index Switch that holds a graph's unit labels, so a redraw can rewrite their notes.
UNIT_LABELS = "Unit Labels"
# 1 on the curves of links, so readers can tell them from the dense layers' connections.
GRAPH_LINK = "graph_link"


def ensure_graph_position():
    return ensure_group(GRAPH_POSITION, _build_graph_position)


def ensure_graph_links():
    return ensure_group(GRAPH_LINKS, _build_graph_links)


def add_placed_table(b, table, items, expand_inputs, settings):
    """The layer table with ``origin`` and ``visible`` stored on its points; returns the geometry socket.

    ``items`` are ``(columns, lanes)`` per item in order; ``expand_inputs``
    maps an item's position to its Expand socket (blocks only: units always
    stand expanded). An item's first column is the sum of the widths of the
    items before it, each ``1 + expand * (columns - 1)``: a chain of additions
    in the tree, so expanding one block moves everything after it.
    """
    starts, start = [], 0.0
    row_lanes = 1.0
    for position, (columns, lanes) in enumerate(items):
        starts.append(start)
        expand = expand_inputs.get(position)
        if expand is None:
            start = _add(b, start, 1.0)
            continue
        start = _add(b, start, b.multiply_add(expand, float(columns - 1), 1.0))
        if lanes > 1:
            row_lanes = b.maximum(row_lanes, b.multiply_add(expand, float(lanes - 1), 1.0))
    item = b.attribute("item")
    expand_field = b.index_switch(item, [expand_inputs.get(position, 1.0) for position in range(len(items))])
    start_field = b.index_switch(item, starts)
    return b.group(
        ensure_graph_position(),
        {
            "Table": table,
            "Start": start_field,
            "Expand": expand_field,
            "Layer Spacing": settings["Layer Spacing"],
            "Lane Spacing": settings["Lane Spacing"],
            "Row Length": settings["Row Length"],
            "Row Lanes": row_lanes,
        },
    ).outputs[0]


def item_openings(b, level, order):
    """``{item position: socket}``: how far each item of ``order`` (``{position: rank}``) is open at ``level``.

    The Expansion Level opens them one after another: item ``rank`` of ``n``
    while the level crosses ``[rank / n, (rank + 1) / n]``, eased at both ends
    (``core.placement.opened`` is the same in numpy). One Map Range per item.
    """
    count = max(len(order), 1)
    return {
        position: b.map_range(level, rank / count, (rank + 1) / count, interpolation="SMOOTHSTEP")
        for position, rank in order.items()
    }


def _add(b, a, c):
    if isinstance(a, float) and isinstance(c, float):
        return a + c
    return b.add(a, c)


def _build_graph_position(b):
    """Each layer's ``origin`` along a serpentine of rows, and ``visible`` (0 inside a collapsed block).

    A layer's column along the network is its item's start plus its column in
    the block times the block's Expand. Columns wrap into rows of Row Length:
    even rows run along +X, odd rows back, so consecutive items stay
    neighbours; rows stand below each other, as far apart as the lanes of the
    most expanded block need. Lanes (branches beside the main path) go down
    from it, also scaled by Expand so a collapsing block gathers them in.
    """
    b.tree.description = "Places every layer of a graph: blocks, branches, rows"
    table = b.add_input("Table", "GEOMETRY")
    start = b.add_input("Start", "FLOAT", 0.0, description="The first column of the layer's item")
    expand = b.add_input("Expand", "FLOAT", 1.0, 0.0, 1.0, description="How far the layer's block is expanded")
    spacing = b.add_input("Layer Spacing", "FLOAT", 40.0, 0.0)
    lane_spacing = b.add_input("Lane Spacing", "FLOAT", 40.0, 0.0)
    row_length = b.add_input("Row Length", "INT", 1000, 1)
    row_lanes = b.add_input("Row Lanes", "FLOAT", 1.0, 1.0)
    b.add_output("Table", "GEOMETRY")

    with b.frame("Column along the serpentine of rows"):
        column = b.multiply_add(expand, b.attribute("column"), start)
        length = b.maximum(row_length, 1.0)
        row = b.floor(b.divide(b.add(column, 1e-4), length))
        along = b.subtract(column, b.multiply(row, length))
        backwards = b.modulo(row, 2.0)
        # Odd rows run back: column c of the row stands at length - 1 - c.
        along = b.multiply_add(backwards, b.subtract(b.subtract(length, 1.0), b.multiply(along, 2.0)), along)
    with b.frame("Depth: rows, then lanes below the main path"):
        lane = b.multiply(expand, b.attribute("lane"))
        depth = b.multiply(b.multiply_add(row, row_lanes, lane), lane_spacing)
        origin = b.combine_xyz(b.multiply(along, spacing), 0.0, b.negate(depth))
    with b.frame("Stored on the table"):
        # Units a collapsed block hides shrink into its place; its output and units outside blocks stay.
        visible = b.maximum(b.attribute("is_output"), expand)
        geometry = b.store(table, "origin", origin)
        geometry = b.store(geometry, "visible", visible)
        geometry = b.store(geometry, "expand", expand)
    b.set_outputs(Table=geometry)


def sample_table(b, table, name, index):
    """A placed-table value (``origin``, ``visible``, ``half_height``...) at the layer ``index``."""
    return b.sample_index(table, b.attribute(name), index)


def _build_graph_links(b):
    """Curves from each link's source layer to the layer it feeds, arched over the walls between.

    Each end sits on the top edge of its layer's wall; the curve rises in the
    middle by a share of its length, so a skip link passes over the layers it
    skips. A link inside a collapsed block shrinks to nothing with it.
    """
    b.tree.description = "Draws the links of a graph between its layers"
    curves = b.add_input("Curves", "GEOMETRY")
    table = b.add_input("Table", "GEOMETRY")
    cell_size = b.add_input("Cell Size", "FLOAT", 1.0, 0.001)
    radius = b.add_input("Radius", "FLOAT", 0.3, 0.0)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Curves", "GEOMETRY")

    source, target = b.attribute("source_layer"), b.attribute("target_layer")

    def top(layer):
        """The top of the layer's wall; of its block's output while the block is collapsed (visible 0)."""
        origin = sample_table(b, table, "origin", layer)
        half = b.mix(
            sample_table(b, table, "visible", layer),
            sample_table(b, table, "block_half_height", layer),
            sample_table(b, table, "half_height", layer),
        )
        return b.vector_add(origin, b.combine_xyz(0.0, 0.0, b.multiply(half, cell_size)))

    with b.frame("An arch from the top of the source's wall to the target's"):
        start, end = top(source), top(target)
        factor = b.spline_parameter()["Factor"]
        straight = b.mix(factor, start, end, "VECTOR")
        lift = b.multiply(b.multiply(b.distance(start, end), 0.25), b.sine(b.multiply(factor, math.pi)))
        placed = b.set_position(curves, b.vector_add(straight, b.combine_xyz(0.0, 0.0, lift)))
    with b.frame("Shrunk with a collapsing block, gone when collapsed"):
        # A link inside a block gathers in with it; one into or out of a collapsed block ends at its node, where
        # the block's units all stand, and stays.
        same_item = b.compare(sample_table(b, table, "item", source), "==", sample_table(b, table, "item", target))
        inside = b.minimum(sample_table(b, table, "visible", source), sample_table(b, table, "visible", target))
        shown = b.switch("FLOAT", same_item, 1.0, inside)
        sized = b.set_curve_radius(placed, b.multiply(b.multiply(radius, cell_size), shown))
        kept = b.delete(sized, b.less_than(shown, 1e-4), domain="CURVE")
    with b.frame("Colored and marked as a graph's link"):
        colored = b.store(kept, EDGE_COLOR, b.attribute("link_color"))
        marked = b.store(colored, GRAPH_LINK, 1)
    b.set_outputs(Curves=b.set_material(marked, material))


def add_graph_labels(b, table, texts, block_texts, size, cell_size, margin, material, wall_scale=1.0):
    """Every unit's label under its wall, and every collapsed block's, in one For Each Element zone.

    ``wall_scale`` (a field on the table's points, one per layer) says how many
    times taller than the table's ``half_height`` a wall stands now (an output
    layer grown by Output Scale).

    ``texts`` and ``block_texts`` map layer indices to strings. One zone over
    the layer table draws them all: a group node per label made ResNet50's
    tree hundreds of nodes, and Blender links ever more slowly as a tree grows.
    A unit in a block is as large as the block is expanded; a block's own label
    as it is collapsed.
    """
    in_block, expand = b.attribute("in_block"), b.attribute("expand")
    unit_scale = b.multiply(b.attribute("visible"), b.mix(in_block, 1.0, expand))
    block_scale = b.multiply(b.multiply(in_block, b.attribute("is_output")), b.subtract(1.0, expand))
    drop = b.add(b.multiply(b.multiply(b.attribute("half_height"), wall_scale), cell_size), margin)
    anchor = b.vector_subtract(b.attribute("origin"), b.combine_xyz(0.0, 0.0, drop))
    zone_in = b.node("GeometryNodeForeachGeometryElementInput")
    zone_out = b.node("GeometryNodeForeachGeometryElementOutput", domain="POINT")
    zone_in.pair_with_output(zone_out)
    for name, kind in (("Unit Scale", "FLOAT"), ("Block Scale", "FLOAT"), ("Anchor", "VECTOR")):
        zone_out.input_items.new(kind, name)
    b.set_input(zone_in, "Geometry", table)
    b.set_input(zone_in, "Unit Scale", unit_scale)
    b.set_input(zone_in, "Block Scale", block_scale)
    b.set_input(zone_in, "Anchor", anchor)
    labels = []
    for strings, scale, name in ((texts, "Unit Scale", UNIT_LABELS), (block_texts, "Block Scale", "Block Labels")):
        text = b.index_switch(zone_in.outputs["Index"], strings, "STRING", label=name)
        factor = zone_in.outputs[scale]
        mesh = text_mesh(b, text, b.multiply(size, factor), "Center", "Top", zone_in.outputs["Anchor"], material)
        labels.append(b.switch("GEOMETRY", b.less_than(factor, 1e-3), mesh))
    joined = b.join(labels)
    b.link(
        joined,
        zone_out.inputs["Geometry"]
        if "Geometry" in zone_out.inputs
        else next(socket for socket in zone_out.inputs if socket.identifier.startswith("Generation_")),
    )
    return next(socket for socket in zone_out.outputs if socket.identifier.startswith("Generation_"))
