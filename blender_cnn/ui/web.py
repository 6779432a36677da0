"""Export for Web: a thin operator over ``scene.web_export.export_for_web``."""

import os

import bpy
from bpy.props import BoolProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..scene.web_export import export_for_web, viewer_available, web_paths
from .errors import reports_user_errors
from .render import scene_network


class BCNN_OT_export_web(bpy.types.Operator, ExportHelper):
    """Write the network as shown to a .glb and one HTML page that shows it in any browser, to turn and zoom,
    with no Blender and no network needed"""

    bl_idname = "bcnn.export_web"
    bl_label = "Export for Web"

    filename_ext = ".html"
    filter_glob: StringProperty(default="*.html", options={"HIDDEN"})
    title: StringProperty(name="Title", description="The page's title (empty: the network's name)")
    epochs: BoolProperty(
        name="Epoch Slider",
        default=True,
        description="Add every epoch's cell and connection colors to the page, with a slider to move through them",
    )

    @classmethod
    def poll(cls, context):
        if context.scene is None or scene_network(context) is None:
            cls.poll_message_set("The scene has no network to export")
            return False
        if not viewer_available():
            cls.poll_message_set("The add-on's web viewer is missing: run scripts/setup.sh in its checkout")
            return False
        return True

    def invoke(self, context, event):
        if not self.filepath:
            # The network's name, beside the saved .blend (in the home folder while it is unsaved).
            folder = os.path.dirname(bpy.data.filepath) if bpy.data.filepath else os.path.expanduser("~")
            self.filepath = web_paths(folder, scene_network(context).name)[1][: -len(".glb")] + self.filename_ext
        return ExportHelper.invoke(self, context, event)

    @reports_user_errors
    def execute(self, context):
        network = scene_network(context)
        written = export_for_web(network, bpy.path.abspath(self.filepath), title=self.title or None, epochs=self.epochs)
        slider = f", epochs {written.epochs[0]}-{written.epochs[-1]}" if written.epochs else ""
        # Why a slider was asked for and not made (a bundle that moved, epochs that draw differently).
        why = f"; {written.note}" if self.epochs and not written.epochs and written.note else ""
        self.report(
            {"INFO"},
            f"Wrote {written.html} ({written.html_bytes / 1e6:.1f} MB{slider}) and {os.path.basename(written.glb)}{why}",
        )
        return {"FINISHED"}


classes = (BCNN_OT_export_web,)
register, unregister = bpy.utils.register_classes_factory(classes)
