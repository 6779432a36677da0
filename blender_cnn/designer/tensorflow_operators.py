"""The designer's operators that need another package: export a design to Keras (TensorFlow) or ONNX (onnx), train
it (TensorFlow) and show its epochs.

All run as ``core.jobs`` jobs (in Blender's Python when it has the package,
else in the Python set in the add-on's preferences), with Blender's progress
bar, the job's status text and Esc to cancel. Training ends by building the
trained network in place of the design's network, keeping its settings
(``operators.place_design_network``).
"""

import os

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ExportHelper

from ..core.errors import BlenderCNNError
from ..extract.export import KERAS_SUFFIX, start_export
from ..extract.onnx_export import ONNX_SUFFIX, start_onnx_export
from ..extract.train_design import start_training, training_epochs
from ..scene.network import network_bundle
from ..scene.user_folders import safe_file_name, user_folder
from ..ui import preferences
from ..ui.errors import reports_user_errors
from ..ui.jobs import BackgroundJob
from .operators import OnDesignTree, design_tree, designed_network, place_design_network, settings_digest
from .tree import check_tree

_SEED_DESCRIPTION = (
    "Seed of the design's random weights (-1: the seed the design's scene was built with, "
    "0 when it was not built); with Build Scene's seed the model computes what the scene shows"
)


def runs_folder():
    """Where trainings started from Blender write their runs by default (never the add-on's folder)."""
    return user_folder("runs")


def built_seed(design_name, scene):
    """The seed the design's network in ``scene`` was built with; 0 when none was built from random weights."""
    network = designed_network(design_name, scene)
    if network is None:
        return 0
    try:
        source = network_bundle(network).manifest.get("source") or {}
    except BlenderCNNError:  # its bundle was deleted or moved
        return 0
    return int(source.get("seed", 0)) if source.get("kind") == "design" else 0


def default_export_path(design_name, suffix=KERAS_SUFFIX):
    """``<design name><suffix>`` beside the .blend file (or just the name, for Blender's file browser to place)."""
    folder = bpy.path.abspath("//") if bpy.data.filepath else ""
    return os.path.join(folder, safe_file_name(design_name) + suffix)


def default_run_folder(design, epochs, images, seed):
    """``<runs folder>/<design name>-<hash of what was trained>``: the same training lands in the same
    folder (and replaces it), another one beside it."""
    return os.path.join(
        runs_folder(), f"{safe_file_name(design['name'])}-{settings_digest(design, epochs, images, seed)[:8]}"
    )


def design_images(design):
    """The image folder a design's training section names, made absolute; None for a packaged dataset.

    A design in Blender has no file of its own, so a relative folder is taken
    against the .blend file's folder.
    """
    training = design.get("training")
    spec = training.get("dataset") if isinstance(training, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("folder"), str):
        return None
    return os.path.abspath(os.path.join(bpy.path.abspath("//"), os.path.expanduser(spec["folder"])))


class DesignExport(OnDesignTree, BackgroundJob, ExportHelper):
    """What every export of a design does: a file browser on ``<design name><filename_ext>`` (in the folder of
    the last export), the weights of the seed the design's scene was built with, the job and its report.

    An export names its file suffix (``filename_ext``), what it writes (``model_kind``) and its job's starter
    (``start_export_job(design, path, seed, python_path=...)``).
    """

    model_kind = ""
    # SKIP_SAVE: each export starts from the seed of the scene as it is now.
    seed: IntProperty(name="Seed", default=-1, min=-1, description=_SEED_DESCRIPTION, options={"SKIP_SAVE"})

    @reports_user_errors
    def invoke(self, context, event):
        self.run_in_background = True
        tree = design_tree(context, self.tree_name)
        if self.seed < 0:
            self.seed = built_seed(tree.design_name, context.scene)
        # The design's name, in the folder of the last export when there was one.
        name = default_export_path(tree.design_name, self.filename_ext)
        folder = os.path.dirname(bpy.path.abspath(self.filepath)) if self.filepath else ""
        self.filepath = os.path.join(folder, os.path.basename(name)) if folder else name
        return ExportHelper.invoke(self, context, event)

    @reports_user_errors
    def execute(self, context):
        design = check_tree(design_tree(context, self.tree_name))
        seed = self.seed if self.seed >= 0 else built_seed(design["name"], context.scene)
        job = self.start_export_job(
            design, bpy.path.abspath(self.filepath), seed, python_path=preferences.python_with_tensorflow(context)
        )
        self._summary = f"Exported design {design['name']} as {self.model_kind} (weights of seed {seed})"
        return self.run_job(context, job)

    def job_finished(self, context):
        self.report({"INFO"}, f"{self._summary} to {self._job.result_path}")
        return {"FINISHED"}


class BCNN_OT_export_design(DesignExport, bpy.types.Operator):
    """Save the design as a Keras model file (.keras, loads in safe mode) with the weights its scene shows. \
Needs TensorFlow in Blender's Python or in the Python set in the add-on's preferences"""

    bl_idname = "bcnn.export_design"
    bl_label = "Export Design to Keras"
    bl_options = {"REGISTER"}

    filename_ext = KERAS_SUFFIX
    filter_glob: StringProperty(default="*.keras", options={"HIDDEN"})
    model_kind = "a Keras model"
    start_export_job = staticmethod(start_export)


class BCNN_OT_export_onnx(DesignExport, bpy.types.Operator):
    """Save the design as an ONNX model file (.onnx, NCHW input, as PyTorch exports one) with the weights its \
scene shows. Needs the onnx package in Blender's Python or in the Python set in the add-on's preferences"""

    bl_idname = "bcnn.export_onnx"
    bl_label = "Export Design to ONNX"
    bl_options = {"REGISTER"}

    filename_ext = ONNX_SUFFIX
    filter_glob: StringProperty(default="*.onnx", options={"HIDDEN"})
    model_kind = "an ONNX model"
    start_export_job = staticmethod(start_onnx_export)


class BCNN_OT_train_design(OnDesignTree, BackgroundJob, bpy.types.Operator):
    """Train the design with TensorFlow (a checkpoint per epoch), then show every epoch: the trained network \
replaces the design's network and keeps its settings. Esc cancels and leaves the scene as it was"""

    bl_idname = "bcnn.train_design"
    bl_label = "Train Design"
    # No REGISTER: a redo would train again, synchronously, freezing Blender.
    bl_options = {"UNDO"}

    # SKIP_SAVE on what belongs to one design (its epochs, seed and run): each training starts from the design.
    epochs: IntProperty(
        name="Epochs",
        default=0,
        min=0,
        soft_max=100,
        options={"SKIP_SAVE"},
        description="Epochs to train (0: the design's training section, 8 when it has none)",
    )
    dataset: EnumProperty(
        name="Dataset",
        default="DESIGN",
        items=[
            (
                "DESIGN",
                "Design's Dataset",
                "The dataset the design's training section names (digits when it "
                "names none): 8x8 digits, resized to the input",
            ),
            (
                "FOLDER",
                "Image Folder",
                "A folder with one subfolder of images per class; the subfolders' names are the classes",
            ),
        ],
    )
    image_folder: StringProperty(
        name="Image Folder", subtype="DIR_PATH", description="The folder of class subfolders to train on"
    )
    run_folder: StringProperty(
        name="Run Folder",
        subtype="DIR_PATH",
        options={"SKIP_SAVE"},
        description="Where the run is written: a checkpoint per epoch and the bundle of all epochs (empty: a "
        "folder named after the design in the add-on's runs folder). It must be new, empty or an "
        "earlier run, which is replaced once training is complete",
    )
    seed: IntProperty(
        name="Seed",
        default=-1,
        min=-1,
        options={"SKIP_SAVE"},
        description="Seed of the initial weights (-1: the seed the design's scene was built with, "
        "0 when it was not built): epoch 0 is the network Build Scene shows",
    )
    frame_camera: BoolProperty(
        name="Set Up Camera",
        default=True,
        description="When the design has no network yet, add a camera, light and world that frame it",
    )

    @reports_user_errors
    def invoke(self, context, event):
        self.run_in_background = True
        tree = design_tree(context, self.tree_name)
        design = check_tree(tree)
        if self.epochs == 0:
            self.epochs = training_epochs(design)
        if self.seed < 0:
            self.seed = built_seed(design["name"], context.scene)
        return context.window_manager.invoke_props_dialog(self, width=420)

    def draw(self, _context):
        column = self.layout.column()
        column.prop(self, "epochs")
        column.prop(self, "dataset")
        if self.dataset == "FOLDER":
            column.prop(self, "image_folder")
        column.prop(self, "run_folder")
        column.prop(self, "seed")
        column.prop(self, "frame_camera")

    def images(self, design):
        """The image folder to train on, or None for the design's packaged dataset."""
        if self.dataset != "FOLDER":
            return design_images(design)
        if not self.image_folder:
            raise BlenderCNNError("Image Folder", "is empty; choose a folder with one subfolder of images per class")
        return bpy.path.abspath(self.image_folder)

    @reports_user_errors
    def execute(self, context):
        design = check_tree(design_tree(context, self.tree_name))
        images = self.images(design)
        seed = self.seed if self.seed >= 0 else built_seed(design["name"], context.scene)
        epochs = self.epochs or None
        run_dir = (
            bpy.path.abspath(self.run_folder) if self.run_folder else default_run_folder(design, epochs, images, seed)
        )
        job = start_training(
            design, run_dir, epochs, images, seed, python_path=preferences.python_with_tensorflow(context)
        )
        self._design = design
        return self.run_job(context, job)

    @reports_user_errors
    def job_finished(self, context):
        network, restored = place_design_network(
            self._design["name"], self._job.bundle_path, context, self.frame_camera
        )
        epochs = network_bundle(network).epochs
        summary = (
            f"Trained design {self._design['name']} for {epochs[-1]} epochs into {self._job.out_path}; "
            f"showing epochs {epochs[0]}..{epochs[-1]}"
        )
        if restored is not None:
            summary += f"; replaced the previous network, kept {restored} settings"
        self.report({"INFO"}, summary)
        return {"FINISHED"}


classes = (BCNN_OT_export_design, BCNN_OT_export_onnx, BCNN_OT_train_design)
register, unregister = bpy.utils.register_classes_factory(classes)
