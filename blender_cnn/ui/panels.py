"""The add-on's panels in the 3D viewport's sidebar (N panel, tab "CNN"): the control room.

**CNN Network** holds the importers, the active network's file and Show Image; under it one sub-panel per concern
(Timeline, Layout, Layers with Blocks, Connections, Importance, Operations, Style, Render), each folding away on its
own and shown only when it has something to show: an empty scene shows the importers alone. Every setting drawn is
the network modifier's own input, so I or right-click > Insert Keyframe keys it as anywhere in Blender.
"""

import bpy

from ..core.errors import BlenderCNNError
from ..nodes.network import (
    BLOCKS_PANEL,
    CONNECTION_INPUTS,
    IMPORTANCE_INPUTS,
    LAYOUT_INPUTS,
    STYLE_INPUTS,
    TIMELINE_INPUTS,
    input_identifiers,
)
from ..nodes.operations import OPERATION_INPUTS
from ..scene.connections import drawn_connection_counts
from ..scene.inspection import INSPECTION_TEXT_PROPERTY
from ..scene.network import (
    BUNDLE_PROPERTY,
    CAPPED_PROPERTY,
    CONNECTIONS_PROPERTY,
    EPOCH_PROPERTY,
    ESTIMATE_PROPERTY,
    MODIFIER_NAME,
    SAMPLE_PROPERTY,
    shown_channels,
)
from .composition import draw_composition
from .jobs import running_jobs
from .layer_list import draw_layer_list
from .render import scene_network

INSPECTION_LINES_SHOWN = 8
CATEGORY = "CNN"


def active_network(context):
    """The active object when it is a network with its node tree, else None."""
    network = getattr(context, "active_object", None)
    modifier = network.modifiers.get(MODIFIER_NAME) if network is not None else None
    if modifier is None or modifier.node_group is None:
        return None
    return network


def has_input(network, name):
    """Whether the network's tree has a top-level input ``name`` (networks built before an input existed lack it)."""
    return name in network.modifiers[MODIFIER_NAME].node_group.interface.items_tree


def draw_inputs(layout, network, inputs):
    """The modifier inputs named in ``inputs`` (a ``*_INPUTS`` table of nodes/network.py) that the network has."""
    modifier = network.modifiers[MODIFIER_NAME]
    identifiers = input_identifiers(modifier.node_group)
    column = layout.column(align=True)
    for name, *_rest in inputs:
        if name in identifiers:
            column.prop(getattr(modifier.properties.inputs, identifiers[name]), "value", text=name)


class SidebarPanel:
    """What every panel of the CNN tab shares: where it is, and its icon in the header."""

    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = CATEGORY
    icon = "NONE"

    def draw_header(self, _context):
        self.layout.label(icon=self.icon)


class NetworkSubPanel(SidebarPanel):
    """A sub-panel of CNN Network about the active network; ``shows(network)`` says whether it has anything to show."""

    bl_parent_id = "BCNN_PT_network"

    @classmethod
    def poll(cls, context):
        network = active_network(context)
        return network is not None and cls.shows(network)

    @staticmethod
    def shows(_network):
        return True


class BCNN_PT_network(SidebarPanel, bpy.types.Panel):
    """Import a network, and the active network's file, epoch, sample and memory; Show Image"""

    bl_label = "CNN Network"
    bl_idname = "BCNN_PT_network"
    icon = "NODETREE"

    def draw(self, context):
        layout = self.layout
        imports = layout.column(align=True)
        imports.operator("bcnn.import_bundle", text="Import Bundle", icon="IMPORT")
        imports.operator("bcnn.import_checkpoint", text="Import Checkpoint", icon="FILE_FOLDER")
        imports.operator("bcnn.watch_run", text="Watch Run", icon="PLAY")
        for job in list(running_jobs):
            imports.label(text=job.status_text, icon="TIME")
        network = active_network(context)
        if network is None:
            layout.label(text="Select a network to change its layout")
            return
        info = layout.column(align=True)
        info.label(text=f"{network.name}: epoch {network.get(EPOCH_PROPERTY)}, sample {network.get(SAMPLE_PROPERTY)}")
        info.label(text=bpy.path.basename(network.get(BUNDLE_PROPERTY, "")), icon="FILE")
        draw_budget(info, network)
        layout.operator("bcnn.show_image", text="Show Image", icon="IMAGE_DATA")


class BCNN_PT_timeline(NetworkSubPanel, bpy.types.Panel):
    """Epoch and sample shown, the training overlay; Animate Training and Animate Samples"""

    bl_label = "Timeline"
    bl_idname = "BCNN_PT_timeline"
    icon = "TIME"

    @staticmethod
    def shows(network):
        return has_input(network, "Epoch")

    def draw(self, context):
        layout = self.layout
        row = layout.row(align=True)
        row.operator("bcnn.animate_training", icon="ANIM")
        row.operator("bcnn.animate_samples", icon="IMAGE_DATA")
        draw_inputs(layout, active_network(context), TIMELINE_INPUTS)


class BCNN_PT_layout(NetworkSubPanel, bpy.types.Panel):
    """Where the layers, maps and cells stand: spacing, sizes, the article's controls, rows; Fit Rows"""

    bl_label = "Layout"
    bl_idname = "BCNN_PT_layout"
    icon = "SNAP_GRID"

    def draw(self, context):
        layout = self.layout
        draw_inputs(layout, active_network(context), LAYOUT_INPUTS)
        layout.operator("bcnn.fit_rows", icon="MOD_ARRAY")


class BCNN_PT_layers(NetworkSubPanel, bpy.types.Panel):
    """Every layer (units and blocks of a graph) with its type and output shape; the selected one's own inputs"""

    bl_label = "Layers"
    bl_idname = "BCNN_PT_layers"
    icon = "RENDERLAYERS"

    def draw(self, context):
        draw_layer_list(self.layout, context, active_network(context))


class BCNN_PT_blocks(NetworkSubPanel, bpy.types.Panel):
    """Each block's Expand (0 = one node, 1 = every unit), for networks shown as blocks"""

    bl_label = "Blocks"
    bl_idname = "BCNN_PT_blocks"
    bl_parent_id = "BCNN_PT_layers"
    bl_options = {"DEFAULT_CLOSED"}
    icon = "OUTLINER_COLLECTION"

    @staticmethod
    def shows(network):
        return BLOCKS_PANEL in network.modifiers[MODIFIER_NAME].node_group.interface.items_tree

    def draw(self, context):
        draw_blocks(self.layout, active_network(context))


class BCNN_PT_connections(NetworkSubPanel, bpy.types.Panel):
    """The dense layers' connections: how many are drawn, which, whose are highlighted; their bundling"""

    bl_label = "Connections"
    bl_idname = "BCNN_PT_connections"
    icon = "CURVES"

    @staticmethod
    def shows(network):
        return bool(network.get(CONNECTIONS_PROPERTY))

    def draw(self, context):
        network = active_network(context)
        draw_connection_counts(self.layout, network)
        draw_inputs(self.layout, network, CONNECTION_INPUTS)


class BCNN_PT_importance(NetworkSubPanel, bpy.types.Panel):
    """Color by importance for a class instead of activation and weight"""

    bl_label = "Importance"
    bl_idname = "BCNN_PT_importance"
    icon = "SOLO_ON"

    @staticmethod
    def shows(network):
        return has_input(network, IMPORTANCE_INPUTS[0][0])

    def draw(self, context):
        draw_inputs(self.layout, active_network(context), IMPORTANCE_INPUTS)


class BCNN_PT_operations(NetworkSubPanel, bpy.types.Panel):
    """What a cell computes: focus, inspect, sweep"""

    bl_label = "Operations"
    bl_idname = "BCNN_PT_operations"
    icon = "VIEWZOOM"

    @staticmethod
    def shows(network):
        return has_input(network, OPERATION_INPUTS[0][0])

    def draw(self, context):
        layout = self.layout
        network = active_network(context)
        column = layout.column(align=True)
        row = column.row(align=True)
        row.operator("bcnn.focus_selected_cell", icon="PIVOT_CURSOR")
        row.operator("bcnn.inspect_cell", text="Inspect", icon="VIEWZOOM")
        column.operator("bcnn.animate_sweep", icon="ANIM")
        draw_inspection(layout, network)
        draw_inputs(layout, network, OPERATION_INPUTS)


class BCNN_PT_style(NetworkSubPanel, bpy.types.Panel):
    """Colormaps, legend and what is drawn; style presets"""

    bl_label = "Style"
    bl_idname = "BCNN_PT_style"
    icon = "COLOR"

    def draw(self, context):
        layout = self.layout
        styles = layout.row(align=True)
        styles.operator("bcnn.apply_style", text="Apply Style", icon="COLOR")
        styles.operator("bcnn.save_style", text="Save Style", icon="FILE_TICK")
        draw_inputs(layout, active_network(context), STYLE_INPUTS)


class BCNN_PT_render(SidebarPanel, bpy.types.Panel):
    """Camera moves, renders and the web export of the scene's network"""

    bl_label = "Render"
    bl_idname = "BCNN_PT_render"
    bl_parent_id = "BCNN_PT_network"
    icon = "RENDER_STILL"

    @classmethod
    def poll(cls, context):
        return getattr(context, "scene", None) is not None and scene_network(context) is not None

    def draw(self, context):
        layout = self.layout
        renders = layout.column(align=True)
        renders.operator("bcnn.camera_move", icon="CAMERA_DATA")
        row = renders.row(align=True)
        row.operator("bcnn.render_still", text="Render Still", icon="RENDER_STILL")
        row.operator("bcnn.render_animation", text="Render Animation", icon="RENDER_ANIMATION")
        renders.operator("bcnn.export_web", text="Export for Web", icon="WORLD")
        draw_composition(layout, scene_network(context))


def draw_inspection(layout, network):
    """The last inspection's text, its first lines and last, with Copy and Clear."""
    text = network.get(INSPECTION_TEXT_PROPERTY)
    if not text:
        return
    box = layout.box()
    lines = text.split("\n")
    for line in lines[:INSPECTION_LINES_SHOWN]:
        box.label(text=line)
    if len(lines) > INSPECTION_LINES_SHOWN:
        box.label(
            text=f"... {len(lines) - INSPECTION_LINES_SHOWN} more lines (Copy, or the Text Editor's 'BCNN Inspection')"
        )
        box.label(text=lines[-1])
    row = box.row(align=True)
    row.operator("bcnn.copy_inspection", text="Copy", icon="COPYDOWN")
    row.operator("bcnn.clear_inspection", text="Clear", icon="X")


def draw_blocks(layout, network):
    """Each block's Expand (0 = one node, 1 = every unit), for networks shown as blocks."""
    modifier = network.modifiers[MODIFIER_NAME]
    identifiers = input_identifiers(modifier.node_group)
    prefix = f"{BLOCKS_PANEL}/"
    blocks = [name for name in identifiers if name.startswith(prefix)]
    if not blocks:
        return
    column = layout.column(align=True)
    column.label(text=f"Blocks ({len(blocks)}): expand to show their layers", icon="OUTLINER_COLLECTION")
    for name in blocks:
        column.prop(
            getattr(modifier.properties.inputs, identifiers[name]), "value", text=name[len(prefix) :], slider=True
        )


def draw_budget(layout, network):
    """The scene's estimated memory, and which layers show only their first maps to stay within it."""
    estimate, capped = network.get(ESTIMATE_PROPERTY), list(network.get(CAPPED_PROPERTY, []))
    if estimate is not None:
        layout.label(text=f"Scene about {estimate:.1f} GB", icon="MEMORY")
    if capped:
        shown = shown_channels(network) or {}
        layout.label(
            text=f"{len(capped)} wide layers show their first {max(shown[name] for name in capped)} "
            f"maps (memory budget in the preferences)",
            icon="INFO",
        )


def draw_connection_counts(layout, network):
    """Per dense layer, how many of its weights are drawn and how they were chosen; Draw Connections, Highlight."""
    column = layout.column(align=True)
    try:
        counts = drawn_connection_counts(network)
    except BlenderCNNError as error:
        column.label(text=str(error), icon="ERROR")
        counts = []
    for layer, drawn, total, selection in counts:
        column.label(text=f"{layer}: {drawn:,} of {total:,} drawn, {total - drawn:,} hidden ({selection})")
    row = column.row(align=True)
    row.operator("bcnn.draw_connections", icon="CURVES")
    row.operator("bcnn.highlight_neuron", text="Highlight", icon="PIVOT_CURSOR")
    row.operator("bcnn.highlight_neuron", text="", icon="X").clear = True


# Parents before their sub-panels, in the order they stand in the sidebar.
classes = (
    BCNN_PT_network,
    BCNN_PT_timeline,
    BCNN_PT_layout,
    BCNN_PT_layers,
    BCNN_PT_blocks,
    BCNN_PT_connections,
    BCNN_PT_importance,
    BCNN_PT_operations,
    BCNN_PT_style,
    BCNN_PT_render,
)
register, unregister = bpy.utils.register_classes_factory(classes)
