"""Operators for the connections between dense layers: which weights are drawn, whose are highlighted."""

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty

from ..core import connections as connection_data
from ..scene.connections import clear_highlight, highlight_nearest_neuron, redraw_connections
from .errors import reports_user_errors
from .focus import AtCursor
from .polls import OnActiveNetwork


class BCNN_OT_draw_connections(OnActiveNetwork, bpy.types.Operator):
    """Choose which weights of the dense layers are drawn as curves: all, or the strongest over the run or at one epoch"""

    bl_idname = "bcnn.draw_connections"
    bl_label = "Draw Connections"
    bl_options = {"REGISTER", "UNDO"}

    mode: EnumProperty(
        name="Draw",
        default="AUTO",
        items=(
            (
                "AUTO",
                "Automatic",
                f"Every weight of layers up to {connection_data.AUTO_MAX_EDGES:,} weights, "
                "the strongest per neuron within that many above",
            ),
            (connection_data.ALL, "All", "One curve per weight (slow for millions)"),
            (
                connection_data.STRONGEST_PER_NEURON,
                "Strongest per Neuron",
                "The incoming weights of largest magnitude of every neuron",
            ),
            (connection_data.STRONGEST_SHARE, "Strongest Share", "The given share of the weights of largest magnitude"),
        ),
    )
    per_neuron: IntProperty(name="Per Neuron", default=10, min=1, description="Incoming weights kept per neuron")
    share: FloatProperty(
        name="Share",
        default=10.0,
        min=0.001,
        max=100.0,
        subtype="PERCENTAGE",
        description="Share of each layer's weights kept, strongest first",
    )
    rank_by: EnumProperty(
        name="Strongest by",
        default=connection_data.BY_WEIGHT,
        items=(
            (connection_data.BY_WEIGHT, "Weight", "The weights of largest magnitude"),
            (
                connection_data.BY_IMPORTANCE,
                "Importance",
                "The connections that matter most for a class (gradient x activation when the bundle has it, "
                "else activation x weight magnitude; docs/importance.md)",
            ),
        ),
    )
    importance_class: IntProperty(
        name="Class", default=-1, min=-1, description="Class whose importance ranks the connections; -1: all classes"
    )
    chosen: EnumProperty(
        name="Chosen",
        default=connection_data.OVER_RUN,
        items=(
            (
                connection_data.OVER_RUN,
                "Over the Run",
                "The union of each epoch's strongest, within the same count: the training animation shows "
                "connections appearing, strengthening and fading",
            ),
            (connection_data.AT_EPOCH, "At the Epoch Shown", "The strongest at the epoch the network was built with"),
        ),
    )

    def invoke(self, context, event):
        return context.window_manager.invoke_props_dialog(self)

    @reports_user_errors
    def execute(self, context):
        network = context.active_object
        selection = connection_data.EdgeSelection(
            None if self.mode == "AUTO" else self.mode,
            per_neuron=self.per_neuron,
            share=self.share / 100.0,
            rank_by=self.rank_by,
            importance_class=self.importance_class,
            chosen=self.chosen,
        )
        drawn = redraw_connections(network, selection)
        self.report({"INFO"}, "; ".join(f"{layer.name}: {layer.label}" for layer in drawn) or "No dense connections")
        return {"FINISHED"}


class BCNN_OT_highlight_neuron(AtCursor, bpy.types.Operator):
    """Keep the connections of the dense neuron nearest the 3D cursor bright and dim the rest"""

    bl_idname = "bcnn.highlight_neuron"
    bl_label = "Highlight Neuron at Cursor"
    nothing = "dense-layer neurons"

    clear: bpy.props.BoolProperty(name="Clear", default=False, description="Highlight no neuron")

    def pick(self, network, location):
        if self.clear:
            clear_highlight(network)
            return ()
        return highlight_nearest_neuron(network, location)

    @staticmethod
    def describe(picked):
        return f"Highlighted {picked[0]} neuron {picked[1]}" if picked else "No neuron highlighted"


classes = (BCNN_OT_draw_connections, BCNN_OT_highlight_neuron)
register, unregister = bpy.utils.register_classes_factory(classes)
