"""Pick a cell in the viewport: focus the receptive-field view on it, or inspect what it computed.

The cells are drawn by the network's Geometry Nodes, so they cannot be selected
one by one; the 3D cursor stands in for a selection: Shift+right-click a cell
(which puts the cursor on it), then Focus Cell at Cursor or Inspect Cell at Cursor.
"""

import bpy

from ..scene.focus import focus_nearest_cell
from ..scene.inspection import INSPECTION_TEXT_PROPERTY, clear_inspection, inspect_nearest_cell
from .errors import reports_user_errors
from .polls import OnActiveNetwork, OnInspectedNetwork


class AtCursor(OnActiveNetwork):
    """An operator on the network's drawn cell nearest the 3D cursor.

    ``pick(network, location)`` does the work and returns what it picked, or
    None when the network draws nothing it can pick (``nothing`` names what);
    ``describe(picked)`` is the report.
    """

    bl_options = {"REGISTER", "UNDO"}
    nothing = "cells"

    @reports_user_errors
    def execute(self, context):
        network = context.active_object
        picked = self.pick(network, context.scene.cursor.location)
        if picked is None:
            self.report({"WARNING"}, f"{network.name} draws no {self.nothing}")
            return {"CANCELLED"}
        self.report({"INFO"}, self.describe(picked))
        return {"FINISHED"}


class BCNN_OT_focus_selected_cell(AtCursor, bpy.types.Operator):
    """Show how the cell nearest the 3D cursor is computed (Shift+right-click a cell to put the cursor on it)"""

    bl_idname = "bcnn.focus_selected_cell"
    bl_label = "Focus Cell at Cursor"
    pick = staticmethod(focus_nearest_cell)

    @staticmethod
    def describe(picked):
        layer, channel, row, col = picked
        return f"Focus: layer {layer}, channel {channel}, row {row}, column {col}"


class BCNN_OT_inspect_cell(AtCursor, bpy.types.Operator):
    """Show what the cell nearest the 3D cursor computed at the shown epoch and sample: its inputs, weights,
    products, bias and activation, as numbers beside the cells and as text in the panel"""

    bl_idname = "bcnn.inspect_cell"
    bl_label = "Inspect Cell at Cursor"
    pick = staticmethod(inspect_nearest_cell)

    @staticmethod
    def describe(inspection):
        return f"{inspection.where()}: {inspection.equation()}"


class BCNN_OT_copy_inspection(OnInspectedNetwork, bpy.types.Operator):
    """Copy the last inspection's text to the clipboard (for slides and notes)"""

    bl_idname = "bcnn.copy_inspection"
    bl_label = "Copy Inspection"

    def execute(self, context):
        context.window_manager.clipboard = context.active_object[INSPECTION_TEXT_PROPERTY]
        self.report({"INFO"}, "Inspection copied")
        return {"FINISHED"}


class BCNN_OT_clear_inspection(OnInspectedNetwork, bpy.types.Operator):
    """Remove the inspection's numbers and text"""

    bl_idname = "bcnn.clear_inspection"
    bl_label = "Clear Inspection"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        clear_inspection(context.active_object)
        return {"FINISHED"}


classes = (BCNN_OT_focus_selected_cell, BCNN_OT_inspect_cell, BCNN_OT_copy_inspection, BCNN_OT_clear_inspection)
register, unregister = bpy.utils.register_classes_factory(classes)
