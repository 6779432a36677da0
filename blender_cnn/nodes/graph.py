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
LINK_COLOR = "edge_color"
# The label of the Index Switch that holds a graph's unit labels, so a redraw can rewrite their notes.
UNIT_LABELS = "Unit Labels"
# 1 on the curves of links, so readers can tell them from the dense layers' connections.
GRAPH_LINK = "graph_link"


def ensure_graph_position():
    return ensure_group(GRAPH_POSITION, 2, _build_graph_position)


def ensure_graph_links():
    return ensure_group(GRAPH_LINKS, 3, _build_graph_links)


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
    for name, value, kind in (("origin", origin, "FLOAT_VECTOR"), ("visible", visible, "FLOAT"),
                              ("expand", expand, "FLOAT")):
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
        """The top of the layer's wall; of its block's output while the block is collapsed (visible 0)."""
        origin = sample_table(b, table, "origin", layer, "FLOAT_VECTOR")
        half = b.node("ShaderNodeMix", {"Factor": sample_table(b, table, "visible", layer),
                                        "A": sample_table(b, table, "block_half_height", layer),
                                        "B": sample_table(b, table, "half_height", layer)},
                      data_type="FLOAT").outputs["Result"]
        return b.vector_math("ADD", origin, b.combine_xyz(0.0, 0.0, b.math("MULTIPLY", half, cell_size)))

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


def add_graph_labels(b, table, texts, block_texts, size, cell_size, margin, material):
    """Every unit's label under its wall, and every collapsed block's, in one For Each Element zone.

    ``texts`` and ``block_texts`` map layer indices to strings. One zone over
    the layer table draws them all: a group node per label made ResNet50's
    tree hundreds of nodes, and Blender links ever more slowly as a tree grows.
    A unit in a block is as large as the block is expanded; a block's own label
    as it is collapsed.
    """
    in_block, expand = b.attribute("in_block"), b.attribute("expand")
    unit_scale = b.math("MULTIPLY", b.attribute("visible"), b.node("ShaderNodeMix", {
        "Factor": in_block, "A": 1.0, "B": expand}, data_type="FLOAT").outputs["Result"])
    block_scale = b.math("MULTIPLY", b.math("MULTIPLY", in_block, b.attribute("is_output")),
                         b.math("SUBTRACT", 1.0, expand))
    drop = b.node("ShaderNodeMath", {0: b.math("MULTIPLY", b.attribute("half_height"), cell_size), 1: margin},
                  operation="ADD").outputs[0]
    anchor = b.vector_math("SUBTRACT", b.node("GeometryNodeInputNamedAttribute", {"Name": "origin"},
                                              data_type="FLOAT_VECTOR").outputs["Attribute"],
                           b.combine_xyz(0.0, 0.0, drop))
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
        text = _string_switch(b, zone_in.outputs["Index"], strings, name)
        factor = zone_in.outputs[scale]
        mesh = text_mesh(b, text, b.math("MULTIPLY", size, factor), "Center", "Top", zone_in.outputs["Anchor"],
                         material)
        hidden = b.math("LESS_THAN", factor, 1e-3)
        labels.append(b.node("GeometryNodeSwitch", {"Switch": hidden, "False": mesh}, input_type="GEOMETRY")
                      .outputs[0])
    joined = b.node("GeometryNodeJoinGeometry")
    for label in reversed(labels):
        b.link(label, joined.inputs[0])
    b.link(joined.outputs[0], zone_out.inputs["Geometry"] if "Geometry" in zone_out.inputs else
           next(socket for socket in zone_out.inputs if socket.identifier.startswith("Generation_")))
    return next(socket for socket in zone_out.outputs if socket.identifier.startswith("Generation_"))


def _string_switch(b, index, strings, name):
    """The string of layer ``index`` ({index: text}; others empty), as default values: no links to add."""
    switch = b.node("GeometryNodeIndexSwitch", data_type="STRING", label=name)
    count = max(strings, default=-1) + 1
    while len(switch.index_switch_items) < count:
        switch.index_switch_items.new()
    b.set_input(switch, "Index", index)
    for position, text in strings.items():
        switch.inputs[position + 1].default_value = text
    return switch.outputs[0]
