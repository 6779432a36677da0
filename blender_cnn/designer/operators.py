"""Operators of the network designer: new design from a preset, save a preset, build the scene, design from a network.

Each is a thin wrapper over a function scripts can call too (``build_design_scene``,
``save_preset``, ``new_design``). Errors are one report from a BlenderCNNError.
Build Scene computes a big design's bundle (VGG16's takes seconds) as a
``core.jobs`` job, with progress and Esc to cancel; ``tensorflow_operators``
export and train designs.
"""

import hashlib
import json
import os

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from ..core import design as design_core
from ..core import jobs
from ..core.errors import BlenderCNNError
from ..core.presets import load_design
from ..scene.network import (
    build_network,
    get_network_input,
    is_network,
    network_bundle,
    set_network_input,
)
from ..scene.replacing import plain_inputs, remove_network, take_animation, write_inputs
from ..scene.user_folders import builtin_presets_folder, enum_items, preset_entries, safe_file_name, user_folder
from ..ui.errors import reports_user_errors
from ..ui.jobs import BackgroundJob
from ..ui.polls import OnActiveNetwork
from . import convert
from .tree import TREE_TYPE, check_tree, refresh, tree_from_design

DESIGN_PROPERTY = "blender_cnn_design"  # on a network built from a design: the design's name
PATTERN_NAMES = ("centred square", "diagonal stripe", "checkerboard")  # core.design.synthetic_inputs' order


# ---------------------------------------------------------------- folders


def user_presets_folder():
    """Where the user's own design presets are saved (never the add-on's folder)."""
    return user_folder("presets")


def design_cache_folder():
    """Where the bundles of built designs are written (the network objects point at them)."""
    return user_folder("designs")


def preset_files():
    """``[(identifier, label, path)]``: built-in presets, then the user's."""
    return preset_entries(builtin_presets_folder(), user_presets_folder())


_preset_items = enum_items(lambda: preset_files(), "No presets")


# ---------------------------------------------------------------- the functions behind the operators


def new_design(design, context=None, name=None):
    """A new design tree showing ``design``, shown in the node editor of ``context`` if there is one."""
    tree = tree_from_design(design, name)
    show_tree(tree, context)
    return tree


def show_tree(tree, context):
    space = getattr(context, "space_data", None) if context is not None else None
    if space is not None and space.type == "NODE_EDITOR":
        try:
            space.tree_type = TREE_TYPE
            space.node_tree = tree
        except (AttributeError, TypeError, ValueError):
            pass


def save_preset(tree, name, folder=None):
    """Write the tree's design as ``<folder>/<name>.json`` (the user's presets); refuses an invalid design."""
    design = check_tree(tree)
    design = {**design, "name": name}
    folder = folder or user_presets_folder()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, safe_file_name(name) + ".json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(design, handle, indent=2)
        handle.write("\n")
    return path


def design_bundle_file(design, seed, pattern):
    """Where the cache keeps the bundle of ``design`` with random weights of ``seed`` and inputs ``pattern``.

    The file name holds a hash of the design, seed and inputs, so a bundle an
    older network (or an undo step) points at is never overwritten.
    """
    digest = settings_digest(design, int(seed), pattern)[:12]
    return os.path.join(design_cache_folder(), f"{safe_file_name(design['name'])}-{digest}.bcnn.npz")


def settings_digest(*values):
    """A hash of JSON-like ``values``: names a file by everything that went into it."""
    key = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha1(key.encode("utf-8")).hexdigest()


def start_design_bundle(design, seed, pattern):
    """A ``core.jobs`` job writing the (valid) design's bundle into the cache, or None when it is there already.

    The numpy forward pass runs in a thread, one progress step per layer.
    """
    path = design_bundle_file(design, seed, pattern)
    if os.path.isfile(path):
        return None
    inputs = None
    if pattern != "ALL":
        inputs = design_core.synthetic_inputs(design["input_shape"])[int(pattern) : int(pattern) + 1]

    def run(out_path, log, should_stop):
        design_core.design_bundle(
            design,
            out_path,
            seed=seed,
            inputs=inputs,
            should_stop=should_stop,
            progress=lambda done, total, name: log(f"layer {name}: {done}/{total}"),
        )

    task = jobs.Task(
        "Computing activations",
        f"design {design['name']!r}",
        path,
        run,
        progress_total=len(design_core.infer_shapes(design)) - 1,
        starting="starting...",
    )
    return jobs.start_job(task)


def design_bundle_path(design, seed, pattern):
    """A bundle of ``design`` (random weights of ``seed``) in the cache, written unless it is there already."""
    job = start_design_bundle(design, seed, pattern)
    return job.wait() if job is not None else design_bundle_file(design, seed, pattern)


def designed_network(design_name, scene=None):
    """The network object built from the design ``design_name``, or None."""
    for obj in scene.objects if scene is not None else bpy.data.objects:
        if obj.get(DESIGN_PROPERTY) == design_name and is_network(obj):
            return obj
    return None


def build_design_scene(tree, context, seed=0, pattern="ALL", frame_camera=True):
    """Validate the tree's design, write its bundle and build its network; returns ``(network, summary)``.

    A network built before from a design of the same name is replaced in
    place (``place_design_network``). An invalid design raises
    BlenderCNNError and leaves the scene unchanged.
    """
    design = check_tree(tree)
    return build_design_network(design, design_bundle_path(design, seed, pattern), context, seed, frame_camera)


def build_design_network(design, bundle_path, context, seed, frame_camera=True):
    """``build_design_scene`` once the bundle of the design's random weights is written."""
    network, restored = place_design_network(design["name"], bundle_path, context, frame_camera)
    infos = design_core.infer_shapes(design)
    summary = (
        f"Built design {design['name']}: {len(infos) - 1} layers, "
        f"{design_core.total_parameters(infos):,} parameters (random weights, seed {seed})"
    )
    if restored is not None:
        summary += f"; replaced the previous network, kept {restored} settings"
    return network, summary


def place_design_network(design_name, bundle_path, context, frame_camera=True):
    """Build the network of a design's bundle (random weights or trained), selected and active.

    The network built before from a design of the same name is replaced in
    place: the modifier input values the user set (and its animation) carry
    over to the inputs that still exist, and the old objects are removed.
    Returns ``(network, settings kept, or None when there was no network to replace)``.
    """
    old = designed_network(design_name, context.scene)
    kept = plain_inputs(old) if old is not None else {}
    network = build_network(bundle_path)
    network[DESIGN_PROPERTY] = design_name
    restored = None
    if old is not None:
        restored = write_inputs(network, kept)
        _clamp_sample(network)
        take_animation(old, network)
        name = old.name
        remove_network(old)
        network.name = name
        context.view_layer.update()  # the view layer still lists the removed objects until updated
    elif frame_camera:
        from ..scene.stage import set_up_stage

        set_up_stage(network, context.scene)
    for obj in context.view_layer.objects:
        if obj is not None and obj.select_get():
            obj.select_set(False)
    network.select_set(True)
    context.view_layer.objects.active = network
    return network, restored


def _clamp_sample(network):
    """Show the first sample when the kept Sample is past the new bundle's samples."""
    from ..scene.network import SAMPLE_PROPERTY

    sample = int(get_network_input(network, "Sample"))
    if sample >= network_bundle(network).sample_count:
        sample = 0
        set_network_input(network, "Sample", 0.0)
    network[SAMPLE_PROPERTY] = sample


def design_tree(context, tree_name=""):
    """The design tree an operator acts on: ``tree_name``, else the node editor's; BlenderCNNError when none."""
    if tree_name:
        tree = bpy.data.node_groups.get(tree_name)
        if tree is None or tree.bl_idname != TREE_TYPE:
            raise BlenderCNNError(tree_name, "is not a CNN Design node tree")
        return tree
    tree = _editor_tree(context)
    if tree is None or tree.bl_idname != TREE_TYPE:
        raise BlenderCNNError("designer", "no CNN Design tree is open in the node editor")
    return tree


def _editor_tree(context):
    space = getattr(context, "space_data", None)
    return getattr(space, "edit_tree", None) if space is not None and space.type == "NODE_EDITOR" else None


class OnDesignTree:
    """An operator on a design tree: the node editor's, or the one ``tree_name`` names (scripts, tests)."""

    tree_name: StringProperty(
        name="Tree",
        default="",
        options={"HIDDEN", "SKIP_SAVE"},
        description="The design tree (default: the node editor's)",
    )

    @classmethod
    def poll(cls, context):
        tree = _editor_tree(context)
        if tree is not None:
            return tree.bl_idname == TREE_TYPE
        return any(group.bl_idname == TREE_TYPE for group in bpy.data.node_groups)


# ---------------------------------------------------------------- operators


class BCNN_OT_new_design_from_preset(bpy.types.Operator):
    """Start a new network design (a CNN Design node tree) from a preset: a shipped one or one you saved"""

    bl_idname = "bcnn.new_design_from_preset"
    bl_label = "New Design from Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: EnumProperty(name="Preset", items=_preset_items, description="The preset to start from")

    @reports_user_errors
    def execute(self, context):
        paths = {identifier: path for identifier, _label, path in preset_files()}
        if self.preset not in paths:
            raise BlenderCNNError("preset", f"{self.preset!r} is not a preset file (any more)")
        tree = new_design(load_design(paths[self.preset]), context)
        result = refresh(tree)
        self.report(
            {"INFO"}, f"New design {tree.name}: {len(result.layers) - 1} layers, {result.total_params:,} parameters"
        )
        return {"FINISHED"}


class BCNN_OT_save_design_preset(OnDesignTree, bpy.types.Operator):
    """Save the design as a preset in your presets folder (refused while the design has problems)"""

    bl_idname = "bcnn.save_design_preset"
    bl_label = "Save Design Preset"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Name", default="", description="The preset's name (default: the design's name)")

    def invoke(self, context, event):
        try:
            self.name = self.name or design_tree(context, self.tree_name).design_name
        except BlenderCNNError:
            pass
        return context.window_manager.invoke_props_dialog(self)

    @reports_user_errors
    def execute(self, context):
        try:
            tree = design_tree(context, self.tree_name)
            path = save_preset(tree, self.name or tree.design_name)
        except OSError as error:
            self.report({"ERROR"}, f"could not save the preset: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved preset {path}")
        return {"FINISHED"}


class BCNN_OT_build_design_scene(OnDesignTree, BackgroundJob, bpy.types.Operator):
    """Build the 3D scene of the design with random weights; rebuilding replaces the design's network and \
keeps its settings. A big design computes with a progress bar; Esc cancels"""

    bl_idname = "bcnn.build_design_scene"
    bl_label = "Build Scene"
    bl_options = {"REGISTER", "UNDO"}

    seed: IntProperty(name="Seed", default=0, min=0, description="Seed of the random weights")
    inputs: EnumProperty(
        name="Inputs",
        default="ALL",
        description="The samples whose activations are shown",
        items=[("ALL", "All Patterns", "Three synthetic inputs: " + ", ".join(PATTERN_NAMES))]
        + [(str(i), name.title(), f"Only the {name}") for i, name in enumerate(PATTERN_NAMES)],
    )
    frame_camera: BoolProperty(
        name="Set Up Camera",
        default=True,
        description="On the first build, add a camera, light and world that frame it",
    )

    @reports_user_errors
    def execute(self, context):
        self._design = check_tree(design_tree(context, self.tree_name))
        job = start_design_bundle(self._design, self.seed, self.inputs)
        if job is None:
            return self._build(context, design_bundle_file(self._design, self.seed, self.inputs))
        return self.run_job(context, job)

    def job_finished(self, context):
        return self._build(context, self._job.result_path)

    @reports_user_errors
    def _build(self, context, bundle_path):
        _network, summary = build_design_network(self._design, bundle_path, context, self.seed, self.frame_camera)
        self.report({"INFO"}, summary)
        return {"FINISHED"}


class BCNN_OT_design_from_network(OnActiveNetwork, bpy.types.Operator):
    """Make a design (a CNN Design node tree) of the active network's layers, to edit and rebuild"""

    bl_idname = "bcnn.design_from_network"
    bl_label = "Design from Network"
    bl_options = {"REGISTER", "UNDO"}

    @reports_user_errors
    def execute(self, context):
        network = context.view_layer.objects.active
        design = convert.design_from_bundle(network_bundle(network))
        tree = new_design(design, context)
        self.report({"INFO"}, f"New design {tree.name} from {network.name}: {len(design['layers'])} layers")
        return {"FINISHED"}


classes = (
    BCNN_OT_new_design_from_preset,
    BCNN_OT_save_design_preset,
    BCNN_OT_build_design_scene,
    BCNN_OT_design_from_network,
)
register, unregister = bpy.utils.register_classes_factory(classes)
