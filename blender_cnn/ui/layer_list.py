"""The sidebar's Layers list: one row per layer (units and blocks for a graph), its type and output shape, a filter,
and the selected layer's own modifier inputs; Frame Layer and Layer at Cursor.

The rows are derived data: they live on the window manager (not saved; Blender allows writing to it while a panel
draws) and are rebuilt from the network's bundle whenever the active network is another one or its tree changed,
a check of a few names that each redraw makes. The layer's controls drawn under the list are the modifier's own
inputs (``modifier.properties.inputs.<identifier>.value``), so I, right-click > Insert Keyframe and drivers work on
them as on any property in Blender.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np
from bpy.props import CollectionProperty, IntProperty, PointerProperty, StringProperty

from ..core.errors import BlenderCNNError
from ..core.graph import plan_graph
from ..core.scene_plan import unit_label
from ..nodes.layer_controls import PER_LAYER_INPUTS
from ..nodes.network import BLOCKS_PANEL, input_identifiers
from ..scene.drawn import drawn_quads
from ..scene.materials import CELL_MATERIAL
from ..scene.network import (
    BUNDLE_PROPERTY,
    DETAILED_PROPERTY,
    MODIFIER_NAME,
    network_bundle,
    shown_channels,
)
from .errors import reports_user_errors
from .focus import AtCursor
from .polls import OnActiveNetwork

# The row a network had selected, by name, kept on the network so that switching networks keeps each one's.
ACTIVE_LAYER_PROPERTY = "blender_cnn_active_layer"
LIST_ROWS = 8
BLOCK, LAYER = "BLOCK", "LAYER"
# How much of the view the framed layer fills: its bounding sphere's radius over the view's half height.
FRAME_MARGIN = 1.15


@dataclass(frozen=True)
class LayerRow:
    """One row of the list: a layer (a unit, for a graph) or a block.

    ``layers`` are the bundle indices of the layers it draws cells for (a block: its units' outputs);
    ``panel`` names its panel of per-layer inputs ("" for layers without feature maps), ``expand`` its Expand
    input ("" unless a block).
    """

    name: str
    kind: str
    layer_type: str
    shape: str
    layers: tuple[int, ...]
    panel: str
    expand: str


def _shape_text(layer, shown):
    shape = "x".join(str(size) for size in layer.output_shape)
    if layer.is_spatial and shown and shown < layer.output_shape[2]:
        return f"{shape} (first {shown} of {layer.output_shape[2]})"
    return shape


def layer_rows(bundle, detailed, shown, identifiers):
    """The rows of a network built from ``bundle`` (``detailed`` as it was built, ``shown`` its channels shown) whose
    tree has the inputs ``identifiers`` (``nodes.network.input_identifiers``)."""
    plan = plan_graph(bundle.layers, detailed)
    by_name = {layer.name: layer for layer in bundle.layers}
    shown = shown or {}
    rows = []
    for kind, index in plan.items:
        if kind == "block":
            block = plan.blocks[index]
            members = [by_name[name] for unit in block.units for name in plan.units[unit].layers]
            output = by_name[plan.units[block.output].output]
            name = block.name
            layer_type = f"Block of {len(members)} layers"
            layers = tuple(by_name[plan.units[unit].output].index for unit in block.units)
            expand = f"{BLOCKS_PANEL}/{name}"
        else:
            unit = plan.units[index]
            members = [by_name[name] for name in unit.layers]
            output = by_name[unit.output]
            name = unit.output
            # unit_label's second line: the types of the unit's layers, then its shape.
            types_and_shape = unit_label(members).split("\n")[1]
            layer_type = types_and_shape.removesuffix(" " + _shape_text(output, None))
            layers = (output.index,)
            expand = ""
        rows.append(
            LayerRow(
                name=name,
                kind=BLOCK if kind == "block" else LAYER,
                layer_type=layer_type,
                shape=_shape_text(output, shown.get(output.name)),
                layers=layers,
                panel=name if f"{name}/{PER_LAYER_INPUTS[0][0]}" in identifiers else "",
                expand=expand if expand in identifiers else "",
            )
        )
    return rows


def rows_from_tree(identifiers):
    """The rows a tree's inputs alone tell (the bundle is gone): names, blocks and panels, no types or shapes."""
    blocks = {key.partition("/")[2] for key in identifiers if key.startswith(BLOCKS_PANEL + "/")}
    panels = dict.fromkeys(key.partition("/")[0] for key in identifiers if "/" in key)
    panels.pop(BLOCKS_PANEL, None)
    return [
        LayerRow(
            name=name,
            kind=BLOCK if name in blocks else LAYER,
            layer_type="",
            shape="",
            layers=(),
            panel=name,
            expand=f"{BLOCKS_PANEL}/{name}" if name in blocks else "",
        )
        for name in panels
    ]


def rows_source(network):
    """What the rows depend on, as one string: a redraw compares it with the rows' own to know they are current."""
    tree = network.modifiers[MODIFIER_NAME].node_group
    return "\n".join(
        (network.name, tree.name, str(len(tree.interface.items_tree)), str(network.get(BUNDLE_PROPERTY, "")))
    )


_rows_cache: dict[str, list[LayerRow]] = {}
ROWS_CACHED = 8


def network_rows(network):
    """The rows of ``network``: from its bundle, or from its tree's inputs when the bundle cannot be read."""
    source = rows_source(network)
    if source not in _rows_cache:
        identifiers = input_identifiers(network.modifiers[MODIFIER_NAME].node_group)
        try:
            bundle = network_bundle(network)
            detailed = network.get(DETAILED_PROPERTY)
            rows = layer_rows(
                bundle, None if detailed is None else bool(detailed), shown_channels(network), identifiers
            )
        except (BlenderCNNError, OSError, KeyError, ValueError):
            rows = rows_from_tree(identifiers)
        while len(_rows_cache) >= ROWS_CACHED:
            _rows_cache.pop(next(iter(_rows_cache)))
        _rows_cache[source] = rows
    return _rows_cache[source]


# ---------------------------------------------------------------- the rows in Blender


_syncing = False


def _remember_active(state, _context):
    """The network keeps the name of its selected row (a click in the list; not while the rows are rebuilt)."""
    if _syncing:
        return
    network = bpy.data.objects.get(state.network)
    if network is not None and 0 <= state.active_index < len(state.rows):
        network[ACTIVE_LAYER_PROPERTY] = state.rows[state.active_index].name


class BCNN_LayerRow(bpy.types.PropertyGroup):
    """A row of the Layers list (``name`` is the layer's, or the block's)."""

    kind: StringProperty(name="Kind")
    layer_type: StringProperty(name="Type")
    shape: StringProperty(name="Output Shape")
    layers: StringProperty(name="Layers", description="Bundle indices of the layers it draws, comma-separated")
    panel: StringProperty(name="Panel", description="Its panel of per-layer inputs; empty: no feature maps")
    expand: StringProperty(name="Expand Input", description="Its Expand input; empty unless a block")

    def layer_indices(self):
        return [int(part) for part in self.layers.split(",") if part]


class BCNN_LayerList(bpy.types.PropertyGroup):
    """The Layers list of the active network: its rows, the selected one and the filter."""

    rows: CollectionProperty(type=BCNN_LayerRow)
    active_index: IntProperty(name="Selected Layer", default=0, min=0, update=_remember_active)
    filter_text: StringProperty(
        name="Filter", description="Show only the layers whose name holds this (* and ? as wildcards)", options=set()
    )
    network: StringProperty(name="Network", description="The network whose layers the rows are")
    source: StringProperty(name="Source", description="What the rows were made from (rows_source)")


def sync_layer_rows(state, network):
    """Make ``state``'s rows those of ``network`` unless they are already; the selected row follows the network's
    remembered one. Returns whether the rows were rebuilt."""
    global _syncing
    source = rows_source(network)
    if state.source == source:
        return False
    rows = network_rows(network)
    remembered = network.get(ACTIVE_LAYER_PROPERTY)
    _syncing = True
    try:
        state.rows.clear()
        for row in rows:
            item = state.rows.add()
            item.name, item.kind, item.layer_type, item.shape = row.name, row.kind, row.layer_type, row.shape
            item.layers = ",".join(map(str, row.layers))
            item.panel, item.expand = row.panel, row.expand
        names = [row.name for row in rows]
        state.active_index = names.index(remembered) if remembered in names else 0
        state.network, state.source = network.name, source
    finally:
        _syncing = False
    return True


def layer_list(context, network):
    """The window manager's Layers list, with ``network``'s rows."""
    state = context.window_manager.bcnn_layer_list
    sync_layer_rows(state, network)
    return state


def selected_row(state):
    return state.rows[state.active_index] if 0 <= state.active_index < len(state.rows) else None


def filter_flags(names, pattern, bitflag):
    """UIList filter flags: ``bitflag`` on every name holding ``pattern`` (case-insensitive, * and ? wildcards);
    an empty list (all shown) without a pattern."""
    return bpy.types.UI_UL_list.filter_items_by_name(pattern, bitflag, [_Named(name) for name in names])


@dataclass(frozen=True)
class _Named:
    name: str


class BCNN_UL_layers(bpy.types.UIList):
    """The network's layers: name, type and output shape; the filter box above the list (or the list's own)."""

    bl_idname = "BCNN_UL_layers"

    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_propname, _index=0):
        icon = "OUTLINER_COLLECTION" if item.kind == BLOCK else ("TEXTURE" if item.panel else "MESH_GRID")
        if self.layout_type == "GRID":
            layout.label(text="", icon=icon)
            return
        split = layout.split(factor=0.42)
        split.label(text=item.name, icon=icon)
        details = split.split(factor=0.55)
        details.label(text=item.layer_type)
        details.label(text=item.shape)

    def filter_items(self, _context, data, propname):
        rows = getattr(data, propname)
        pattern = self.filter_name or getattr(data, "filter_text", "")
        flags = filter_flags([row.name for row in rows], pattern, self.bitflag_filter_item)
        order = bpy.types.UI_UL_list.sort_items_by_name(rows, "name") if self.use_filter_sort_alpha else []
        return flags, order


def draw_layer_list(layout, context, network):
    """The Layers panel: filter box, list, and the selected layer's inputs and actions."""
    state = layer_list(context, network)
    layout.prop(state, "filter_text", text="", icon="VIEWZOOM")
    layout.template_list("BCNN_UL_layers", "", state, "rows", state, "active_index", rows=LIST_ROWS)
    row = selected_row(state)
    if row is None:
        layout.label(text="The network has no layers to list", icon="INFO")
        return
    draw_selected_layer(layout, network, row)


def draw_selected_layer(layout, network, row):
    """The selected row's own modifier inputs (Map Layout, Fold, Channels Shown, Map Fold...; Expand for a block),
    keyframable where they are drawn."""
    modifier = network.modifiers[MODIFIER_NAME]
    identifiers = input_identifiers(modifier.node_group)
    inputs = modifier.properties.inputs
    box = layout.box()
    title = " ".join(part for part in (row.layer_type, row.shape) if part)
    box.label(text=f"{row.name}: {title}" if title else row.name, icon="OUTLINER_COLLECTION" if row.expand else "NONE")
    column = box.column(align=True)
    if row.expand and row.expand in identifiers:
        column.prop(getattr(inputs, identifiers[row.expand]), "value", text="Expand", slider=True)
    drawn = 0
    for name, *_rest in PER_LAYER_INPUTS:
        key = f"{row.panel}/{name}"
        if row.panel and key in identifiers:
            column.prop(getattr(inputs, identifiers[key]), "value", text=name)
            drawn += 1
    if not drawn:
        box.label(text="No feature maps to lay out", icon="INFO")
    actions = box.row(align=True)
    actions.operator("bcnn.frame_layer", icon="ZOOM_SELECTED")
    actions.operator("bcnn.select_layer_at_cursor", text="Layer at Cursor", icon="RESTRICT_SELECT_OFF")


# ---------------------------------------------------------------- framing and picking


def layer_bounds(network, layers):
    """World-space ``(low, high)`` corners of the cells ``network`` draws for the bundle layers ``layers`` (a folded
    layer's summary map included); None when it draws none of them (a collapsed block's inner units)."""
    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    if not len(quads):
        return None
    chosen = np.isin(quads.attribute("layer"), np.asarray(layers, dtype=np.int64))
    if not chosen.any():
        return None
    corners = quads.corners()[chosen].reshape(-1, 3)
    return corners.min(axis=0), corners.max(axis=0)


def nearest_drawn_layer(network, location):
    """The bundle index of the layer whose drawn cell is nearest ``location``; None when no cell is drawn."""
    quads, _geometry = drawn_quads(network, CELL_MATERIAL)
    if not len(quads):
        return None
    layer = quads.attribute("layer").astype(np.int64)
    centres = quads.centres()[layer >= 0]
    layer = layer[layer >= 0]
    if not len(layer):
        return None
    distances = np.sum((centres - np.asarray(location, dtype=np.float32)) ** 2, axis=1)
    return int(layer[int(np.argmin(distances))])


def row_of_layer(rows, layer):
    """The position of the row that draws bundle layer ``layer``; None when no row does."""
    return next((position for position, row in enumerate(rows) if layer in row.layer_indices()), None)


def frame_view(view, low, high):
    """Point a 3D view (a ``SpaceView3D``) at the box ``low``..``high``, far enough back to see all of it."""
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    centre = (low + high) / 2.0
    radius = max(float(np.linalg.norm(high - low)) / 2.0, 1e-3)
    region = view.region_3d
    if region.view_perspective == "CAMERA":  # looking through the camera, the view would not move
        region.view_perspective = "PERSP"
    region.view_location = tuple(centre)
    if region.view_perspective == "ORTHO":
        region.view_distance = radius * 2.0 * FRAME_MARGIN
    else:
        # The viewport's lens over a 36 mm sensor gives its narrower half angle.
        half_angle = math.atan(18.0 / max(float(view.lens), 1.0))
        region.view_distance = radius * FRAME_MARGIN / math.sin(half_angle)


def view3d_spaces(context):
    """The 3D views to frame in: the one the operator was called from, else every 3D view on the screen."""
    space = getattr(context, "space_data", None)
    if getattr(space, "type", None) == "VIEW_3D" and getattr(space, "region_3d", None) is not None:
        return [space]
    screen = getattr(context, "screen", None)
    spaces = []
    for area in screen.areas if screen is not None else ():
        if area.type == "VIEW_3D" and area.spaces.active.region_3d is not None:
            spaces.append(area.spaces.active)
            area.tag_redraw()
    return spaces


def _vector_text(values):
    return "(" + ", ".join(f"{value:.4g}" for value in values) + ")"


class BCNN_OT_frame_layer(OnActiveNetwork, bpy.types.Operator):
    """Turn the 3D view to the layer selected in the Layers list (or the one named), framing its drawn cells"""

    bl_idname = "bcnn.frame_layer"
    bl_label = "Frame Layer"
    bl_options = {"REGISTER"}

    layer: StringProperty(
        name="Layer",
        description="The row to frame (a layer or a block); empty: the selected one",
        options={"SKIP_SAVE"},
    )

    @reports_user_errors
    def execute(self, context):
        network = context.active_object
        state = layer_list(context, network)
        names = [row.name for row in state.rows]
        if self.layer and self.layer not in names:
            raise BlenderCNNError(network.name, f"has no layer or block {self.layer!r} in its Layers list")
        row = state.rows[names.index(self.layer)] if self.layer else selected_row(state)
        if row is None:
            raise BlenderCNNError(network.name, "has no layers to frame")
        bounds = layer_bounds(network, row.layer_indices())
        if bounds is None:
            self.report({"WARNING"}, f"{row.name} draws no cells now (a collapsed block shows its output only)")
            return {"CANCELLED"}
        views = view3d_spaces(context)
        for view in views:
            frame_view(view, *bounds)
        framed = f", framed in {len(views)} view{'s' * (len(views) != 1)}" if views else ""
        self.report({"INFO"}, f"{row.name}: from {_vector_text(bounds[0])} to {_vector_text(bounds[1])}{framed}")
        return {"FINISHED"}


class BCNN_OT_select_layer_at_cursor(AtCursor, bpy.types.Operator):
    """Select in the Layers list the layer of the cell nearest the 3D cursor (Shift+right-click a cell to put the
    cursor on it)"""

    bl_idname = "bcnn.select_layer_at_cursor"
    bl_label = "Select Layer at Cursor"
    bl_options = {"REGISTER"}

    def pick(self, network, location):
        state = layer_list(bpy.context, network)
        layer = nearest_drawn_layer(network, location)
        position = row_of_layer(state.rows, layer) if layer is not None else None
        if position is None:
            return None
        state.active_index = position
        return state.rows[position].name

    @staticmethod
    def describe(picked):
        return f"Selected {picked} in the Layers list"


classes = (
    BCNN_LayerRow,
    BCNN_LayerList,
    BCNN_UL_layers,
    BCNN_OT_frame_layer,
    BCNN_OT_select_layer_at_cursor,
)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.WindowManager.bcnn_layer_list = PointerProperty(type=BCNN_LayerList)


def unregister():
    del bpy.types.WindowManager.bcnn_layer_list
    _unregister_classes()
