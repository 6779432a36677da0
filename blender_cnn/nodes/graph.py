"""Where a graph's layers stand, in Geometry Nodes: blocks that expand, rows that wrap, links between units.

The layer table (``core/placement.py``, one point per layer) gets each
layer's ``origin`` and ``visible`` here; the cell layout and the labels read
them at their layer. Positions follow the modifier's Layer Spacing, Lane
Spacing, Row Length and each block's Expand, so a block can be expanded and
collapsed on a keyframe and the rows follow.
"""

import math

from .builder import ensure_group
from .groups import text_mesh

GRAPH_POSITION = "BCNN Graph Position"
GRAPH_LINKS = "BCNN Graph Links"
UNIT_LABEL = "BCNN Unit Label"
LINK_COLOR = "edge_color"
# 1 on the curves of links, so readers can tell them from the dense layers' connections.
GRAPH_LINK = "graph_link"


def ensure_graph_position():
    return ensure_group(GRAPH_POSITION, 1, _build_graph_position)


def ensure_graph_links():
    return ensure_group(GRAPH_LINKS, 2, _build_graph_links)


def ensure_unit_label():
    return ensure_group(UNIT_LABEL, 1, _build_unit_label)


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
        start = _add(b, start, b.math("MULTIPLY_ADD", expand, float(columns - 1), 1.0))
        if lanes > 1:
            row_lanes = b.math("MAXIMUM", row_lanes, b.math("MULTIPLY_ADD", expand, float(lanes - 1), 1.0))
    item = b.attribute("item", "INT")
    expand_field = _index_switch(b, item, [expand_inputs.get(position, 1.0) for position in range(len(items))])
    start_field = _index_switch(b, item, starts)
    return b.group(ensure_graph_position(), {
        "Table": table, "Start": start_field, "Expand": expand_field, "Layer Spacing": settings["Layer Spacing"],
        "Lane Spacing": settings["Lane Spacing"], "Row Length": settings["Row Length"],
        "Row Lanes": row_lanes}).outputs[0]


def _add(b, a, c):
    if isinstance(a, float) and isinstance(c, float):
        return a + c
    return b.math("ADD", a, c)


def _index_switch(b, index, values):
    switch = b.node("GeometryNodeIndexSwitch", data_type="FLOAT")
    while len(switch.index_switch_items) < len(values):
        switch.index_switch_items.new()
    b.set_input(switch, "Index", index)
    for position, value in enumerate(values):
        b.set_input(switch, position + 1, value)
    return switch.outputs[0]


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

    column = b.math("MULTIPLY_ADD", expand, b.attribute("column"), start)
    length = b.math("MAXIMUM", row_length, 1.0)
    row = b.math("FLOOR", b.math("DIVIDE", b.math("ADD", column, 1e-4), length))
    along = b.math("SUBTRACT", column, b.math("MULTIPLY", row, length))
    backwards = b.math("FLOORED_MODULO", row, 2.0)
    # Odd rows run back: column c of the row stands at length - 1 - c.
    along = b.math("MULTIPLY_ADD", backwards, b.math("SUBTRACT", b.math("SUBTRACT", length, 1.0),
                                                     b.math("MULTIPLY", along, 2.0)), along)
    lane = b.math("MULTIPLY", expand, b.attribute("lane"))
    depth = b.math("MULTIPLY", b.math("MULTIPLY_ADD", row, row_lanes, lane), lane_spacing)
    origin = b.combine_xyz(b.math("MULTIPLY", along, spacing), 0.0, b.math("MULTIPLY", depth, -1.0))
    # Units a collapsed block hides shrink into its place; its output and units outside blocks stay.
    is_output = b.attribute("is_output")
    visible = b.math("MAXIMUM", is_output, expand)
    geometry = table
    for name, value, kind in (("origin", origin, "FLOAT_VECTOR"), ("visible", visible, "FLOAT")):
        geometry = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": geometry, "Name": name, "Value": value},
                          data_type=kind, domain="POINT").outputs[0]
    b.set_outputs(Table=geometry)


def sample_table(b, table, name, index, data_type="FLOAT"):
    """A placed-table value (``origin``, ``visible``, ``half_height``) at the layer ``index``."""
    read = b.attribute(name, data_type)
    return b.node("GeometryNodeSampleIndex", {"Geometry": table, "Value": read, "Index": index},
                  data_type=data_type, domain="POINT").outputs[0]


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

    source, target = b.attribute("source_layer", "INT"), b.attribute("target_layer", "INT")

    def top(layer):
        origin = sample_table(b, table, "origin", layer, "FLOAT_VECTOR")
        half = b.math("MULTIPLY", sample_table(b, table, "half_height", layer), cell_size)
        return b.vector_math("ADD", origin, b.combine_xyz(0.0, 0.0, half))

    start, end = top(source), top(target)
    factor = b.node("GeometryNodeSplineParameter").outputs["Factor"]
    straight = b.node("ShaderNodeMix", {"Factor": factor, "A": start, "B": end},
                      data_type="VECTOR").outputs["Result"]
    length = b.vector_math("DISTANCE", start, end)
    lift = b.math("MULTIPLY", b.math("MULTIPLY", length, 0.25), b.math("SINE", b.math("MULTIPLY", factor, math.pi)))
    placed = b.node("GeometryNodeSetPosition", {"Geometry": curves, "Position": b.vector_math(
        "ADD", straight, b.combine_xyz(0.0, 0.0, lift))}).outputs[0]
    # A link inside a block gathers in with it; one into or out of a collapsed block ends at its node, where
    # the block's units all stand, and stays.
    same_item = b.compare_int(sample_table(b, table, "item", source, "INT"), sample_table(b, table, "item", target,
                                                                                           "INT"))
    inside = b.math("MINIMUM", sample_table(b, table, "visible", source), sample_table(b, table, "visible", target))
    shown = b.node("GeometryNodeSwitch", {"Switch": same_item, "False": 1.0, "True": inside},
                   input_type="FLOAT").outputs[0]
    sized = b.node("GeometryNodeSetCurveRadius", {"Curve": placed, "Radius": b.math(
        "MULTIPLY", b.math("MULTIPLY", radius, cell_size), shown)}).outputs[0]
    hidden = b.math("LESS_THAN", shown, 1e-4)
    kept = b.node("GeometryNodeDeleteGeometry", {"Geometry": sized, "Selection": hidden}, domain="CURVE").outputs[0]
    colored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": kept, "Name": LINK_COLOR,
                                                         "Value": b.attribute("link_color", "FLOAT_VECTOR")},
                     data_type="FLOAT_COLOR", domain="CURVE").outputs[0]
    marked = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": colored, "Name": GRAPH_LINK, "Value": 1},
                    data_type="INT", domain="CURVE").outputs[0]
    b.set_outputs(Curves=b.node("GeometryNodeSetMaterial", {"Geometry": marked, "Material": material}).outputs[0])


def _build_unit_label(b):
    """A unit's or a block's text under its layer's wall, as large as the layer is shown (``Shown`` 0..1)."""
    b.tree.description = "Text under one unit or block of a graph"
    table = b.add_input("Table", "GEOMETRY")
    layer = b.add_input("Layer", "INT", 0, 0)
    text = b.add_input("Text", "STRING")
    size = b.add_input("Size", "FLOAT", 2.0, 0.0)
    shown = b.add_input("Shown", "FLOAT", 1.0, 0.0, 1.0)
    cell_size = b.add_input("Cell Size", "FLOAT", 1.0, 0.001)
    margin = b.add_input("Margin", "FLOAT", 1.5, 0.0)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    origin = sample_table(b, table, "origin", layer, "FLOAT_VECTOR")
    half = b.math("MULTIPLY", sample_table(b, table, "half_height", layer), cell_size)
    anchor = b.vector_math("SUBTRACT", origin, b.combine_xyz(0.0, 0.0, b.math("ADD", half, margin)))
    scale = b.math("MULTIPLY", shown, sample_table(b, table, "visible", layer))
    mesh = text_mesh(b, text, b.math("MULTIPLY", size, scale), "Center", "Top", anchor, material)
    hidden = b.math("LESS_THAN", scale, 1e-3)
    b.set_outputs(Mesh=b.node("GeometryNodeSwitch", {"Switch": hidden, "False": mesh}, input_type="GEOMETRY")
                  .outputs[0])


