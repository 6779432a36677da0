"""Operators: each is a thin wrapper over a function scripts call too."""

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..core.bundle import load_bundle
from ..core.errors import BlenderCNNError
from ..scene.network import build_network
from ..scene.stage import set_up_stage


class BCNN_OT_import_bundle(bpy.types.Operator, ImportHelper):
    """Build the 3D scene of a network from a network bundle (.bcnn.npz)"""

    bl_idname = "bcnn.import_bundle"
    bl_label = "Import Network Bundle"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    epoch: IntProperty(name="Epoch", default=-1,
                       description="Epoch whose activations are shown (-1: the last one)")
    sample: IntProperty(name="Sample", default=0, min=0, description="Input sample whose activations are shown")
    frame_camera: BoolProperty(name="Set Up Camera", default=True,
                               description="Add a camera, light and dark world that frame the network")

    def execute(self, context):
        try:
            bundle = load_bundle(self.filepath)
            network = build_network(bundle, epoch=self.epoch, sample=self.sample)
        except BlenderCNNError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        if self.frame_camera:
            set_up_stage(network, context.scene)
        for selected in context.selected_objects:
            selected.select_set(False)
        network.select_set(True)
        context.view_layer.objects.active = network
        self.report({"INFO"}, f"Built {bundle.name}: {len(bundle.layers)} layers, epoch "
                              f"{bundle.epochs[bundle.epoch_index(self.epoch)]}, sample {self.sample}")
        return {"FINISHED"}


def menu_import(self, _context):
    self.layout.operator(BCNN_OT_import_bundle.bl_idname, text="CNN Network Bundle (.bcnn.npz)")


classes = (BCNN_OT_import_bundle,)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    _unregister_classes()
