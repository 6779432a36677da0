"""Check Composition: the composition checks of ``scene/composition.py`` on the active network, listed in the
sidebar; with Fix, the stage first sizes the texts and frames the camera (``scene/stage.py``'s ``fit_texts``)."""

import bpy
from bpy.props import BoolProperty

from ..core.errors import BlenderCNNError
from ..scene.composition import check_camera_moves, check_composition, keyframes, record_problems, recorded_problems
from ..scene.stage import fit_texts
from .errors import reports_user_errors
from .render import scene_network

# Problems the panel lists; the rest are counted.
PROBLEMS_SHOWN = 8


def check(context, network, fix=False):
    """The problems of the scene camera's picture of ``network`` (at every keyframe when it moves), recorded on the
    network for the panel; ``fix`` lets the stage size the texts and frame a still camera first."""
    scene = context.scene
    camera = scene.camera
    if camera is None:
        raise BlenderCNNError(scene.name, "has no camera to check (set up the stage, or add one)")
    moving = bool(keyframes(camera))
    if fix:
        if moving:
            raise BlenderCNNError(camera.name, "moves (it has keyframes): Fix frames a still camera; check it only")
        fit_texts(network, camera, scene)
    problems = check_camera_moves(scene, network, camera) if moving else check_composition(scene, network, camera)
    record_problems(network, scene, problems)
    return problems


class BCNN_OT_check_composition(bpy.types.Operator):
    """Check the scene camera's picture of the network (the active one, else the scene's) at the render size: texts out of the frame, over each other
    or over cells, too small to read, and the network not filling the frame; the problems are listed in the panel.
    Fix first lets the stage size the texts and frame the camera"""

    bl_idname = "bcnn.check_composition"
    bl_label = "Check Composition"
    bl_options = {"REGISTER", "UNDO"}

    fix: BoolProperty(  # type: ignore[valid-type]  # bpy's property annotations
        name="Fix",
        description="First size and place the texts and frame the camera as the stage does, then check",
        default=False,
    )

    @classmethod
    def poll(cls, context):
        return getattr(context, "scene", None) is not None and scene_network(context) is not None

    @reports_user_errors
    def execute(self, context):
        network = scene_network(context)
        problems = check(context, network, self.fix)
        for problem in problems[:PROBLEMS_SHOWN]:
            self.report({"WARNING"}, str(problem))
        if len(problems) > PROBLEMS_SHOWN:
            self.report({"WARNING"}, f"... and {len(problems) - PROBLEMS_SHOWN} more (listed in the panel)")
        if not problems:
            self.report({"INFO"}, f"{network.name}: nothing to fix in the composition")
        return {"FINISHED"}


def draw_composition(layout, network):
    """The panel's row: Check and Fix, and the last check's problems."""
    row = layout.row(align=True)
    row.operator(BCNN_OT_check_composition.bl_idname, text="Check Composition", icon="VIEWZOOM").fix = False
    row.operator(BCNN_OT_check_composition.bl_idname, text="Fix", icon="MODIFIER").fix = True
    recorded = recorded_problems(network)
    if recorded is None:
        return
    size, lines = recorded
    box = layout.box()
    if not lines:
        box.label(text=f"Composition at {size}: nothing to fix", icon="CHECKMARK")
        return
    box.label(text=f"Composition at {size}: {len(lines)} {'problem' if len(lines) == 1 else 'problems'}", icon="ERROR")
    for line in lines[:PROBLEMS_SHOWN]:
        box.label(text=line)
    if len(lines) > PROBLEMS_SHOWN:
        box.label(text=f"... and {len(lines) - PROBLEMS_SHOWN} more")


classes = (BCNN_OT_check_composition,)
register, unregister = bpy.utils.register_classes_factory(classes)
