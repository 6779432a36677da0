"""The reusable Geometry Nodes groups of a network scene, built in code.

Each group reads the attributes the builder wrote (see ``core/cells.py``) and
computes positions and looks from its inputs, so a user can change layout and
style on the modifier and keyframe them. Bump a group's version when its
build function changes; ``ensure_group`` then rebuilds it in place.
"""

import math

from ..core import colormaps
from .builder import ensure_group

CELL_LAYOUT = "BCNN Cell Layout"
FEATURE_MAPS = "BCNN Feature Maps"
CONNECTIONS = "BCNN Connections"
# Cycles does not find a geometry attribute called plain "color", hence the prefixes.
CELL_COLOR = "cell_color"
# Cell attributes that only place and size the cells; the drawn quads do without them.
# Attributes that only place and color the cells (map_rows, map_cols, act_low, act_high, importance_row,
# importance, importance_class and those named), as few patterns as remove them: a node each, and big
# trees are slow to build.
LAYOUT_ONLY_PATTERNS = ("map_*", "act_*", "importance*", "channels", "is_neuron", "cell_pitch", "cell_scale",
                        "cell_tilt")
# A map folded all the way (Map Fold 1) has its rows tilted this far from the wall, alternately forward and back.
MAP_FOLD_ANGLE = math.radians(80.0)
EDGE_COLOR = "edge_color"
LAYER_LABEL = "BCNN Layer Label"
LEGEND = "BCNN Legend"
ACTIVATION_COLORMAP = "BCNN Activation Colormap"
WEIGHT_COLORMAP = "BCNN Weight Colormap"
NEURON_LABEL = "BCNN Neuron Label"

# Quads and text are made in the XY plane; this turns them to face -X, the side
# the network is looked at from, with text reading along -Y (left to right on screen).
FACE_NETWORK_VIEW = (math.pi / 2, 0.0, -math.pi / 2)
QUAD_FACING_VIEW = (0.0, -math.pi / 2, 0.0)


def ensure_cell_layout():
    return ensure_group(CELL_LAYOUT, 7, _build_cell_layout)


def ensure_feature_maps():
    return ensure_group(FEATURE_MAPS, 8, _build_feature_maps)


def ensure_legend():
    return ensure_group(LEGEND, 8, _build_legend)


def ensure_connections():
    return ensure_group(CONNECTIONS, 4, _build_connections)


def ensure_layer_label():
    return ensure_group(LAYER_LABEL, 2, _build_layer_label)


def ensure_neuron_label():
    return ensure_group(NEURON_LABEL, 3, _build_neuron_label)


def _build_cell_layout(b):
    """Cell centres: layers along +X, each layer's maps on a wall facing -X, in a line, a circle or a grid.

    Map Layout morphs continuously: 0 = line (across the wall, or along the
    network as Line Direction goes to 1), 1 = circle, 2 = grid. Fold collapses
    a layer's maps into its summary map (mean or max over channels). Map
    Layout, Fold and Channels Shown are fields, so each layer can have its own.
    Map Fold folds each map like a paper concertina: its rows tilt
    alternately forward and back about the hinges between them, so the map
    shrinks in height. Stores ``cell_pitch`` (distance between neighbouring
    cells of the layer), ``cell_scale`` (how much of the cell is shown: 0 =
    hidden) and ``cell_tilt`` (the row's angle about the wall's horizontal axis).
    """
    b.tree.description = "Places every cell from its layer, channel, row and column"
    geometry = b.add_input("Geometry", "GEOMETRY")
    spacing = b.add_input("Layer Spacing", "FLOAT", 40.0, 0.0, description="Distance between layers")
    gap = b.add_input("Map Gap", "FLOAT", 2.0, 0.0, description="Space between the maps of a layer")
    cell_size = b.add_input("Cell Size", "FLOAT", 1.0, 0.001, description="Distance between neighbouring cells")
    neuron_scale = b.add_input("Neuron Scale", "FLOAT", 2.5, 0.01,
                               description="Size of dense-layer neurons relative to feature-map cells")
    layout = b.add_input("Map Layout", "FLOAT", 2.0, 0.0, 2.0,
                         description="0 = maps in a line, 1 = on a circle, 2 = in a grid; between: a blend")
    direction = b.add_input("Line Direction", "FLOAT", 0.0, 0.0, 1.0,
                            description="Where the line of maps runs: 0 = across the wall, 1 = along the network")
    fold = b.add_input("Fold", "FLOAT", 0.0, 0.0, 1.0,
                       description="0 = every channel's map, 1 = one summary map of the layer")
    shown = b.add_input("Channels Shown", "INT", 0, 0, description="Show the first N channels (0: all)")
    map_fold = b.add_input("Map Fold", "FLOAT", 0.0, 0.0, 1.0,
                           description="0 = each map flat, 1 = each map folded like a concertina along its rows")
    fold_to_max = b.add_input("Fold to Max", "BOOLEAN", False,
                              description="The summary map shows the maximum over channels instead of the mean")
    layer_table = b.add_input("Layer Table", "GEOMETRY",
                              description="One point per layer with its origin and visibility (nodes/graph.py); "
                                          "without it, layers stand in one row Layer Spacing apart")
    b.add_output("Geometry", "GEOMETRY")

    layer, channel = b.attribute("layer", "INT"), b.attribute("channel", "INT")
    row, col = b.attribute("row", "INT"), b.attribute("col", "INT")
    map_rows, map_cols = b.attribute("map_rows", "INT"), b.attribute("map_cols", "INT")
    channels, is_neuron = b.attribute("channels", "INT"), b.attribute("is_neuron", "INT")
    # Summary cells: 1 = the mean map, 2 = the max map; Fold to Max picks which one a fold shows.
    summary_kind = b.attribute("is_summary", "INT")
    is_summary = b.math("MINIMUM", summary_kind, 1.0)

    # cell_size * (1 + is_neuron * (neuron_scale - 1)): neurons get the larger pitch.
    cell = b.math("MULTIPLY", cell_size,
                  b.math("MULTIPLY_ADD", is_neuron, b.math("SUBTRACT", neuron_scale, 1.0), 1.0))
    # Channels shown: all when the input is 0, else at most that many.
    visible_channels = b.math("MINIMUM", channels,
                              b.math("MULTIPLY_ADD", b.math("LESS_THAN", shown, 0.5), channels, shown))
    map_width = b.math("MULTIPLY", map_cols, cell)
    map_height = b.math("MULTIPLY", map_rows, cell)
    map_pitch = b.math("ADD", map_width, gap)

    def centred(index, count):
        """index - (count - 1) / 2: position of ``index`` among ``count`` centred on zero."""
        return b.math("SUBTRACT", index, b.math("MULTIPLY", b.math("SUBTRACT", count, 1.0), 0.5))

    def mix(factor, a, b_):
        return b.node("ShaderNodeMix", {"Factor": factor, "A": a, "B": b_}, data_type="VECTOR").outputs["Result"]

    # The map centre in each layout (X along the network, -Y across the wall, Z up).
    along_line = centred(channel, visible_channels)
    across = b.combine_xyz(0.0, b.math("MULTIPLY", along_line, b.math("MULTIPLY", map_pitch, -1.0)), 0.0)
    lengthwise = b.combine_xyz(b.math("MULTIPLY", along_line, b.math("MULTIPLY", map_pitch, 0.5)), 0.0, 0.0)
    line = mix(direction, across, lengthwise)
    angle = b.math("MULTIPLY", b.math("DIVIDE", channel, visible_channels), 2 * math.pi)
    radius = b.math("MULTIPLY", b.math("DIVIDE", b.math("MULTIPLY", visible_channels, b.math(
        "ADD", b.math("MAXIMUM", map_width, map_height), gap)), 2 * math.pi),
        b.math("GREATER_THAN", visible_channels, 1.5))
    circle = b.combine_xyz(0.0, b.math("MULTIPLY", b.math("SINE", angle), b.math("MULTIPLY", radius, -1.0)),
                           b.math("MULTIPLY", b.math("COSINE", angle), radius))
    grid_cols = b.math("CEIL", b.math("SQRT", visible_channels))
    grid_rows = b.math("CEIL", b.math("DIVIDE", visible_channels, grid_cols))
    grid = b.combine_xyz(
        0.0, b.math("MULTIPLY", centred(b.math("FLOORED_MODULO", channel, grid_cols), grid_cols),
                    b.math("MULTIPLY", map_pitch, -1.0)),
        b.math("MULTIPLY", centred(b.math("FLOOR", b.math("DIVIDE", channel, grid_cols)), grid_rows),
               b.math("MULTIPLY", b.math("ADD", map_height, gap), -1.0)))
    line_to_circle = b.math("MINIMUM", b.math("MAXIMUM", layout, 0.0), 1.0)
    circle_to_grid = b.math("MINIMUM", b.math("MAXIMUM", b.math("SUBTRACT", layout, 1.0), 0.0), 1.0)
    map_centre = mix(circle_to_grid, mix(line_to_circle, line, circle), grid)
    # Folding pulls the maps into the layer's centre, where the summary map grows; summary maps stay there.
    # Hidden channels wait there too, so that labels and the camera frame only what is shown.
    channel_shown = b.math("LESS_THAN", channel, visible_channels)
    spread = b.math("MULTIPLY", b.math("MULTIPLY", b.math("SUBTRACT", 1.0, fold), b.math("SUBTRACT", 1.0, is_summary)),
                    channel_shown)
    map_centre = b.vector_math("SCALE", map_centre, spread)

    # Folded rows keep their width but stand closer: each one's height on the wall shrinks by cos(tilt).
    tilt_angle = b.math("MULTIPLY", map_fold, MAP_FOLD_ANGLE)
    row_pitch = b.math("MULTIPLY", cell, b.math("COSINE", tilt_angle))
    tilt = b.math("MULTIPLY", tilt_angle, b.math("SUBTRACT", 1.0, b.math("MULTIPLY", b.math("FLOORED_MODULO", row, 2.0),
                                                                           2.0)))
    in_map = b.combine_xyz(0.0, b.math("MULTIPLY", centred(col, map_cols), b.math("MULTIPLY", cell, -1.0)),
                           b.math("MULTIPLY", centred(row, map_rows), b.math("MULTIPLY", row_pitch, -1.0)))
    in_row = b.combine_xyz(b.math("MULTIPLY", layer, spacing), 0.0, 0.0)
    # The table is a mesh of loose points (scene/network.py); a network built before graphs has none.
    has_table = b.compare_int(b.node("GeometryNodeAttributeDomainSize", {"Geometry": layer_table},
                                     component="MESH").outputs["Point Count"], 0, "GREATER_THAN")

    def from_table(name, data_type, fallback):
        value = b.node("GeometryNodeSampleIndex", {"Geometry": layer_table, "Value": b.attribute(name, data_type),
                                                   "Index": layer},
                       data_type="FLOAT_VECTOR" if data_type == "FLOAT_VECTOR" else "FLOAT",
                       domain="POINT").outputs[0]
        return b.node("GeometryNodeSwitch", {"Switch": has_table, "False": fallback, "True": value},
                      input_type="VECTOR" if data_type == "FLOAT_VECTOR" else "FLOAT").outputs[0]

    layer_origin = from_table("origin", "FLOAT_VECTOR", in_row)
    # Units inside a collapsed block gather into its place (visible 0) and grow out as it expands.
    visible = from_table("visible", "FLOAT", 1.0)
    position = b.vector_math("ADD", layer_origin, b.vector_math("SCALE", b.vector_math("ADD", map_centre, in_map),
                                                                visible))
    placed = b.node("GeometryNodeSetPosition", {"Geometry": geometry, "Position": position})

    wanted_summary = b.compare_int(summary_kind, b.math("ADD", fold_to_max, 1.0))
    scale = b.node("ShaderNodeMix", {"Factor": is_summary,
                                     "A": b.math("MULTIPLY", b.math("SUBTRACT", 1.0, fold), channel_shown),
                                     "B": b.math("MULTIPLY", fold, wanted_summary)},
                   data_type="FLOAT").outputs["Result"]
    scale = b.math("MULTIPLY", scale, visible)
    geometry = placed.outputs[0]
    for name, value in (("cell_pitch", cell), ("cell_scale", scale), ("cell_tilt", tilt)):
        geometry = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": geometry, "Name": name, "Value": value},
                          data_type="FLOAT", domain="POINT").outputs[0]
    b.set_outputs(Geometry=geometry)


def ensure_activation_colormap():
    return ensure_group(ACTIVATION_COLORMAP, 1, lambda b: _build_colormap(b, colormaps.ACTIVATION_COLORMAPS))


def ensure_weight_colormap():
    return ensure_group(WEIGHT_COLORMAP, 1, lambda b: _build_colormap(b, colormaps.WEIGHT_COLORMAPS))


def _build_colormap(b, names):
    """Factor (0..1) to color through the colormap the menu picks.

    One group per kind of colormap, used wherever that kind is drawn, so that
    every menu linked to it shares its one Menu Switch: Blender empties a menu
    linked to two different switches.
    """
    b.tree.description = "Maps 0..1 to a color of the chosen colormap"
    factor = b.add_input("Factor", "FLOAT", 0.0, 0.0, 1.0)
    menu = b.add_input("Colormap", "MENU")
    b.add_output("Color", "COLOR")
    b.set_outputs(Color=b.menu_switch(menu, {name: b.color_ramp(factor, colormaps.stops(name)) for name in names}))


def _colormap(b, factor, colormap_group, menu):
    return b.group(colormap_group, {"Factor": factor, "Colormap": menu}).outputs[0]


def _activation_range(b, cells, across_network):
    """(low, high) fields: each cell's layer range, or the whole network's when ``across_network``."""
    low, high = b.attribute("act_low"), b.attribute("act_high")

    def network_wide(value, statistic):
        return b.node("GeometryNodeAttributeStatistic", {"Geometry": cells, "Attribute": value},
                      data_type="FLOAT", domain="POINT").outputs[statistic]

    def choose(per_layer, whole):
        return b.node("ShaderNodeMix", {"Factor": across_network, "A": per_layer, "B": whole},
                      data_type="FLOAT").outputs["Result"]

    return choose(low, network_wide(low, "Min")), choose(high, network_wide(high, "Max"))


def _importance_inputs(b):
    return (b.add_input("Show Importance", "FLOAT", 0.0, 0.0, 1.0,
                        description="0 = colors by activation (weight), 1 = by importance; between, a blend"),
            b.add_input("Class Count", "INT", 1, 1))


def _with_importance(b, color, show, class_count):
    """``color`` blended toward the importance color: the class's hue, as bright as the importance (0..1).

    The class is the one chosen, or with all classes the one each part matters most for, so both views
    give a class the same color (``importance`` and ``importance_class`` from the Importance groups).
    """
    hue = b.math("DIVIDE", b.attribute("importance_class", "INT"), class_count)
    importance_color = b.node("FunctionNodeCombineColor", {0: hue, 1: 0.75, 2: b.attribute("importance")},
                              mode="HSV").outputs[0]
    mix = b.node("ShaderNodeMix", {"Factor": show}, data_type="RGBA")
    sockets = {socket.identifier: socket for socket in (*mix.inputs, *mix.outputs)}
    b.link(color, sockets["A_Color"])
    b.link(importance_color, sockets["B_Color"])
    return sockets["Result_Color"]


def _build_feature_maps(b):
    """One colored quad per cell; color = activation through the colormap, stored as ``cell_color``."""
    b.tree.description = "Turns placed cells into colored quads"
    points = b.add_input("Cells", "GEOMETRY")
    cell_gap = b.add_input("Cell Gap", "FLOAT", 0.1, 0.0, 0.95, description="Share of a cell left empty")
    colormap = b.add_input("Colormap", "MENU", description="Colormap of the activations")
    across = b.add_input("Across Network", "BOOLEAN", False,
                         description="Normalize by the whole network's range instead of each layer's")
    show_importance, class_count = _importance_inputs(b)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    low, high = _activation_range(b, points, across)
    value = b.node("ShaderNodeMapRange", {"Value": b.attribute("activation"), "From Min": low, "From Max": high},
                   clamp=True).outputs["Result"]
    color = _with_importance(b, _colormap(b, value, ensure_activation_colormap(), colormap), show_importance,
                             class_count)
    colored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": points, "Name": CELL_COLOR, "Value": color},
                     data_type="FLOAT_COLOR", domain="POINT")
    hidden = b.math("LESS_THAN", b.attribute("cell_scale"), 1e-6)
    shown = b.node("GeometryNodeDeleteGeometry", {"Geometry": colored.outputs[0], "Selection": hidden},
                   domain="POINT")
    size = b.math("MULTIPLY", b.math("MULTIPLY", b.attribute("cell_pitch"), b.attribute("cell_scale")),
                  b.math("SUBTRACT", 1.0, cell_gap))
    tilted = b.combine_xyz(0.0, b.attribute("cell_tilt"), 0.0)
    b.set_outputs(Mesh=facing_quads(b, shown.outputs[0], size, material, rotation=tilted))


def without_layout_attributes(b, geometry):
    """``geometry`` without the attributes that only placed the cells.

    Every drawn part must drop them: joining parts gives every vertex the
    union of their attributes, so one part that keeps them costs them all.
    """
    for pattern in LAYOUT_ONLY_PATTERNS:
        inputs = {"Geometry": geometry, "Name": pattern}
        if "*" in pattern:
            inputs["Pattern Mode"] = "Wildcard"
        geometry = b.node("GeometryNodeRemoveAttribute", inputs).outputs[0]
    return geometry


def facing_quads(b, points, size, material, selection=None, rotation=None):
    """A square of ``size`` facing the view on every (selected) point: instances of one quad with ``material``.

    Instances, not realized: the quads' attributes live once per instance
    instead of on four vertices each, which at VGG scale (15 million cells)
    turns 35 s and 16 GB into 4.5 s and 4 GB (measured). Materials read the
    attributes through the instancer; the network tree realizes everything for
    final renders (its Realize in Render input). The attributes that only
    placed the cells are dropped before instancing, so no instance carries them.
    ``rotation`` (Euler angles) turns each quad after it faces the view.
    """
    # Size and selection may read the layout attributes, so they are captured before those go.
    captured = b.node("GeometryNodeCaptureAttribute", domain="POINT")
    captured.capture_items.new("FLOAT", "Size")
    b.set_input(captured, "Geometry", points)
    b.set_input(captured, "Value", size)
    inputs = {"Scale": captured.outputs["Attribute"]}
    if selection is not None:
        captured.capture_items.new("BOOLEAN", "Shown")
        b.set_input(captured, "Value_1", selection)
        inputs["Selection"] = captured.outputs["Attribute_1"]
    if rotation is not None:
        captured.capture_items.new("VECTOR", "Rotation")
        b.set_input(captured, f"Value_{len(captured.capture_items) - 1}", rotation)
        inputs["Rotation"] = captured.outputs[f"Attribute_{len(captured.capture_items) - 1}"]
    quad = b.node("GeometryNodeMeshGrid", {"Size X": 1.0, "Size Y": 1.0, "Vertices X": 2, "Vertices Y": 2})
    facing = b.node("GeometryNodeTransform", {"Geometry": quad.outputs["Mesh"], "Rotation": QUAD_FACING_VIEW})
    painted = b.node("GeometryNodeSetMaterial", {"Geometry": facing.outputs[0], "Material": material})
    inputs.update({"Points": without_layout_attributes(b, captured.outputs["Geometry"]),
                   "Instance": painted.outputs[0]})
    return b.node("GeometryNodeInstanceOnPoints", inputs).outputs[0]


def _build_connections(b):
    """Curves from the cell ``source_cell`` to ``target_cell``, bundled, colored and thickened by weight.

    A curve's points lie evenly along the straight line between its two cells
    plus ``bundle_offset`` (lateral, computed at Cell Size 1) scaled by the
    Bundling Strength and the Cell Size: 0 draws straight lines, 1 the bundles.
    Both ends have no offset, so curves always start and end at their neurons.
    A highlighted neuron keeps its own edges bright and dims the others.
    """
    b.tree.description = "Draws the connections between placed cells, straight or bundled"
    curves = b.add_input("Curves", "GEOMETRY")
    cells = b.add_input("Cells", "GEOMETRY")
    radius = b.add_input("Edge Radius", "FLOAT", 0.04, 0.0, description="Radius of the strongest edge")
    colormap = b.add_input("Colormap", "MENU", description="Diverging colormap of the weights")
    bundling = b.add_input("Bundling Strength", "FLOAT", 1.0, 0.0, 1.0,
                           description="0 = straight lines, 1 = fully bundled")
    cell_size = b.add_input("Cell Size", "FLOAT", 1.0, 0.001)
    highlight = b.add_input("Highlight Neuron", "INT", -1, -1,
                            description="Cell index of a neuron whose edges stay bright (-1: none)")
    dimming = b.add_input("Dimmed Brightness", "FLOAT", 0.12, 0.0, 1.0,
                          description="Brightness of the other edges while a neuron is highlighted")
    show_importance, class_count = _importance_inputs(b)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Curves", "GEOMETRY")

    position = b.node("GeometryNodeInputPosition").outputs[0]

    def cell_position(index_attribute):
        return b.node("GeometryNodeSampleIndex", {"Geometry": cells, "Value": position,
                                                  "Index": b.attribute(index_attribute, "INT")},
                      data_type="FLOAT_VECTOR", domain="POINT").outputs[0]

    # The points' share of the way by index, not by length: bundled curves are not straight.
    point_index = b.node("GeometryNodeSplineParameter").outputs["Index"]
    point_count = b.node("GeometryNodeSplineLength").outputs["Point Count"]
    factor = b.math("DIVIDE", point_index, b.math("MAXIMUM", b.math("SUBTRACT", point_count, 1.0), 1.0))
    straight = b.node("ShaderNodeMix", {"Factor": factor, "A": cell_position("source_cell"),
                                        "B": cell_position("target_cell")}, data_type="VECTOR").outputs["Result"]
    offset = b.vector_math("SCALE", b.attribute("bundle_offset", "FLOAT_VECTOR"), b.math("MULTIPLY", bundling, cell_size))
    placed = b.node("GeometryNodeSetPosition", {"Geometry": curves, "Position": b.vector_math("ADD", straight, offset)})

    weight, weight_max = b.attribute("weight"), b.attribute("weight_max")
    signed = b.node("ShaderNodeMapRange", {"Value": weight, "From Min": b.math("MULTIPLY", weight_max, -1.0),
                                           "From Max": weight_max}, clamp=True).outputs["Result"]
    touches = b.node("FunctionNodeBooleanMath", {
        0: b.compare_int(b.attribute("source_cell", "INT"), highlight),
        1: b.compare_int(b.attribute("target_cell", "INT"), highlight)}, operation="OR").outputs[0]
    nothing_highlighted = b.compare_int(highlight, 0, "LESS_THAN")
    lit = b.node("FunctionNodeBooleanMath", {0: touches, 1: nothing_highlighted}, operation="OR").outputs[0]
    brightness = b.node("GeometryNodeSwitch", {"Switch": lit, "False": dimming, "True": 1.0},
                        input_type="FLOAT").outputs[0]
    weight_color = _with_importance(b, _colormap(b, signed, ensure_weight_colormap(), colormap), show_importance,
                                    class_count)
    color = b.vector_math("SCALE", weight_color, brightness)
    colored = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": placed.outputs[0], "Name": EDGE_COLOR,
                                                         "Value": color}, data_type="FLOAT_COLOR", domain="CURVE")
    strength = b.math("DIVIDE", b.math("ABSOLUTE", weight), weight_max)
    thickness = b.math("MULTIPLY", b.math("MULTIPLY", radius, b.math("MULTIPLY_ADD", strength, 0.8, 0.2)),
                       b.math("MAXIMUM", brightness, 0.5))
    thick = b.node("GeometryNodeSetCurveRadius", {"Curve": colored.outputs[0], "Radius": thickness})
    shaded = b.node("GeometryNodeSetMaterial", {"Geometry": thick.outputs[0], "Material": material})
    b.set_outputs(Curves=shaded.outputs[0])


def text_mesh(b, text, size, align_x, align_y, anchor, material, facing=FACE_NETWORK_VIEW):
    """Filled text turned by ``facing`` (default: to face the network's view), its alignment point at ``anchor``."""
    curves = b.node("GeometryNodeStringToCurves", {"String": text, "Size": size, "Align X": align_x,
                                                   "Align Y": align_y})
    # Filled before realizing: each distinct glyph is an instance reference and is filled once, not per letter.
    glyphs = b.node("GeometryNodeFillCurve", {"Curve": curves.outputs["Curve Instances"]}).outputs[0]
    mesh = b.node("GeometryNodeRealizeInstances", {"Geometry": glyphs}).outputs[0]
    placed = b.node("GeometryNodeTransform", {"Geometry": mesh, "Rotation": facing, "Translation": anchor})
    return b.node("GeometryNodeSetMaterial", {"Geometry": placed.outputs[0], "Material": material}).outputs[0]


def _build_layer_label(b):
    """A layer's name and shape, centred under its cells wherever the layout put them."""
    b.tree.description = "Text under one layer"
    cells = b.add_input("Cells", "GEOMETRY")
    layer = b.add_input("Layer", "INT", 0, 0)
    text = b.add_input("Text", "STRING")
    size = b.add_input("Size", "FLOAT", 2.0, 0.0)
    margin = b.add_input("Margin", "FLOAT", 1.5, 0.0)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    in_layer = b.compare_int(b.attribute("layer", "INT"), layer)
    position = b.node("GeometryNodeInputPosition").outputs[0]
    stats = b.node("GeometryNodeAttributeStatistic", {"Geometry": cells, "Selection": in_layer,
                                                      "Attribute": position}, data_type="FLOAT_VECTOR")
    centre = b.separate_xyz(stats.outputs["Mean"])
    lowest = b.separate_xyz(stats.outputs["Min"])
    anchor = b.combine_xyz(centre["X"], centre["Y"], b.math("SUBTRACT", lowest["Z"], margin))
    b.set_outputs(Mesh=text_mesh(b, text, size, "Center", "Top", anchor, material))


def _build_neuron_label(b):
    """Text beside one cell (a class name beside its output neuron); Size and Offset are in cell pitches."""
    b.tree.description = "Text beside one cell"
    cells = b.add_input("Cells", "GEOMETRY")
    cell = b.add_input("Cell", "INT", 0, 0)
    text = b.add_input("Text", "STRING")
    size = b.add_input("Size", "FLOAT", 0.8, 0.0)
    offset = b.add_input("Offset", "FLOAT", 0.8, 0.0)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    position = b.node("GeometryNodeInputPosition").outputs[0]
    centre = b.node("GeometryNodeSampleIndex", {"Geometry": cells, "Value": position, "Index": cell},
                    data_type="FLOAT_VECTOR", domain="POINT").outputs[0]
    pitch = b.node("GeometryNodeSampleIndex", {"Geometry": cells, "Value": b.attribute("cell_pitch"),
                                               "Index": cell}, data_type="FLOAT", domain="POINT").outputs[0]
    size = b.math("MULTIPLY", size, pitch)
    anchor = b.vector_math("ADD", centre, b.combine_xyz(0.0, b.math("MULTIPLY", b.math("MULTIPLY", offset, pitch),
                                                                     -1.0), 0.0))
    b.set_outputs(Mesh=text_mesh(b, text, size, "Left", "Middle", anchor, material))


LEGEND_STEPS = 24


def _build_legend(b):
    """A color bar of the activation colormap with its range, under the input layer."""
    b.tree.description = "What the cell colors mean"
    cells = b.add_input("Cells", "GEOMETRY")
    colormap = b.add_input("Colormap", "MENU")
    across = b.add_input("Across Network", "BOOLEAN", False)
    size = b.add_input("Size", "FLOAT", 2.0, 0.0, description="Height of the legend's text")
    drop = b.add_input("Drop", "FLOAT", 6.5, 0.0,
                       description="How far below the input layer the bar stands, in text heights (room for its label)")
    show_importance = b.add_input("Show Importance", "FLOAT", 0.0, 0.0, 1.0)
    importance_title = b.add_input("Importance Title", "STRING",
                                   description="What the colors mean while importance is shown")
    cell_material = b.add_input("Cell Material", "MATERIAL")
    label_material = b.add_input("Label Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    first_layer = b.compare_int(b.attribute("layer", "INT"), 0)
    position = b.node("GeometryNodeInputPosition").outputs[0]
    stats = b.node("GeometryNodeAttributeStatistic", {"Geometry": cells, "Selection": first_layer,
                                                      "Attribute": position}, data_type="FLOAT_VECTOR")
    centre, lowest = b.separate_xyz(stats.outputs["Mean"]), b.separate_xyz(stats.outputs["Min"])
    step = b.math("MULTIPLY", size, 0.6)
    half_length = b.math("MULTIPLY", step, (LEGEND_STEPS - 1) / 2)
    # Below the input layer's own label.
    bar_z = b.math("SUBTRACT", lowest["Z"], b.math("MULTIPLY", size, drop))
    # The bar runs along -Y, left to right as the network is seen.
    start = b.combine_xyz(centre["X"], b.math("ADD", centre["Y"], half_length), bar_z)
    end = b.combine_xyz(centre["X"], b.math("SUBTRACT", centre["Y"], half_length), bar_z)
    line = b.node("GeometryNodeMeshLine", {"Count": LEGEND_STEPS, "Start Location": start,
                                           "Offset": b.combine_xyz(0.0, b.math("MULTIPLY", step, -1.0), 0.0)},
                  mode="OFFSET")
    factor = b.math("DIVIDE", b.node("GeometryNodeInputIndex").outputs[0], LEGEND_STEPS - 1)
    # While importance is shown the bar is a brightness ramp: importance is drawn as brightness in a class's hue.
    bar_color = b.node("ShaderNodeMix", {"Factor": show_importance}, data_type="RGBA")
    bar_sockets = {socket.identifier: socket for socket in (*bar_color.inputs, *bar_color.outputs)}
    b.link(_colormap(b, factor, ensure_activation_colormap(), colormap), bar_sockets["A_Color"])
    b.link(b.combine_xyz(factor, factor, factor), bar_sockets["B_Color"])
    colored = b.node("GeometryNodeStoreNamedAttribute", {
        "Geometry": line.outputs[0], "Name": CELL_COLOR, "Value": bar_sockets["Result_Color"]},
        data_type="FLOAT_COLOR", domain="POINT")
    # Layer -1: the legend's quads share the cells' material but belong to no layer.
    unlayered = b.node("GeometryNodeStoreNamedAttribute", {"Geometry": colored.outputs[0], "Name": "layer",
                                                           "Value": -1}, data_type="INT", domain="POINT")
    bar = facing_quads(b, unlayered.outputs[0], step, cell_material)

    low, high = _activation_range(b, cells, across)

    def number_or(text, value):
        """``value`` written out when normalized across the network, else ``text`` (ranges differ per layer)."""
        written = b.node("FunctionNodeValueToString", {"Value": value, "Decimals": 2}).outputs[0]
        return b.node("GeometryNodeSwitch", {"Switch": across, "False": text, "True": written},
                      input_type="STRING").outputs[0]

    gap = b.combine_xyz(0.0, step, 0.0)
    title = b.node("GeometryNodeSwitch", {"Switch": across, "False": "activation, each layer from 0 to its maximum",
                                          "True": "activation, whole network"}, input_type="STRING").outputs[0]
    title = b.node("GeometryNodeSwitch", {"Switch": b.math("GREATER_THAN", show_importance, 0.5), "False": title,
                                          "True": importance_title}, input_type="STRING").outputs[0]
    texts = [
        text_mesh(b, number_or("0", low), size, "Right", "Middle", b.vector_math("ADD", start, gap), label_material),
        text_mesh(b, number_or("max", high), size, "Left", "Middle", b.vector_math("SUBTRACT", end, gap),
              label_material),
        text_mesh(b, title, b.math("MULTIPLY", size, 0.8), "Center", "Bottom",
              b.combine_xyz(centre["X"], centre["Y"], b.math("ADD", bar_z, size)), label_material),
    ]
    join = b.node("GeometryNodeJoinGeometry")
    for part in reversed([bar, *texts]):
        b.link(part, join.inputs[0])
    b.set_outputs(Mesh=join.outputs[0])
