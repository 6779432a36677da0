"""Pick the focus pixel of the receptive-field view in the viewport.

The cells are drawn by the network's Geometry Nodes, so they cannot be selected
one by one; the 3D cursor stands in for a selection: Shift+right-click a cell
(which puts the cursor on it), then Focus Cell at Cursor.
"""

import bpy

from ..core.errors import BlenderCNNError
from ..scene.focus import focus_nearest_cell
from ..scene.network import network_modifier


class BCNN_OT_focus_selected_cell(bpy.types.Operator):
    """Show how the cell nearest the 3D cursor is computed (Shift+right-click a cell to put the cursor on it)"""

    bl_idname = "bcnn.focus_selected_cell"
    bl_label = "Focus Cell at Cursor"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.active_object is not None

    def execute(self, context):
        network = context.active_object
        try:
            network_modifier(network)
            picked = focus_nearest_cell(network, context.scene.cursor.location)
        except BlenderCNNError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        if picked is None:
            self.report({"WARNING"}, f"{network.name} draws no cells to focus")
            return {"CANCELLED"}
        layer, channel, row, col = picked
        self.report({"INFO"}, f"Focus: layer {layer}, channel {channel}, row {row}, column {col}")
        return {"FINISHED"}


classes = (BCNN_OT_focus_selected_cell,)
register, unregister = bpy.utils.register_classes_factory(classes)
