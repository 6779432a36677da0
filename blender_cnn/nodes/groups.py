"""The reusable Geometry Nodes groups of a network scene, built in code.

Each group reads the attributes the builder wrote (see ``core/cells.py`` and
``core/attributes.py``) and computes positions and looks from its inputs, so
a user can change layout and style on the modifier and keyframe them.
``ensure_group`` rebuilds a group in place whenever the code that builds it
changes.
"""

import math

from ..core import attributes, colormaps
from ..core.attributes import CELL_COLOR, EDGE_COLOR
from .builder import ensure_group

CELL_LAYOUT = "BCNN Cell Layout"
FEATURE_MAPS = "BCNN Feature Maps"
CONNECTIONS = "BCNN Connections"
# Attributes that only place and color the cells (those named, and on networks built before the layer table:
# map_rows, map_cols, act_low, act_high), as few patterns as remove them: a node each, and big trees are slow to
# build. The drawn quads do without them.
LAYOUT_ONLY_PATTERNS = (
    "map_*",
    "act_*",
    "importance_row",
    "importance",
    "importance_class",
    "channels",
    "is_neuron",
    "cell_pitch",
    "cell_scale",
    "cell_tilt",
    # Every epoch's and sample's values (core/attributes.py's families): "activation" holds the ones shown. At VGG
    # scale each one cost 57 MB on the instances.
    "activation_e*",
    # The same of the pooling winners, and the one shown ("winner_cell"): only the operations read it, on the cells.
    "winner_cell*",
)
# What a cell's color is computed from besides its activation and layer: its layer's range on networks built before
# the layer table, the importance while it is shown. They ride along onto the cells' quads, where the color is
# computed, and are dropped there.
COLOR_INPUTS = ("act_*", "importance", "importance_class")
# A map folded all the way (Map Fold 1) has its rows tilted this far from the wall, alternately forward and back.
MAP_FOLD_ANGLE = math.radians(80.0)
LAYER_LABEL = "BCNN Layer Label"
LEGEND = "BCNN Legend"
ACTIVATION_COLORMAP = "BCNN Activation Colormap"
WEIGHT_COLORMAP = "BCNN Weight Colormap"
NEURON_LABEL = "BCNN Neuron Label"

# Quads and text are made in the XY plane; this turns them to face -X, the side
# the network is looked at from, with text reading along -Y (left to right on screen).
FACE_NETWORK_VIEW = (math.pi / 2, 0.0, -math.pi / 2)
QUAD_FACING_VIEW = (0.0, -math.pi / 2, 0.0)
# Points per Bezier segment of a glyph's outline when text is filled (Blender's text object uses 12).
GLYPH_RESOLUTION = 6
# Points per segment of a connection curve in the viewport; final renders keep Blender's 12. The curves have 8 to 24
# points already, and at 12 the demo's 8,512 curves were 2.4 million evaluated points a frame: about half of a
# frame change's time. At 4 the drawn line stays within 0.09 (a tenth of a cell) of the one at 12 (issue 18).
VIEWPORT_CURVE_RESOLUTION = 4
RENDER_CURVE_RESOLUTION = 12


def ensure_cell_layout():
    return ensure_group(CELL_LAYOUT, _build_cell_layout)


def ensure_feature_maps():
    return ensure_group(FEATURE_MAPS, _build_feature_maps)


def ensure_legend():
    return ensure_group(LEGEND, _build_legend)


def ensure_connections():
    return ensure_group(CONNECTIONS, _build_connections)


def ensure_layer_label():
    return ensure_group(LAYER_LABEL, _build_layer_label)


def ensure_neuron_label():
    return ensure_group(NEURON_LABEL, _build_neuron_label)


def _build_cell_layout(b):
    """Cell centres: layers along +X, each layer's maps on a wall facing -X, in a line, a circle or a grid.

    Map Layout morphs continuously: 0 = line (across the wall, or along the
    network as Line Direction goes to 1), 1 = circle, 2 = grid. Fold collapses
    a layer's maps into its summary map (mean or max over channels). Filter
    Spread scales every map's offset from its layer's centre; Stack lines the
    maps up one behind another there instead, a cell apart; Reduced Depth caps
    the maps shown. Map Layout, Line Direction, Fold, Channels Shown and Stack
    are fields, so each layer can have its own.
    Map Fold folds each map like a paper concertina: its rows tilt
    alternately forward and back about the hinges between them, so the map
    shrinks in height. Stores ``cell_pitch`` (distance between neighbouring
    cells of the layer), ``cell_scale`` (how much of the cell is shown: 0 =
    hidden) and ``cell_tilt`` (the row's angle about the wall's horizontal axis).
    Its Maps output holds one point per map with its ``layer`` and the extent of its cells (``extent_low``,
    ``extent_high``): what the labels are placed by.
    """
    b.tree.description = "Places every cell from its layer, channel, row and column"
    geometry = b.add_input("Geometry", "GEOMETRY")
    spacing = b.add_input("Layer Spacing", "FLOAT", 40.0, 0.0, description="Distance between layers")
    gap = b.add_input("Map Gap", "FLOAT", 2.0, 0.0, description="Space between the maps of a layer")
    cell_size = b.add_input("Cell Size", "FLOAT", 1.0, 0.001, description="Distance between neighbouring cells")
    neuron_scale = b.add_input(
        "Neuron Scale", "FLOAT", 2.5, 0.01, description="Size of dense-layer neurons relative to feature-map cells"
    )
    layout = b.add_input(
        "Map Layout",
        "FLOAT",
        2.0,
        0.0,
        2.0,
        description="0 = maps in a line, 1 = on a circle, 2 = in a grid; between: a blend",
    )
    direction = b.add_input(
        "Line Direction",
        "FLOAT",
        0.0,
        0.0,
        1.0,
        description="Where the line of maps runs: 0 = across the wall, 1 = along the network",
    )
    fold = b.add_input(
        "Fold", "FLOAT", 0.0, 0.0, 1.0, description="0 = every channel's map, 1 = one summary map of the layer"
    )
    shown = b.add_input("Channels Shown", "INT", 0, 0, description="Show the first N channels (0: all)")
    reduced_depth = b.add_input(
        "Reduced Depth", "INT", 0, 0, description="Show at most N channels of every layer (0: all)"
    )
    filter_spread = b.add_input(
        "Filter Spread",
        "FLOAT",
        1.0,
        0.0,
        description="Scales each map's offset from its layer's centre: 0 = stacked there, 1 = as the layout places them",
    )
    stack = b.add_input(
        "Stack",
        "FLOAT",
        0.0,
        0.0,
        1.0,
        description="0 = the maps where the layout places them, 1 = one behind another at the layer's centre",
    )
    map_fold = b.add_input(
        "Map Fold",
        "FLOAT",
        0.0,
        0.0,
        1.0,
        description="0 = each map flat, 1 = each map folded like a concertina along its rows",
    )
    fold_to_max = b.add_input(
        "Fold to Max",
        "BOOLEAN",
        False,
        description="The summary map shows the maximum over channels instead of the mean",
    )
    layer_table = b.add_input(
        "Layer Table",
        "GEOMETRY",
        description="One point per layer with its maps' shape (core/cells.py), origin and visibility "
        "(nodes/graph.py); without it, layers stand in one row Layer Spacing apart",
    )
    b.add_output("Geometry", "GEOMETRY")
    b.add_output("Maps", "GEOMETRY")

    inputs = {
        "spacing": spacing,
        "gap": gap,
        "cell_size": cell_size,
        "neuron_scale": neuron_scale,
        "layout": layout,
        "direction": direction,
        "fold": fold,
        "shown": shown,
        "reduced_depth": reduced_depth,
        "filter_spread": filter_spread,
        "stack": stack,
        "map_fold": map_fold,
        "fold_to_max": fold_to_max,
        "layer_table": layer_table,
    }
    # Everything but a cell's row and column is the same for all cells of its map: worked out once per map, on a
    # point of its own, and looked up by each cell. Worked out on every cell, it took a third of VGG16's evaluation
    # (15 million cells, 4,200 maps). A network built before the layer table held the maps' shapes works it out on
    # every cell, as before.
    placed = _map_placement(b, inputs)
    # Three vectors, as each cell looks them up: a lookup checks every cell's index, which cost more than the lookup.
    per_map = {
        "corner": placed["corner"],
        "steps": b.combine_xyz(placed["step_across"], placed["step_down"], placed["pitch"]),
        "look": b.combine_xyz(placed["scale"], placed["tilt"], 0.0),
    }
    with b.frame("One point per map: each layer's channels and its two summary maps, as the layer table lists them"):
        maps, map_index = _maps(b, layer_table)
        maps, on_map = b.capture(maps, {name: ("VECTOR", field) for name, field in per_map.items()})
    has_maps = _in_table(b, layer_table, "channels")
    placement = {
        name: b.switch("VECTOR", has_maps, field, b.sample_index(maps, on_map[name], map_index, clamp=True))
        for name, field in per_map.items()
    }

    def from_first(corner, col, row, step_across, step_down):
        """The centre of the cell ``col`` columns and ``row`` rows on from the map's first cell, at ``corner``."""
        return b.vector_subtract(corner, b.combine_xyz(0.0, b.multiply(col, step_across), b.multiply(row, step_down)))

    with b.frame("Each map's extent: its first cell and its last row's, what labels are placed by"):
        last_col = b.subtract(layer_value(b, layer_table, "map_cols"), 1.0)
        last_row = b.subtract(layer_value(b, layer_table, "map_rows"), 1.0)
        extents = b.store(maps, "extent_high", on_map["corner"])
        steps = b.separate_xyz(on_map["steps"])
        low = from_first(on_map["corner"], last_col, last_row, steps["X"], steps["Y"])
        extents = b.store(extents, "extent_low", low)

    with b.frame("Placed: the map's top-left cell less the cell's row and column; pitch, scale and tilt stored"):
        row, col = b.attribute("row"), b.attribute("col")
        steps, look = b.separate_xyz(placement["steps"]), b.separate_xyz(placement["look"])
        geometry = b.set_position(geometry, from_first(placement["corner"], col, row, steps["X"], steps["Y"]))
        # Map Fold tilts the rows alternately forward and back.
        tilt = b.multiply(look["Y"], b.subtract(1.0, b.multiply(b.modulo(row, 2.0), 2.0)))
        for name, value in (("cell_pitch", steps["Z"]), ("cell_scale", look["X"]), ("cell_tilt", tilt)):
            geometry = b.store(geometry, name, value)
    # Without maps each cell is its own extent.
    cell_extents = b.store(b.store(geometry, "extent_low", b.position()), "extent_high", b.position())
    b.set_outputs(Geometry=geometry, Maps=b.switch("GEOMETRY", has_maps, cell_extents, extents))


def _maps(b, layer_table):
    """One point per map (``channels`` + 2 per row of the layer table: its mean and its max summary map, then its
    channels) with the ``layer``, ``channel`` and ``is_summary`` its cells have, and each cell's map: its index
    there."""
    per_layer = b.int_add(b.attribute("channels"), 2)
    starts = b.node("GeometryNodeAccumulateField", {"Value": per_layer}, data_type="INT", domain="POINT")
    table, first = b.capture(
        b.store(layer_table, "layer", b.index()), {"First Map": ("INT", starts.outputs["Trailing"])}
    )
    duplicated = b.node("GeometryNodeDuplicateElements", {"Geometry": table, "Amount": per_layer}, domain="POINT")
    copy = duplicated.outputs["Duplicate Index"]
    is_summary = b.switch("INT", b.compare(copy, "<", 2), 0, b.int_add(copy, 1))
    maps = b.store(duplicated.outputs["Geometry"], "is_summary", is_summary)
    maps = b.store(maps, "channel", b.int_maximum(b.int_subtract(copy, 2), 0))
    # A cell's map: its summary's (1 or 2) less one, or its channel's after the two. Summary cells have channel 0,
    # so it is channel + 2 + summary - 3 * min(summary, 1): integer steps, no lookup of the layer's channels.
    summary = b.attribute("is_summary")
    within = b.int_add(
        b.int_add(b.attribute("channel"), 2), b.int_subtract(summary, b.int_multiply(b.int_minimum(summary, 1), 3))
    )
    map_index = b.int_add(b.sample_index(table, first["First Map"], b.attribute("layer"), clamp=True), within)
    return maps, map_index


def _map_placement(b, inputs):
    """``{name: field}``: where a map stands and how its cells are drawn, from ``layer``, ``channel`` and
    ``is_summary`` (a map's, or a cell's) and ``_build_cell_layout``'s ``inputs``.

    ``corner`` is the centre of the map's first cell (row 0, column 0); ``step_across`` and ``step_down`` take a cell
    one column and one row on; ``pitch``, ``scale`` and ``tilt`` are its cells' ``cell_pitch``, ``cell_scale`` and
    the angle their rows tilt by (``cell_tilt`` but for its sign, which alternates by row).
    """
    layer_table = inputs["layer_table"]
    layer, channel = b.attribute("layer"), b.attribute("channel")
    map_rows, map_cols = layer_value(b, layer_table, "map_rows"), layer_value(b, layer_table, "map_cols")
    channels, is_neuron = layer_value(b, layer_table, "channels"), layer_value(b, layer_table, "is_neuron")
    # Summary cells: 1 = the mean map, 2 = the max map; Fold to Max picks which one a fold shows.
    summary_kind = b.attribute("is_summary")
    is_summary = b.minimum(summary_kind, 1.0)
    gap, fold = inputs["gap"], inputs["fold"]

    def centred(index, count):
        """index - (count - 1) / 2: position of ``index`` among ``count`` centred on zero."""
        return b.subtract(index, b.multiply(b.subtract(count, 1.0), 0.5))

    with b.frame("Cell pitch, channels shown, map size"):
        # cell_size * (1 + is_neuron * (neuron_scale - 1)): neurons get the larger pitch.
        cell = b.multiply(inputs["cell_size"], b.multiply_add(is_neuron, b.subtract(inputs["neuron_scale"], 1.0), 1.0))
        # Channels shown: all when the input is 0, else at most that many; Reduced Depth caps every layer alike.
        shown, reduced_depth = inputs["shown"], inputs["reduced_depth"]
        visible_channels = b.minimum(channels, b.multiply_add(b.less_than(shown, 0.5), channels, shown))
        visible_channels = b.minimum(
            visible_channels, b.multiply_add(b.less_than(reduced_depth, 0.5), channels, reduced_depth)
        )
        map_width = b.multiply(map_cols, cell)
        map_height = b.multiply(map_rows, cell)
        map_pitch = b.add(map_width, gap)
    # The map centre in each layout (X along the network, -Y across the wall, Z up).
    with b.frame("Maps in a line: across the wall or along the network"):
        along_line = centred(channel, visible_channels)
        across = b.combine_xyz(0.0, b.multiply(along_line, b.negate(map_pitch)), 0.0)
        lengthwise = b.combine_xyz(b.multiply(along_line, b.multiply(map_pitch, 0.5)), 0.0, 0.0)
        line = b.mix(inputs["direction"], across, lengthwise, "VECTOR")
    with b.frame("Maps on a circle"):
        angle = b.multiply(b.divide(channel, visible_channels), 2 * math.pi)
        radius = b.multiply(
            b.divide(b.multiply(visible_channels, b.add(b.maximum(map_width, map_height), gap)), 2 * math.pi),
            b.greater_than(visible_channels, 1.5),
        )
        circle = b.combine_xyz(0.0, b.multiply(b.sine(angle), b.negate(radius)), b.multiply(b.cosine(angle), radius))
    with b.frame("Maps in a grid"):
        grid_cols = b.ceil(b.sqrt(visible_channels))
        grid_rows = b.ceil(b.divide(visible_channels, grid_cols))
        grid = b.combine_xyz(
            0.0,
            b.multiply(centred(b.modulo(channel, grid_cols), grid_cols), b.negate(map_pitch)),
            b.multiply(centred(b.floor(b.divide(channel, grid_cols)), grid_rows), b.negate(b.add(map_height, gap))),
        )
    with b.frame("Map Layout morphs line, circle, grid; Filter Spread, Stack and Fold pull the maps in"):
        line_to_circle = b.clamp(inputs["layout"], 0.0, 1.0)
        circle_to_grid = b.clamp(b.subtract(inputs["layout"], 1.0), 0.0, 1.0)
        map_centre = b.mix(circle_to_grid, b.mix(line_to_circle, line, circle, "VECTOR"), grid, "VECTOR")
        # A stack stands along the network so no two maps share a plane (coplanar quads flicker in renders).
        stacked = b.combine_xyz(b.multiply(centred(channel, visible_channels), cell), 0.0, 0.0)
        map_centre = b.mix(inputs["stack"], b.scale(map_centre, inputs["filter_spread"]), stacked, "VECTOR")
        # Folding pulls the maps into the layer's centre, where the summary map grows; summary maps stay there.
        # Hidden channels wait there too, so that labels and the camera frame only what is shown.
        channel_shown = b.less_than(channel, visible_channels)
        spread = b.multiply(b.multiply(b.subtract(1.0, fold), b.subtract(1.0, is_summary)), channel_shown)
        map_centre = b.scale(map_centre, spread)

    with b.frame("Map Fold tilts the rows"):
        # Folded rows keep their width but stand closer: each one's height on the wall shrinks by cos(tilt).
        tilt_angle = b.multiply(inputs["map_fold"], MAP_FOLD_ANGLE)
        row_pitch = b.multiply(cell, b.cosine(tilt_angle))

    with b.frame("The layer's origin: from the graph's table, else in one row"):
        in_row = b.combine_xyz(b.multiply(layer, inputs["spacing"]), 0.0, 0.0)
        # The table is a mesh of loose points (scene/network.py); a network built before graphs has none.
        has_table = b.compare(b.point_count(layer_table), ">", 0)

        def from_table(name, kind, fallback):
            return b.switch(
                kind, has_table, fallback, b.sample_index(layer_table, b.attribute(name), layer, clamp=True)
            )

        layer_origin = from_table("origin", "VECTOR", in_row)
        # Units inside a collapsed block gather into its place (visible 0) and grow out as it expands.
        visible = from_table("visible", "FLOAT", 1.0)

    with b.frame("The map's first cell; its cells' pitch, scale and tilt"):
        step_across, step_down = b.multiply(cell, visible), b.multiply(row_pitch, visible)
        # The first cell is half the map's width and height from its centre, to the left and up.
        to_first = b.combine_xyz(
            0.0,
            b.multiply(b.subtract(map_cols, 1.0), b.multiply(cell, 0.5)),
            b.multiply(b.subtract(map_rows, 1.0), b.multiply(row_pitch, 0.5)),
        )
        corner = b.vector_add(layer_origin, b.scale(b.vector_add(map_centre, to_first), visible))
        wanted_summary = b.compare(summary_kind, "==", b.add(inputs["fold_to_max"], 1.0))
        scale = b.mix(is_summary, b.multiply(b.subtract(1.0, fold), channel_shown), b.multiply(fold, wanted_summary))
        scale = b.multiply(scale, visible)
    return {
        "corner": corner,
        "step_across": step_across,
        "step_down": step_down,
        "pitch": cell,
        "scale": scale,
        "tilt": tilt_angle,
    }


def ensure_activation_colormap():
    return ensure_group(ACTIVATION_COLORMAP, _build_activation_colormap)


def ensure_weight_colormap():
    return ensure_group(WEIGHT_COLORMAP, _build_weight_colormap)


def _build_activation_colormap(b):
    _build_colormap(b, colormaps.ACTIVATION_COLORMAPS)


def _build_weight_colormap(b):
    _build_colormap(b, colormaps.WEIGHT_COLORMAPS)


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


def layer_value(b, table, name):
    """The cell's layer's ``name`` (one of ``core/cells.py``'s LAYER_COLUMNS), from the layer table's row ``layer``.

    A network built before the table held them carries them on every cell, and reads them there. Which one is
    decided once, not per cell: a Switch on a single value evaluates only the side it passes on.
    """
    kind = attributes.spec(name).data_type
    return b.switch(
        kind,
        _in_table(b, table, name),
        b.attribute(name),
        b.sample_index(table, b.attribute(name), b.attribute("layer"), clamp=True),
    )


def _in_table(b, table, name):
    return b.greater_than(b.statistic(table, b.attribute_exists(name))["Max"], 0.5)


def _network_range(b, cells, table):
    """(low, high) of the whole network's activations: the least of its layers' lows, the greatest of their highs.

    Taken over the table's rows (one per layer), or the cells of a network built before the table held them.
    """
    in_table = _in_table(b, table, "act_low")
    return tuple(
        b.switch(
            "FLOAT",
            in_table,
            b.statistic(cells, b.attribute(name))[output],
            b.statistic(table, b.attribute(name))[output],
        )
        for name, output in (("act_low", "Min"), ("act_high", "Max"))
    )


def _activation_range(b, cells, table, across_network):
    """(low, high) fields: each cell's layer range, or the whole network's when ``across_network``.

    Chosen by a Switch, which evaluates only the side it passes on: Attribute Statistic sorts all the values
    for a Min or Max (15 million cells at VGG scale), and the Mix it replaced made every evaluation pay that.
    """
    whole_low, whole_high = _network_range(b, cells, table)
    return (
        b.switch("FLOAT", across_network, layer_value(b, table, "act_low"), whole_low),
        b.switch("FLOAT", across_network, layer_value(b, table, "act_high"), whole_high),
    )


def _importance_inputs(b):
    return (
        b.add_input(
            "Show Importance",
            "FLOAT",
            0.0,
            0.0,
            1.0,
            description="0 = colors by activation (weight), 1 = by importance; between, a blend",
        ),
        b.add_input("Class Count", "INT", 1, 1),
    )


def _with_importance(b, color, show, class_count):
    """``color`` blended toward the importance color: the class's hue, as bright as the importance (0..1).

    The class is the one chosen, or with all classes the one each part matters most for, so both views
    give a class the same color (``importance`` and ``importance_class`` from the Importance groups).
    """
    hue = b.divide(b.attribute("importance_class"), class_count)
    importance_color = b.node(
        "FunctionNodeCombineColor", {0: hue, 1: 0.75, 2: b.attribute("importance")}, mode="HSV"
    ).outputs[0]
    # A Switch, so that while importance is not shown its color is not computed for every cell only to be mixed
    # in at 0.
    return b.switch("RGBA", b.greater_than(show, 0.0), color, b.mix(show, color, importance_color, "RGBA"))


def _build_feature_maps(b):
    """One colored quad per cell; color = activation through the colormap, stored as ``cell_color``."""
    b.tree.description = "Turns placed cells into colored quads"
    points = b.add_input("Cells", "GEOMETRY")
    cell_gap = b.add_input("Cell Gap", "FLOAT", 0.1, 0.0, 0.95, description="Share of a cell left empty")
    colormap = b.add_input("Colormap", "MENU", description="Colormap of the activations")
    across = b.add_input(
        "Across Network", "BOOLEAN", False, description="Normalize by the whole network's range instead of each layer's"
    )
    show_importance, class_count = _importance_inputs(b)
    material = b.add_input("Material", "MATERIAL")
    layer_table = b.add_input("Layer Table", "GEOMETRY", description="One point per layer with its activation range")
    b.add_output("Mesh", "GEOMETRY")

    with b.frame("Each shown cell a quad of its pitch and scale, tilted; hidden cells get none"):
        # Left out by the instancing's selection rather than deleted: deleting copies every attribute of every cell.
        shown = b.logical_not(b.less_than(b.attribute("cell_scale"), 1e-6))
        size = b.multiply(b.multiply(b.attribute("cell_pitch"), b.attribute("cell_scale")), b.subtract(1.0, cell_gap))
        quads = facing_quads(b, points, size, material, shown, b.attribute("cell_tilt"), keeping=COLOR_INPUTS)
    with b.frame("Color: activation in its range, through the colormap, toward importance; on the quads"):
        # Computed on the quads, not the cells: stored on the cells, the color was carried over as a second copy
        # (VGG16: 0.2 GB).
        low, high = _activation_range(b, points, layer_table, across)
        value = b.map_range(b.attribute("activation"), low, high)
        color = _with_importance(
            b, _colormap(b, value, ensure_activation_colormap(), colormap), show_importance, class_count
        )
        colored = b.store(quads, CELL_COLOR, color, domain="INSTANCE")
        for pattern in COLOR_INPUTS:
            colored = b.remove_attribute(colored, pattern)
    b.set_outputs(Mesh=colored)


def without_layout_attributes(b, geometry, keeping=()):
    """``geometry`` without the attributes that only placed the cells (but those of the patterns ``keeping``).

    Every drawn part must drop them: joining parts gives every vertex the
    union of their attributes, so one part that keeps them costs them all.
    """
    for pattern in LAYOUT_ONLY_PATTERNS:
        if pattern not in keeping:
            geometry = b.remove_attribute(geometry, pattern)
    return geometry


def facing_quads(b, points, size, material, selection=None, tilt=None, keeping=()):
    """A square of ``size`` facing the view on every (selected) point: instances of one quad with ``material``.

    Instances, not realized: the quads' attributes live once per instance
    instead of on four vertices each, which at VGG scale (15 million cells)
    turns 35 s and 16 GB into 4.5 s and 4 GB (measured). Materials read the
    attributes through the instancer; the network tree realizes everything for
    final renders (its Realize in Render input). The attributes that only
    placed the cells are dropped before instancing, so no instance carries them.
    ``tilt`` (an angle) turns each quad about its horizontal axis after it faces the view. ``keeping``: patterns
    of those attributes the quads keep, for the caller to drop after it used them.
    """
    # Size, selection and tilt may read the layout attributes, so they are captured before those go: the tilt as
    # one angle, not the rotation's three (VGG16: 0.1 GB less).
    fields = {"Size": ("FLOAT", size)}
    if selection is not None:
        fields["Shown"] = ("BOOLEAN", selection)
    if tilt is not None:
        fields["Tilt"] = ("FLOAT", tilt)
    points, captured = b.capture(points, fields)
    painted = b.set_material(b.transform(b.grid(1.0, 1.0), rotation=QUAD_FACING_VIEW), material)
    return b.instance_on_points(
        without_layout_attributes(b, points, keeping),
        painted,
        selection=captured.get("Shown"),
        scale=captured["Size"],
        rotation=b.combine_xyz(0.0, captured["Tilt"], 0.0) if tilt is not None else None,
    )


def _build_connections(b):
    """Curves from the cell ``source_cell`` to ``target_cell``, bundled, colored and thickened by weight.

    The bundles are drawn from where the neurons stand now, so every input
    that moves a neuron (Layer Spacing, Neuron Scale, Cell Size, the layouts,
    a graph's rows and blocks) moves and reshapes its curves. Each curve runs
    through the centres of its source group, source cluster, target cluster
    and target group (``core/bundling.py``'s routes): a centre is the mean of
    its neurons' current positions, each neuron once (``bundle_*_share``), and
    a cluster's place is pushed out from its group's centre by ``bundle_spread``
    (a pruned layer's rails).
    Each point mixes them by ``bundle_route``, on the x of the straight line;
    Bundling Strength blends the straight line (0) into the bundle (1).
    Both ends are the neurons themselves at any strength. A highlighted
    neuron keeps its own edges bright and dims the others.
    """
    b.tree.description = "Draws the connections between placed cells, straight or bundled"
    curves = b.add_input("Curves", "GEOMETRY")
    cells = b.add_input("Cells", "GEOMETRY")
    radius = b.add_input("Edge Radius", "FLOAT", 0.04, 0.0, description="Radius of the strongest edge")
    colormap = b.add_input("Colormap", "MENU", description="Diverging colormap of the weights")
    bundling = b.add_input(
        "Bundling Strength", "FLOAT", 1.0, 0.0, 1.0, description="0 = straight lines, 1 = fully bundled"
    )
    highlight = b.add_input(
        "Highlight Neuron", "INT", -1, -1, description="Cell index of a neuron whose edges stay bright (-1: none)"
    )
    dimming = b.add_input(
        "Dimmed Brightness",
        "FLOAT",
        0.12,
        0.0,
        1.0,
        description="Brightness of the other edges while a neuron is highlighted",
    )
    show_importance, class_count = _importance_inputs(b)
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Curves", "GEOMETRY")

    with b.frame("Per curve, once: its neurons where they stand, and the centres of its route"):
        source = b.sample_index(cells, b.position(), b.attribute("source_cell"))
        target = b.sample_index(cells, b.position(), b.attribute("target_cell"))

        def centre(neuron, key, share_name):
            """The share-weighted mean position of the curves' neurons with the same ``key``."""
            share = b.attribute(share_name)
            totals = [
                b.node(
                    "GeometryNodeAccumulateField",
                    {"Value": value, "Group ID": b.attribute(key)},
                    data_type=kind,
                    domain="CURVE",
                ).outputs["Total"]
                for value, kind in ((b.scale(neuron, share), "FLOAT_VECTOR"), (share, "FLOAT"))
            ]
            return b.scale(totals[0], b.divide(1.0, totals[1]))

        source_group = centre(source, "bundle_source_group", "bundle_source_share")
        target_group = centre(target, "bundle_target_group", "bundle_target_share")
        # A rail runs at its cluster's centre pushed out from its group's (the layer's), so rails stay apart.
        spread = b.attribute("bundle_spread")

        def place(cluster, group):
            return b.vector_add(cluster, b.scale(b.vector_subtract(cluster, group), spread))

        curves, route = b.capture(
            curves,
            {
                "Source": ("VECTOR", source),
                "Source Group": ("VECTOR", source_group),
                "Source Cluster": (
                    "VECTOR",
                    place(centre(source, "bundle_source_cluster", "bundle_source_share"), source_group),
                ),
                "Target Cluster": (
                    "VECTOR",
                    place(centre(target, "bundle_target_cluster", "bundle_target_share"), target_group),
                ),
                "Target Group": ("VECTOR", target_group),
                "Target": ("VECTOR", target),
            },
            domain="CURVE",
        )

    with b.frame("Per point: the straight line, the route, blended sideways by Bundling Strength"):
        # The points' share of the way by index, not by length: bundled curves are not straight.
        point_index = b.spline_parameter()["Index"]
        point_count = b.node("GeometryNodeSplineLength").outputs["Point Count"]
        factor = b.divide(point_index, b.maximum(b.subtract(point_count, 1.0), 1.0))
        straight = b.mix(factor, route["Source"], route["Target"], "VECTOR")
        # Before the middle a point's own side is the source's, after it the target's (Routes.point_weights).
        before_middle = b.compare(factor, "<", 0.5, "FLOAT")

        def own(source_side, target_side):
            return b.switch("VECTOR", before_middle, route[target_side], route[source_side])

        weights = b.attribute("bundle_route")
        shares = b.separate_xyz(weights)
        far_share = b.subtract(1.0, b.vector_math("DOT_PRODUCT", weights, (1.0, 1.0, 1.0)))
        routed = b.scale(own("Source", "Target"), shares["X"])
        for place, share in (
            (own("Source Group", "Target Group"), shares["Y"]),
            (own("Source Cluster", "Target Cluster"), shares["Z"]),
            (own("Target Cluster", "Source Cluster"), far_share),
        ):
            routed = b.vector_add(routed, b.scale(place, share))
        # Only sideways: every point keeps the straight line's x, so the curve never doubles back.
        sideways = b.vector_math("MULTIPLY", b.vector_subtract(routed, straight), (0.0, 1.0, 1.0))
        # Curves drawn before routes were stored have none: straight until Draw Connections draws them anew.
        strength = b.switch("FLOAT", b.attribute_exists("bundle_route"), 0.0, bundling)
        placed = b.set_position(curves, b.vector_add(straight, b.scale(sideways, strength)))

    with b.frame("Color by weight; a highlighted neuron's edges stay bright"):
        weight, weight_max = b.attribute("weight"), b.attribute("weight_max")
        signed = b.map_range(weight, b.negate(weight_max), weight_max)
        touches = b.any_of(
            b.compare(b.attribute("source_cell"), "==", highlight),
            b.compare(b.attribute("target_cell"), "==", highlight),
        )
        lit = b.any_of(touches, b.compare(highlight, "<", 0))
        brightness = b.switch("FLOAT", lit, dimming, 1.0)
        weight_color = _with_importance(
            b, _colormap(b, signed, ensure_weight_colormap(), colormap), show_importance, class_count
        )
        colored = b.store(placed, EDGE_COLOR, b.scale(weight_color, brightness))
    with b.frame("Thickness by weight"):
        strength = b.divide(b.absolute(weight), weight_max)
        thickness = b.multiply(b.multiply(radius, b.multiply_add(strength, 0.8, 0.2)), b.maximum(brightness, 0.5))
        thick = b.set_curve_radius(colored, thickness)
    with b.frame("Fewer evaluated points in the viewport"):
        in_viewport = b.node("GeometryNodeIsViewport").outputs[0]
        resolution = b.switch("INT", in_viewport, RENDER_CURVE_RESOLUTION, VIEWPORT_CURVE_RESOLUTION)
        thick = b.node("GeometryNodeSetSplineResolution", {"Geometry": thick, "Resolution": resolution}).outputs[0]
    b.set_outputs(Curves=b.set_material(thick, material))


def filled_glyphs(b, glyphs):
    """String to Curves' glyph outlines filled, each distinct one once, at ``GLYPH_RESOLUTION``.

    Filling is most of a text's cost; at Blender's 12 points per Bezier segment
    the demo's 18 labels took 15 ms of CPU a frame, at 6 they take 9 and look
    the same at 1280x720 (measured, issue 18).
    """
    coarse = b.node("GeometryNodeSetSplineResolution", {"Geometry": glyphs, "Resolution": GLYPH_RESOLUTION})
    return b.node("GeometryNodeFillCurve", {"Curve": coarse.outputs[0]}).outputs[0]


def text_mesh(b, text, size, align_x, align_y, anchor, material, facing=FACE_NETWORK_VIEW):
    """Filled text turned by ``facing`` (default: to face the network's view), its alignment point at ``anchor``."""
    curves = b.node(
        "GeometryNodeStringToCurves", {"String": text, "Size": size, "Align X": align_x, "Align Y": align_y}
    )
    # Filled before realizing: each distinct glyph is an instance reference and is filled once, not per letter.
    glyphs = filled_glyphs(b, curves.outputs["Curve Instances"])
    return b.set_material(b.transform(b.realize(glyphs), rotation=facing, translation=anchor), material)


def _label_sockets(b, description, anchor, size, gap, gap_default, placed_by="Cells"):
    """A label group's sockets: what it is placed by (``placed_by``: "Cells", or Cell Layout's "Maps"), the
    ``anchor`` index ("Layer", "Cell") it is placed by, the Text, its Size, the ``gap`` ("Margin", "Offset") from the
    anchor and the Material; the output Mesh. Returns the inputs."""
    b.tree.description = description
    inputs = (
        b.add_input(placed_by, "GEOMETRY"),
        b.add_input(anchor, "INT", 0, 0),
        b.add_input("Text", "STRING"),
        b.add_input("Size", "FLOAT", size, 0.0),
        b.add_input(gap, "FLOAT", gap_default, 0.0),
        b.add_input("Material", "MATERIAL"),
    )
    b.add_output("Mesh", "GEOMETRY")
    return inputs


def _centre_and_lowest(b, maps, layer):
    """The middle of layer ``layer``'s cells (X, Y and Z outputs: of the box around them) and their lowest Z, from
    the extents of its ``maps`` (Cell Layout's Maps): a few hundred points, where its cells were millions."""
    in_layer = b.compare(b.attribute("layer"), "==", layer)
    low = b.statistic(maps, b.attribute("extent_low"), in_layer, "FLOAT_VECTOR")["Min"]
    high = b.statistic(maps, b.attribute("extent_high"), in_layer, "FLOAT_VECTOR")["Max"]
    return b.separate_xyz(b.scale(b.vector_add(low, high), 0.5)), b.separate_xyz(low)["Z"]


def _build_layer_label(b):
    """A layer's name and shape, centred under its cells wherever the layout put them."""
    maps, layer, text, size, margin, material = _label_sockets(
        b, "Text under one layer", "Layer", 2.0, "Margin", 1.5, "Maps"
    )

    with b.frame("Under the layer's cells: their middle, below the lowest"):
        centre, lowest = _centre_and_lowest(b, maps, layer)
        anchor = b.combine_xyz(centre["X"], centre["Y"], b.subtract(lowest, margin))
    b.set_outputs(Mesh=text_mesh(b, text, size, "Center", "Top", anchor, material))


def _build_neuron_label(b):
    """Text beside one cell (a class name beside its output neuron); Size and Offset are in cell pitches."""
    cells, cell, text, size, offset, material = _label_sockets(b, "Text beside one cell", "Cell", 0.8, "Offset", 0.8)

    with b.frame("Beside the cell, in its pitch"):
        centre = b.sample_index(cells, b.position(), cell)
        pitch = b.sample_index(cells, b.attribute("cell_pitch"), cell)
        size = b.multiply(size, pitch)
        anchor = b.vector_add(centre, b.combine_xyz(0.0, b.negate(b.multiply(offset, pitch)), 0.0))
    b.set_outputs(Mesh=text_mesh(b, text, size, "Left", "Middle", anchor, material))


LEGEND_STEPS = 24


def _build_legend(b):
    """A color bar of the activation colormap with its range, under the input layer."""
    b.tree.description = "What the cell colors mean"
    cells = b.add_input("Cells", "GEOMETRY")
    colormap = b.add_input("Colormap", "MENU")
    across = b.add_input("Across Network", "BOOLEAN", False)
    size = b.add_input("Size", "FLOAT", 2.0, 0.0, description="Height of the legend's text")
    drop = b.add_input(
        "Drop",
        "FLOAT",
        6.5,
        0.0,
        description="How far below the input layer the bar stands, in text heights (room for its label)",
    )
    show_importance = b.add_input("Show Importance", "FLOAT", 0.0, 0.0, 1.0)
    importance_title = b.add_input(
        "Importance Title", "STRING", description="What the colors mean while importance is shown"
    )
    cell_material = b.add_input("Cell Material", "MATERIAL")
    label_material = b.add_input("Label Material", "MATERIAL")
    layer_table = b.add_input("Layer Table", "GEOMETRY", description="One point per layer with its activation range")
    maps = b.add_input("Maps", "GEOMETRY", description="Where each map's cells stand (Cell Layout's Maps)")
    b.add_output("Mesh", "GEOMETRY")

    with b.frame("Where the bar stands: under the input layer, along -Y"):
        centre, lowest = _centre_and_lowest(b, maps, 0)
        step = b.multiply(size, 0.6)
        half_length = b.multiply(step, (LEGEND_STEPS - 1) / 2)
        # Below the input layer's own label.
        bar_z = b.subtract(lowest, b.multiply(size, drop))
        # The bar runs along -Y, left to right as the network is seen.
        start = b.combine_xyz(centre["X"], b.add(centre["Y"], half_length), bar_z)
        end = b.combine_xyz(centre["X"], b.subtract(centre["Y"], half_length), bar_z)
    with b.frame("The bar: a colored quad per step"):
        line = b.node(
            "GeometryNodeMeshLine",
            {"Count": LEGEND_STEPS, "Start Location": start, "Offset": b.combine_xyz(0.0, b.negate(step), 0.0)},
            mode="OFFSET",
        ).outputs[0]
        factor = b.divide(b.index(), LEGEND_STEPS - 1)
        # While importance is shown the bar is a brightness ramp: importance is drawn as brightness in a class's hue.
        bar_color = b.mix(
            show_importance,
            _colormap(b, factor, ensure_activation_colormap(), colormap),
            b.combine_xyz(factor, factor, factor),
            "RGBA",
        )
        colored = b.store(line, CELL_COLOR, bar_color)
        # Layer -1: the legend's quads share the cells' material but belong to no layer.
        bar = facing_quads(b, b.store(colored, "layer", -1), step, cell_material)

    with b.frame("Its range and title"):
        # The network's own range, a single value each: the numbers are written only when normalized across it.
        low, high = _network_range(b, cells, layer_table)

        def number_or(text, value):
            """``value`` written out when normalized across the network, else ``text`` (ranges differ per layer)."""
            return b.switch("STRING", across, text, b.to_string(value, 2))

        gap = b.combine_xyz(0.0, step, 0.0)
        title = b.switch("STRING", across, "activation, each layer from 0 to its maximum", "activation, whole network")
        title = b.switch("STRING", b.greater_than(show_importance, 0.5), title, importance_title)
        texts = [
            text_mesh(b, number_or("0", low), size, "Right", "Middle", b.vector_add(start, gap), label_material),
            text_mesh(b, number_or("max", high), size, "Left", "Middle", b.vector_subtract(end, gap), label_material),
            text_mesh(
                b,
                title,
                b.multiply(size, 0.8),
                "Center",
                "Bottom",
                b.combine_xyz(centre["X"], centre["Y"], b.add(bar_z, size)),
                label_material,
            ),
        ]
    b.set_outputs(Mesh=b.join([bar, *texts]))
