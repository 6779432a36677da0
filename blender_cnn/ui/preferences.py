"""Add-on preferences: the Python that extracts checkpoints when Blender's own has no TensorFlow, and render defaults."""

import os
import tempfile

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core import jobs
from ..core.budget import DEFAULT_BUDGET_GB
from .errors import reports_user_errors

# "blender_cnn" when imported as a package, "bl_ext.<repo>.blender_cnn" when installed as an extension.
ADDON_PACKAGE = __package__.rpartition(".")[0]
ENGINE_ITEMS = (("CYCLES", "Cycles", "Path tracing on the CPU: slower, soft light"),
                ("EEVEE", "Eevee", "Real-time engine on the GPU: fast after its first frame compiles shaders"))


class BCNN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    python_path: StringProperty(
        name=jobs.PREFERENCE_NAME, subtype="FILE_PATH",
        description="A Python program with TensorFlow (tensorflow-cpu 2.21) that extracts checkpoints when "
                    "Blender's own Python cannot import TensorFlow, e.g. the project's .venv/bin/python")

    render_engine: EnumProperty(name="Render Engine", items=ENGINE_ITEMS, default="CYCLES",
                                description="The engine the render operators start with")
    render_samples: IntProperty(name="Render Samples", default=32, min=1,
                                description="The samples per pixel the render operators start with")
    memory_budget: FloatProperty(
        name="Scene Memory Budget (GB)", default=DEFAULT_BUDGET_GB, min=0.1,
        description="The most memory a network's scene may take: above it, wide layers show their first maps "
                    "only, and the panel and labels say so")

    def draw(self, context):
        layout = self.layout
        row = layout.row()
        row.prop(self, "render_engine")
        row.prop(self, "render_samples")
        layout.prop(self, "memory_budget")
        if jobs.tensorflow_in_this_python():
            layout.label(text="TensorFlow is importable in Blender's Python: checkpoints are read here",
                         icon="CHECKMARK")
        layout.prop(self, "python_path")
        layout.operator(BCNN_OT_check_python.bl_idname, icon="CHECKMARK")


class BCNN_OT_check_python(bpy.types.Operator):
    """Check that the Python set in the preferences runs and has TensorFlow"""

    bl_idname = "bcnn.check_python"
    bl_label = "Check Python with TensorFlow"

    @reports_user_errors
    def execute(self, context):
        python = python_with_tensorflow(context)
        if not python:
            raise jobs.no_tensorflow_error()
        jobs.check_external_python(python)
        self.report({"INFO"}, f"{python} has TensorFlow")
        return {"FINISHED"}


def python_with_tensorflow(context):
    """The external Python set in the preferences ('' when unset, or when the add-on is not enabled
    through Blender's add-on system and so has no preferences)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    if addon is None or addon.preferences is None:
        return ""
    return bpy.path.abspath(addon.preferences.python_path) if addon.preferences.python_path else ""


def memory_budget(context):
    """The scene memory budget in GB from the preferences (the default where the add-on has none)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    if addon is None or addon.preferences is None:
        return DEFAULT_BUDGET_GB
    return addon.preferences.memory_budget


def bundle_folder():
    """Where extracted bundles go: the extension's user folder, never the add-on's own folder
    (an update replaces it, and it may not be writable)."""
    if ADDON_PACKAGE.startswith("bl_ext."):
        folder = bpy.utils.extension_path_user(ADDON_PACKAGE, path="bundles", create=True)
        if folder:
            return folder
    return os.path.join(tempfile.gettempdir(), "blender_cnn", "bundles")


classes = (BCNN_AddonPreferences, BCNN_OT_check_python)
register, unregister = bpy.utils.register_classes_factory(classes)
