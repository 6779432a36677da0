"""Add-on preferences: the Python that extracts checkpoints when Blender's own has no TensorFlow (and the button
that installs one), the Dask cluster long work may use, and render defaults."""

import os
import tempfile

import bpy
from bpy.props import EnumProperty, FloatProperty, IntProperty, StringProperty

from ..core import jobs
from ..core.budget import DEFAULT_BUDGET_GB
from ..core.errors import BlenderCNNError
from ..extract import environment
from ..scene.user_folders import user_folder
from .errors import reports_user_errors
from .jobs import BackgroundJob, running_jobs

# "blender_cnn" when imported as a package, "bl_ext.<repo>.blender_cnn" when installed as an extension.
ADDON_PACKAGE = __package__.rpartition(".")[0]
ENGINE_ITEMS = (
    ("CYCLES", "Cycles", "Path tracing on the CPU: slower, soft light"),
    ("EEVEE", "Eevee", "Real-time engine on the GPU: fast after its first frame compiles shaders"),
)


class BCNN_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_PACKAGE

    python_path: StringProperty(
        name=jobs.PREFERENCE_NAME,
        subtype="FILE_PATH",
        description="A Python program with TensorFlow (tensorflow-cpu 2.21) that extracts checkpoints when "
        "Blender's own Python cannot import TensorFlow, e.g. the project's .venv/bin/python",
    )

    cluster_address: StringProperty(
        name="Dask Cluster",
        description="Where Import Checkpoint extracts a run's epochs and Render Animation renders its frames: "
        "local:N (N worker processes on this machine) or a Dask scheduler's address (tcp://host:8786); empty: "
        "this Blender alone. See docs/scaling.md",
    )

    render_engine: EnumProperty(
        name="Render Engine",
        items=ENGINE_ITEMS,
        default="CYCLES",
        description="The engine the render operators start with",
    )
    render_samples: IntProperty(
        name="Render Samples", default=32, min=1, description="The samples per pixel the render operators start with"
    )
    memory_budget: FloatProperty(
        name="Scene Memory Budget (GB)",
        default=DEFAULT_BUDGET_GB,
        min=0.1,
        description="The most memory a network's scene may take: above it, wide layers show their first maps "
        "only, and the panel and labels say so",
    )

    def draw(self, context):
        layout = self.layout
        row = layout.row()
        row.prop(self, "render_engine")
        row.prop(self, "render_samples")
        layout.prop(self, "memory_budget")
        layout.prop(self, "cluster_address")
        if jobs.tensorflow_in_this_python():
            layout.label(
                text="TensorFlow is importable in Blender's Python: checkpoints are read here", icon="CHECKMARK"
            )
        layout.prop(self, "python_path")
        row = layout.row()
        row.operator(BCNN_OT_check_python.bl_idname, icon="CHECKMARK")
        installed = environment.installed_environment(environment_folder())
        row.operator(
            BCNN_OT_install_tensorflow.bl_idname,
            icon="IMPORT",
            text="Reinstall TensorFlow" if installed else jobs.INSTALL_BUTTON,
        )
        for job in running_jobs:
            if job.label == environment.LABEL:
                layout.label(text=job.status_text, icon="TIME")
        if not bpy.app.online_access:
            layout.label(text=f"{jobs.INSTALL_BUTTON} needs Allow Online Access (System > Network)", icon="INFO")
        if installed is None:
            layout.label(
                text=f"{jobs.INSTALL_BUTTON} makes a Python of the add-on's own with Blender's Python and "
                "installs tensorflow-cpu, keras and tf-keras into it (with onnxruntime and Dask distributed)"
            )
            layout.label(text="(about 300 MB from pip's package index, 1.6 GB on disk; Esc cancels)")
        else:
            versions = ", ".join(installed["requirements"] + installed["no_deps"])
            if environment.is_current(installed):
                layout.label(text=f"Installed: {versions}", icon="CHECKMARK")
            else:
                layout.label(
                    text=f"Installed: {versions}; the add-on now needs other versions, reinstall", icon="ERROR"
                )
            layout.label(text=f"in {installed['folder']}")


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


class BCNN_OT_install_tensorflow(BackgroundJob, bpy.types.Operator):
    """Make a Python environment of the add-on's own with Blender's Python, install the TensorFlow, Keras and \
tf-keras versions the add-on is tested with into it from pip's package index, and import checkpoints with it"""

    bl_idname = "bcnn.install_tensorflow"
    bl_label = jobs.INSTALL_BUTTON

    def invoke(self, context, event):
        main = context.window_manager.windows[0] if context.window_manager.windows else None
        if main is not None and context.window is not None and context.window != main:
            # A modal operator ends with its window: run in the main one, so that closing Preferences goes on.
            with context.temp_override(window=main):
                bpy.ops.bcnn.install_tensorflow("INVOKE_DEFAULT")
            return {"FINISHED"}
        return BackgroundJob.invoke(self, context, event)

    @reports_user_errors
    def execute(self, context):
        if not bpy.app.online_access:  # Blender's rule for extensions: no download unless the user allows it
            raise BlenderCNNError(
                "Online access",
                f"is off (Preferences > System > Network); {self.bl_label} "
                "downloads TensorFlow with pip. Allow online access, or set "
                f"'{jobs.PREFERENCE_NAME}' to a Python that has it",
            )
        return self.run_job(context, environment.start_install(environment_folder()))

    def job_finished(self, context):
        python = environment.environment_python(self._job.result_path)
        addon = context.preferences.addons.get(ADDON_PACKAGE)
        if addon is not None and addon.preferences is not None:
            addon.preferences.python_path = python
        for window in context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "PREFERENCES":
                    area.tag_redraw()
        self.report({"INFO"}, f"TensorFlow installed; checkpoints are now imported with {python}")
        return {"FINISHED"}

    def _job_ended(self, context):
        if self._job.state == jobs.CANCELLED:
            self.report({"WARNING"}, f"{self.bl_label} cancelled; nothing was installed")
            return {"CANCELLED"}
        return BackgroundJob._job_ended(self, context)


def python_with_tensorflow(context):
    """The external Python set in the preferences, else the one Install TensorFlow made ('' when there is
    neither; the preferences are missing when the add-on is not enabled through Blender's add-on system)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    if addon is not None and addon.preferences is not None and addon.preferences.python_path:
        return bpy.path.abspath(addon.preferences.python_path)
    installed = environment.installed_environment(environment_folder())
    return installed["python"] if installed else ""


def environment_folder():
    """Where Install TensorFlow puts its Python environment: the extension's (or add-on's) user folder."""
    return user_folder("python")


def cluster_address(context):
    """The Dask cluster set in the preferences ('' for none: the work stays in this Blender)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    if addon is None or addon.preferences is None:
        return ""
    return addon.preferences.cluster_address.strip()


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


classes = (BCNN_AddonPreferences, BCNN_OT_check_python, BCNN_OT_install_tensorflow)
register, unregister = bpy.utils.register_classes_factory(classes)
