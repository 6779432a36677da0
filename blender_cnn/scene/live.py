"""Follow a live training (``core/live.py``): build the network of its newest bundle, and rebuild it in place
as epochs are added, keeping what the user set.

``update_from_run`` is one look at the run folder: it reads the small status
file and, only when it names a bundle the scene does not show yet, loads that
bundle and rebuilds. Watch Run (``ui/live.py``) calls it from a timer; a
script can call it in a loop of its own.

A rebuild makes the network anew from the bundle (the build is the one code
path that writes a scene, so the last rebuild equals an import of the finished
run) and carries over from the network it replaces: the modifier inputs that
hold plain values (layout, style, timeline...), the animation (a keyed Epoch
keeps its keys; otherwise Epoch moves to the newest epoch), the transform and
parent, the collection it sits in, its name, and whether it was selected and
active. Scene-wide things (materials, world, camera) are not touched.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

import bpy
from bpy_extras import anim_utils

from ..core.budget import DEFAULT_BUDGET_GB
from ..core.bundle import Bundle, load_bundle
from ..core.live import LiveStatus, read_status
from .network import (
    BUNDLE_PROPERTY,
    DETAILED_PROPERTY,
    SAMPLE_PROPERTY,
    build_network,
    get_network_input,
    is_network,
    network_input_path,
    set_network_input,
)
from .replacing import own_collection, plain_inputs, remove_network, take_animation, write_inputs
from .stage import set_up_stage

# On a network built from a live run: the run folder, so later looks find it to rebuild.
LIVE_RUN_PROPERTY = "blender_cnn_live_run"
WAITING, UNCHANGED, UPDATED = "waiting", "unchanged", "updated"
NAME_SUFFIX = re.compile(r"\.\d{3,}$")


@dataclass(frozen=True)
class LiveUpdate:
    """What one look at a live run found and did."""

    state: str  # WAITING (no status written yet), UNCHANGED, or UPDATED (the network was built or rebuilt)
    status: LiveStatus | None
    network: bpy.types.Object | None
    seconds: float


def update_from_run(
    run_dir: str | os.PathLike[str],
    scene: bpy.types.Scene,
    view_layer: bpy.types.ViewLayer,
    memory_budget_gb: float = DEFAULT_BUDGET_GB,
    frame_camera: bool = True,
) -> LiveUpdate:
    """Show the newest epochs of the live run in ``run_dir``: build its network the first time (on a stage,
    selected and active, when ``frame_camera``), rebuild it when the run has a newer bundle, else nothing."""
    started = time.perf_counter()
    run_dir = os.path.abspath(os.fspath(run_dir))
    status = read_status(run_dir)
    if status is None:
        return LiveUpdate(WAITING, None, None, time.perf_counter() - started)
    network = live_network(run_dir, scene)
    if network is not None and network.get(BUNDLE_PROPERTY) == status.bundle:
        return LiveUpdate(UNCHANGED, status, network, time.perf_counter() - started)
    if not os.path.isfile(status.bundle):  # replaced by the next epoch's since the status was read
        status = read_status(run_dir) or status
    bundle = load_bundle(status.bundle)
    if network is None:
        network = build_network(bundle, memory_budget_gb=memory_budget_gb)
        if frame_camera:
            set_up_stage(network, scene)
        for obj in view_layer.objects:
            if obj is not None and obj.select_get(view_layer=view_layer):  # None: removed, not yet updated
                obj.select_set(False, view_layer=view_layer)
        network.select_set(True, view_layer=view_layer)
        view_layer.objects.active = network
    else:
        network = replace_network(network, bundle, scene, view_layer, memory_budget_gb)
    network[LIVE_RUN_PROPERTY] = run_dir
    return LiveUpdate(UPDATED, status, network, time.perf_counter() - started)


def live_network(run_dir: str | os.PathLike[str], scene: bpy.types.Scene) -> bpy.types.Object | None:
    """The network in ``scene`` built from the live run in ``run_dir``, or None."""
    run_dir = os.path.abspath(os.fspath(run_dir))
    for obj in scene.objects:
        if obj.get(LIVE_RUN_PROPERTY) == run_dir and is_network(obj):
            return obj
    return None


def replace_network(
    old: bpy.types.Object,
    bundle: Bundle,
    scene: bpy.types.Scene,
    view_layer: bpy.types.ViewLayer,
    memory_budget_gb: float = DEFAULT_BUDGET_GB,
) -> bpy.types.Object:
    """Build ``bundle``'s network in place of ``old`` (same network, more epochs), with ``old``'s settings
    (module docstring); ``old`` and everything built with it is removed. Returns the new network."""
    settings = plain_inputs(old)
    sample = _shown_sample(old, bundle)
    detailed = old.get(DETAILED_PROPERTY)
    network = build_network(
        bundle,
        sample=sample,
        collection=_parent_collection(old, scene),
        memory_budget_gb=memory_budget_gb,
        detailed=None if detailed is None else bool(detailed),
    )
    write_inputs(network, settings)
    if not _is_keyed(old, "Sample") and get_network_input(network, "Sample") >= bundle.sample_count:
        set_network_input(network, "Sample", float(sample))  # a Show Image input is not part of the bundle
    take_animation(old, network)
    network.parent = old.parent
    network.matrix_parent_inverse = old.matrix_parent_inverse.copy()
    network.matrix_basis = old.matrix_basis.copy()
    network.hide_render = old.hide_render
    selected, active = old.select_get(view_layer=view_layer), view_layer.objects.active == old
    name, own = old.name, own_collection(old)
    own_name = own.name if own is not None else None
    remove_network(old)
    _take_names(network, name, own_name)
    view_layer.update()  # the view layer lists the removed objects until it is updated
    if selected:
        network.select_set(True, view_layer=view_layer)
    if active:
        view_layer.objects.active = network
    return network


def _shown_sample(network, bundle):
    """The bundle sample the network shows (its Sample input, else the one it was built for), so the rebuild keeps
    that sample's activations when it cannot keep every sample's."""
    for shown in (round(float(get_network_input(network, "Sample"))), network.get(SAMPLE_PROPERTY)):
        if isinstance(shown, int) and 0 <= shown < bundle.sample_count:
            return shown
    return 0


def _parent_collection(network, scene):
    """The collection that holds the network's own collection, so the rebuild goes where the user put it."""
    own = own_collection(network)
    if own is None:
        return None
    for parent in [scene.collection, *scene.collection.children_recursive]:
        if own.name in parent.children:
            return parent
    return None


def _is_keyed(network, input_name):
    animation = network.animation_data
    if animation is None or animation.action is None:
        return False
    channels = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    return channels is not None and channels.fcurves.find(network_input_path(network, input_name)) is not None


def _take_names(network, name, collection_name):
    """The removed network's names for the new one and its collection, and the other built names without the
    ``.001`` the old ones forced."""
    network.name = name
    own = own_collection(network)
    if own is None:
        return
    if collection_name is not None:
        own.name = collection_name
    blocks: list[bpy.types.ID] = []
    for obj in own.all_objects:
        blocks.append(obj)
        if obj.data is not None:
            blocks.append(obj.data)
        for modifier in obj.modifiers:
            if isinstance(modifier, bpy.types.NodesModifier) and modifier.node_group is not None:
                if modifier.node_group.name.startswith("BCNN Network"):
                    blocks.append(modifier.node_group)
    for block in blocks:
        if block is not network and NAME_SUFFIX.search(block.name):
            block.name = NAME_SUFFIX.sub("", block.name)  # taken after all: Blender adds a suffix again
