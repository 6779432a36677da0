"""The add-on's panel in the 3D viewport's sidebar (N panel, tab "CNN")."""

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
    EPOCH_PROPERTY,
    ESTIMATE_PROPERTY,
    MODIFIER_NAME,
    SAMPLE_PROPERTY,
    shown_channels,
)
from .jobs import running_jobs

INSPECTION_LINES_SHOWN = 8


class BCNN_PT_network(bpy.types.Panel):
    bl_label = "CNN Network"
    bl_idname = "BCNN_PT_network"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "CNN"

    def draw(self, context):
        layout = self.layout
        imports = layout.column(align=True)
        imports.operator("bcnn.import_bundle", text="Import Bundle", icon="IMPORT")
        imports.operator("bcnn.import_checkpoint", text="Import Checkpoint", icon="FILE_FOLDER")
        imports.operator("bcnn.watch_run", text="Watch Run", icon="PLAY")
        for job in list(running_jobs):
            imports.label(text=job.status_text, icon="TIME")
        network = context.active_object
        modifier = network.modifiers.get(MODIFIER_NAME) if network is not None else None
        if modifier is None or modifier.node_group is None:
            layout.label(text="Select a network to change its layout")
            return
        info = layout.column(align=True)
        info.label(text=f"{network.name}: epoch {network.get(EPOCH_PROPERTY)}, sample {network.get(SAMPLE_PROPERTY)}")
        info.label(text=bpy.path.basename(network.get(BUNDLE_PROPERTY, "")), icon="FILE")
        self.draw_budget(info, network)
        layout.operator("bcnn.show_image", text="Show Image", icon="IMAGE_DATA")
        identifiers = input_identifiers(modifier.node_group)
        for inputs in (
            TIMELINE_INPUTS,
            LAYOUT_INPUTS,
            STYLE_INPUTS,
            CONNECTION_INPUTS,
            IMPORTANCE_INPUTS,
            OPERATION_INPUTS,
        ):
            settings = layout.column(align=True)
            if inputs is TIMELINE_INPUTS:
                row = settings.row(align=True)
                row.operator("bcnn.animate_training", icon="ANIM")
                row.operator("bcnn.animate_samples", icon="IMAGE_DATA")
            if inputs is OPERATION_INPUTS:
                row = settings.row(align=True)
                row.operator("bcnn.focus_selected_cell", icon="PIVOT_CURSOR")
                row.operator("bcnn.inspect_cell", text="Inspect", icon="VIEWZOOM")
                settings.operator("bcnn.animate_sweep", icon="ANIM")
                self.draw_inspection(settings, network)
            if inputs is CONNECTION_INPUTS:
                self.draw_connection_counts(settings, network)
            for name, *_rest in inputs:
                if name in identifiers:
                    settings.prop(getattr(modifier.properties.inputs, identifiers[name]), "value", text=name)
        self.draw_blocks(layout, modifier, identifiers)
        styles = layout.row(align=True)
        styles.operator("bcnn.apply_style", text="Apply Style", icon="COLOR")
        styles.operator("bcnn.save_style", text="Save Style", icon="FILE_TICK")
        renders = layout.column(align=True)
        renders.operator("bcnn.camera_move", icon="CAMERA_DATA")
        row = renders.row(align=True)
        row.operator("bcnn.render_still", text="Render Still", icon="RENDER_STILL")
        row.operator("bcnn.render_animation", text="Render Animation", icon="RENDER_ANIMATION")
        renders.operator("bcnn.export_web", text="Export for Web", icon="WORLD")

    @staticmethod
    def draw_inspection(layout, network):
        text = network.get(INSPECTION_TEXT_PROPERTY)
        if not text:
            return
        box = layout.box()
        lines = text.split("\n")
        for line in lines[:INSPECTION_LINES_SHOWN]:
            box.label(text=line)
        if len(lines) > INSPECTION_LINES_SHOWN:
            box.label(
                text=f"... {len(lines) - INSPECTION_LINES_SHOWN} more lines (Copy, or the Text Editor's "
                f"'BCNN Inspection')"
            )
            box.label(text=lines[-1])
        row = box.row(align=True)
        row.operator("bcnn.copy_inspection", text="Copy", icon="COPYDOWN")
        row.operator("bcnn.clear_inspection", text="Clear", icon="X")

    @staticmethod
    def draw_blocks(layout, modifier, identifiers):
        """Each block's Expand (0 = one node, 1 = every unit), for networks shown as blocks."""
        prefix = f"{BLOCKS_PANEL}/"
        blocks = [name for name in identifiers if name.startswith(prefix)]
        if not blocks:
            return
        column = layout.column(align=True)
        column.label(text=f"Blocks ({len(blocks)}): expand to show their layers", icon="OUTLINER_COLLECTION")
        column.operator("bcnn.fit_rows", icon="MOD_ARRAY")
        for name in blocks:
            column.prop(
                getattr(modifier.properties.inputs, identifiers[name]), "value", text=name[len(prefix) :], slider=True
            )

    @staticmethod
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

    @staticmethod
    def draw_connection_counts(layout, network):
        try:
            counts = drawn_connection_counts(network)
        except BlenderCNNError as error:
            layout.label(text=str(error), icon="ERROR")
            return
        for layer, drawn, total, selection in counts:
            layout.label(text=f"{layer}: {drawn:,} of {total:,} drawn, {total - drawn:,} hidden ({selection})")
        row = layout.row(align=True)
        row.operator("bcnn.draw_connections", icon="CURVES")
        row.operator("bcnn.highlight_neuron", text="Highlight", icon="PIVOT_CURSOR")
        row.operator("bcnn.highlight_neuron", text="", icon="X").clear = True


classes = (BCNN_PT_network,)
register, unregister = bpy.utils.register_classes_factory(classes)
