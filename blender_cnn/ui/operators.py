"""Import operators (bundle, checkpoint) and Show Image: thin wrappers over functions scripts call too."""

import os

import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from ..core.bundle import load_bundle
from ..core.errors import BlenderCNNError
from ..extract.extraction import ExtractionOptions, start_extraction
from ..scene.network import build_network, fit_rows, show_image
from ..scene.stage import set_up_stage
from . import preferences
from .errors import reports_user_errors
from .jobs import BackgroundJob
from .polls import OnActiveNetwork


def import_bundle(context, path, epoch=-1, sample=0, frame_camera=True, every_layer=False):
    """Build the network of the bundle at ``path`` into the scene, framed, selected and active.

    ``every_layer`` shows each layer on its own instead of units with their
    plumbing folded in (``core/graph.py``). Returns ``(network object,
    one-line summary)``; raises ``BlenderCNNError`` with the scene unchanged
    when the bundle cannot be built.
    """
    bundle = load_bundle(path)
    network = build_network(
        bundle,
        epoch=epoch,
        sample=sample,
        memory_budget_gb=preferences.memory_budget(context),
        detailed=True if every_layer else None,
    )
    if frame_camera:
        set_up_stage(network, context.scene)
    for selected in context.selected_objects:
        selected.select_set(False)
    network.select_set(True)
    context.view_layer.objects.active = network
    summary = (
        f"Built {bundle.name}: {len(bundle.layers)} layers, epoch "
        f"{bundle.epochs[bundle.epoch_index(epoch)]}, sample {sample}"
    )
    return network, summary


class _ViewOptions:
    """The options both importers share: what the built scene shows."""

    epoch: IntProperty(name="Epoch", default=-1, description="Epoch whose activations are shown (-1: the last one)")
    sample: IntProperty(name="Sample", default=0, min=0, description="Input sample whose activations are shown")
    frame_camera: BoolProperty(
        name="Set Up Camera", default=True, description="Add a camera, light and dark world that frame the network"
    )
    every_layer: BoolProperty(
        name="Show Every Layer",
        default=False,
        description="Each layer on its own, BatchNormalization and activations included, "
        "instead of units that fold them into the layer they finish (deep "
        "networks, see the README)",
    )


class BCNN_OT_import_bundle(bpy.types.Operator, ImportHelper, _ViewOptions):
    """Build the 3D scene of a network from a network bundle (.bcnn.npz)"""

    bl_idname = "bcnn.import_bundle"
    bl_label = "Import Network Bundle"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})

    @reports_user_errors
    def execute(self, context):
        _network, summary = import_bundle(
            context, self.filepath, self.epoch, self.sample, self.frame_camera, self.every_layer
        )
        self.report({"INFO"}, summary)
        return {"FINISHED"}


class BCNN_OT_import_checkpoint(BackgroundJob, bpy.types.Operator, ImportHelper, _ViewOptions):
    """Read TensorFlow/Keras checkpoints or ONNX files (one file, or a run folder with one per epoch) and build \
the network's 3D scene. Runs TensorFlow (onnxruntime for ONNX) in Blender's Python if it has it, else in the \
Python set in the add-on's preferences"""

    bl_idname = "bcnn.import_checkpoint"
    bl_label = "Import Network Checkpoint"
    bl_options = {"REGISTER", "UNDO"}

    # One file browser for both: a selected file is the source; with none selected, the folder is.
    # SKIP_SAVE: a script that passes only ``directory`` must not inherit the last file picked.
    filepath: StringProperty(name="File Path", subtype="FILE_PATH", options={"HIDDEN", "SKIP_SAVE"})
    directory: StringProperty(name="Run Folder", subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})
    filter_glob: StringProperty(default="*.keras;*.h5;*.hdf5;*.index;*.onnx", options={"HIDDEN"})
    filter_folder: BoolProperty(default=True, options={"HIDDEN"})

    architecture: StringProperty(
        name="Architecture",
        subtype="FILE_PATH",
        description="Optional network for weights-only files and TensorFlow checkpoints: a .keras or .h5 "
        "model, a model.to_json() file or a preset (default: found beside the checkpoints)",
    )
    samples: StringProperty(
        name="Samples",
        subtype="FILE_PATH",
        description="Optional .npz with 'inputs' and 'labels' to record activations for "
        "(default: samples.npz beside the checkpoints; with none, synthetic test patterns)",
    )
    image_folder: StringProperty(
        name="Image Folder",
        subtype="DIR_PATH",
        description="Optional folder of PNG/JPEG images to use as the samples, resized and converted to the "
        "network's input (instead of the run's samples)",
    )
    samples_per_class: IntProperty(
        name="Samples per Class",
        default=0,
        min=0,
        description="How many samples of every class to record (0: the samples the run chose)",
    )
    float16: BoolProperty(
        name="Store as float16", default=False, description="Store activations as float16: half the bundle's size"
    )
    importance: BoolProperty(
        name="Compute Importance",
        default=True,
        description="Gradient x activation importance of every layer and class, for Show "
        "Importance and pruning by importance; costs extra backward passes "
        "(VGG16 with 4 samples: 82 s instead of 34 s)",
    )
    allow_unsafe: BoolProperty(
        name="Allow Unsafe Loading",
        default=False,
        description="WARNING: loads Lambda layers, which run Python code stored in the file. "
        "Only for files from a source you trust",
    )

    # What the last run extracted, so that redoing it (Adjust Last Operation) only rebuilds.
    extracted_bundle: StringProperty(options={"HIDDEN", "SKIP_SAVE"})
    extracted_from: StringProperty(options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        self.run_in_background = True
        return ImportHelper.invoke(self, context, event)

    def draw(self, context):
        layout = self.layout
        layout.label(text="Pick a checkpoint, or open a run folder", icon="INFO")
        layout.label(text="and import with no file selected")
        column = layout.column()
        column.prop(self, "architecture")
        column.prop(self, "samples")
        column.prop(self, "image_folder")
        column.prop(self, "samples_per_class")
        column.prop(self, "float16")
        column.prop(self, "importance")
        column.prop(self, "allow_unsafe")
        if self.allow_unsafe:
            column.label(text="Trusted files only: they can run code", icon="ERROR")
        column.separator()
        column.prop(self, "epoch")
        column.prop(self, "sample")
        column.prop(self, "frame_camera")
        column.prop(self, "every_layer")

    def source(self):
        """The checkpoint file picked, else the folder."""
        path = bpy.path.abspath(self.filepath) if self.filepath else ""
        if path and os.path.isfile(path):
            return path
        if self.directory:
            return bpy.path.abspath(self.directory)
        return path

    def extraction_options(self, context):
        """The extraction options the user set, with paths made absolute."""
        return ExtractionOptions(
            architecture=bpy.path.abspath(self.architecture) if self.architecture else None,
            samples=bpy.path.abspath(self.samples) if self.samples else None,
            images=tuple(image_files(bpy.path.abspath(self.image_folder))) if self.image_folder else (),
            samples_per_class=self.samples_per_class or None,
            float16=self.float16,
            allow_unsafe=self.allow_unsafe,
            importance=self.importance,
            dask=preferences.cluster_address(context),
        )

    @staticmethod
    def _extraction_key(source, options):
        return repr((os.path.normpath(source), options))

    @reports_user_errors
    def execute(self, context):
        source = self.source()
        self._options = self.extraction_options(context)
        if (
            self.extracted_bundle
            and self.extracted_from == self._extraction_key(source, self._options)
            and os.path.isfile(self.extracted_bundle)
        ):
            return self._build(context, self.extracted_bundle)
        job = start_extraction(
            source,
            preferences.bundle_folder(),
            options=self._options,
            python_path=preferences.python_with_tensorflow(context),
        )
        return self.run_job(context, job)

    def job_finished(self, context):
        self.extracted_bundle = self._job.bundle_path
        self.extracted_from = self._extraction_key(self._job.source, self._options)
        return self._build(context, self._job.bundle_path)

    @reports_user_errors
    def _build(self, context, bundle_path):
        _network, summary = import_bundle(
            context, bundle_path, self.epoch, self.sample, self.frame_camera, self.every_layer
        )
        self.report({"INFO"}, summary)
        return {"FINISHED"}


class BCNN_OT_show_image(OnActiveNetwork, bpy.types.Operator, ImportHelper):
    """Run an image file (PNG/JPEG) through the selected network's weights and show every layer's \
activations; needs no TensorFlow"""

    bl_idname = "bcnn.show_image"
    bl_label = "Show Image"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: StringProperty(default="*.png;*.jpg;*.jpeg", options={"HIDDEN"})
    epoch: IntProperty(name="Epoch", default=-1, description="Epoch whose weights compute it (-1: the last one)")
    invert: BoolProperty(
        name="Invert",
        default=False,
        description="Dark drawing on light paper: invert it, as digit data sets are light on dark",
    )

    @reports_user_errors
    def execute(self, context):
        outputs = show_image(context.active_object, self.filepath, self.epoch, self.invert)
        self.report({"INFO"}, f"Showing {os.path.basename(self.filepath)}: {len(outputs)} layers computed")
        return {"FINISHED"}


class BCNN_OT_fit_rows(OnActiveNetwork, bpy.types.Operator):
    """Wrap the network into rows that fit a 16:9 frame with its blocks as expanded now, and frame it again"""

    bl_idname = "bcnn.fit_rows"
    bl_label = "Fit Rows"
    bl_options = {"REGISTER", "UNDO"}

    @reports_user_errors
    def execute(self, context):
        length = fit_rows(context.active_object)
        if context.scene.camera is not None:
            set_up_stage(context.active_object, context.scene)
        self.report({"INFO"}, f"Rows of {length} columns")
        return {"FINISHED"}


def image_files(folder):
    """The PNG and JPEG files in ``folder``, by name; refuses a folder with none."""
    if not os.path.isdir(folder):
        raise BlenderCNNError(folder, "no such image folder")
    names = sorted(name for name in os.listdir(folder) if name.lower().endswith((".png", ".jpg", ".jpeg")))
    if not names:
        raise BlenderCNNError(folder, "holds no PNG or JPEG images")
    return [os.path.join(folder, name) for name in names]


def menu_import(self, _context):
    self.layout.operator(BCNN_OT_import_bundle.bl_idname, text="CNN Network Bundle (.bcnn.npz)")
    self.layout.operator(
        BCNN_OT_import_checkpoint.bl_idname, text="Network Checkpoint (.keras, .h5, .onnx, run folder)"
    )


classes = (BCNN_OT_import_bundle, BCNN_OT_import_checkpoint, BCNN_OT_show_image, BCNN_OT_fit_rows)
_register_classes, _unregister_classes = bpy.utils.register_classes_factory(classes)


def register():
    _register_classes()
    bpy.types.TOPBAR_MT_file_import.append(menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(menu_import)
    _unregister_classes()
