"""The designer's sidebar panel in the node editor (N panel, tab "CNN Design"), for CNN Design trees only."""

import bpy

from ..scene.network import is_network
from ..ui.jobs import running_jobs
from .tree import TREE_TYPE, analysis, wrapped

MAX_PROBLEMS_SHOWN = 8


class BCNN_PT_designer(bpy.types.Panel):
    bl_label = "CNN Design"
    bl_idname = "BCNN_PT_designer"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "CNN Design"

    @classmethod
    def poll(cls, context):
        return getattr(context.space_data, "tree_type", None) == TREE_TYPE

    def draw(self, context):
        layout = self.layout
        layout.operator_menu_enum("bcnn.new_design_from_preset", "preset", text="New from Preset", icon="ADD")
        space = getattr(context, "space_data", None)
        tree = getattr(space, "edit_tree", None)
        if tree is None or getattr(tree, "bl_idname", None) != TREE_TYPE:
            layout.label(text="No design open: start one from a preset,")
            layout.label(text="or add a CNN Design tree and its nodes")
        else:
            self.draw_design(layout, tree)
        for job in list(running_jobs):
            first, *rest = wrapped(job.status_text, 44) or [""]
            layout.label(text=first, icon="SORTTIME")
            for part in rest:
                layout.label(text=part)
        network = context.view_layer.objects.active if getattr(context, "view_layer", None) else None
        box = layout.column(align=True)
        if is_network(network):
            box.label(text=f"Active network: {network.name}", icon="OBJECT_DATA")
        else:
            box.label(text="Select an imported network to design from it", icon="INFO")
        box.operator("bcnn.design_from_network", icon="NODETREE")

    @staticmethod
    def draw_design(layout, tree):
        column = layout.column(align=True)
        column.prop(tree, "design_name", text="Name")
        column.prop(tree, "description", text="Description")
        result = analysis(tree)
        layout.label(text=f"{result.total_params:,} parameters", icon="INFO")
        count = result.problem_count
        if count == 0:
            layout.label(text="No problems", icon="CHECKMARK")
        else:
            problems = layout.column(align=True)
            problems.label(text=f"{count} problem{'s' if count > 1 else ''}", icon="ERROR")
            lines = (
                ([result.error] if result.error else [])
                + ([f"Design: {result.design_problem}"] if result.design_problem else [])
                + [f"{name}: {reason}" for name, reason in result.problems.items()]
            )
            for line in lines[:MAX_PROBLEMS_SHOWN]:
                for part in wrapped(line, 44):
                    problems.label(text=part)
            if len(lines) > MAX_PROBLEMS_SHOWN:
                problems.label(text=f"... and {len(lines) - MAX_PROBLEMS_SHOWN} more (see the red nodes)")
        actions = layout.column(align=True)
        actions.operator("bcnn.save_design_preset", text="Save Preset", icon="FILE_TICK")
        # The buttons refuse an invalid design with its problems; greyed out, they say so before a click.
        valid = actions.column(align=True)
        valid.enabled = count == 0
        valid.operator("bcnn.build_design_scene", text="Build Scene", icon="SCENE_DATA")
        tensorflow = layout.column(align=True)
        tensorflow.enabled = count == 0
        # ONNX needs the onnx package, which the same external Python (the extractor's) has.
        tensorflow.label(text="With TensorFlow (ONNX: the onnx package):")
        exports = tensorflow.row(align=True)
        exports.operator("bcnn.export_design", text="Export to Keras", icon="EXPORT")
        exports.operator("bcnn.export_onnx", text="Export to ONNX", icon="EXPORT")
        tensorflow.operator("bcnn.train_design", text="Train", icon="PLAY")


classes = (BCNN_PT_designer,)
register, unregister = bpy.utils.register_classes_factory(classes)
