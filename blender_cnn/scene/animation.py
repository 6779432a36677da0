"""Keyframe a network's training, its input samples and a convolution's sweep over the timeline.

The network's Epoch, Sample and Sweep modifier inputs drive what it shows (see
``nodes/timeline.py`` and ``nodes/operations.py``); these functions only write
keyframes and markers, so a user can edit, retime or replace them like any
other animation.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
from bpy_extras import anim_utils

from ..core import operations as ops
from ..core.errors import BlenderCNNError
from .network import (
    STORED_SAMPLES_PROPERTY,
    get_network_input,
    network_bundle,
    network_input_path,
    set_network_input,
)

EASINGS = ("EASE", "LINEAR")
MARKER_PREFIX = "epoch "


def animate_training(
    network: bpy.types.Object,
    frames_per_epoch: int = 24,
    hold_frames: int = 12,
    easing: str = "EASE",
    start_frame: int = 1,
    scene: bpy.types.Scene | None = None,
) -> tuple[int, int]:
    """Keyframe the Epoch input from the bundle's first epoch to its last; returns ``(first frame, last frame)``.

    Each epoch is held for ``hold_frames`` frames, then the network moves to
    the next one over ``frames_per_epoch`` frames, linearly or eased in and
    out. A timeline marker names each epoch where it arrives; the scene's
    frame range becomes the animation's.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    if frames_per_epoch < 1 or hold_frames < 0:
        raise BlenderCNNError(
            network.name,
            f"needs at least 1 frame per epoch and no negative hold, got {frames_per_epoch} and {hold_frames}",
        )
    if easing not in EASINGS:
        raise BlenderCNNError(network.name, f"easing must be one of {EASINGS}, got {easing!r}")
    epochs = network_bundle(network).epochs
    keys, frame = [], start_frame
    for epoch in epochs:
        keys.append((frame, epoch))
        if hold_frames:
            keys.append((frame + hold_frames, epoch))
        frame += hold_frames + frames_per_epoch
    _replace_keys(network, "Epoch", keys, easing)
    for marker in [marker for marker in scene.timeline_markers if marker.name.startswith(MARKER_PREFIX)]:
        scene.timeline_markers.remove(marker)
    for arrival, epoch in keys[:: 2 if hold_frames else 1]:
        scene.timeline_markers.new(f"{MARKER_PREFIX}{epoch}", frame=arrival)
    scene.frame_start, scene.frame_end = start_frame, keys[-1][0]
    return scene.frame_start, scene.frame_end


def animate_samples(
    network: bpy.types.Object,
    samples: Sequence[int],
    frames_per_sample: int = 48,
    fade_frames: int = 0,
    start_frame: int = 1,
) -> int:
    """Keyframe the Sample input through ``samples`` (stored sample slots): cuts, or cross-fades of ``fade_frames``.

    Returns the last frame.
    """
    stored = list(network.get(STORED_SAMPLES_PROPERTY, []))
    missing = [sample for sample in samples if sample not in stored]
    if not samples or missing:
        raise BlenderCNNError(
            network.name, f"stores the activations of samples {stored}; cannot show {missing or 'none'}"
        )
    if frames_per_sample < 1 or not 0 <= fade_frames < frames_per_sample:
        raise BlenderCNNError(network.name, "needs at least 1 frame per sample and a fade shorter than that")
    keys = []
    for position, sample in enumerate(samples):
        arrival = start_frame + position * frames_per_sample
        keys += [(arrival, sample), (arrival + frames_per_sample - fade_frames - 1, sample)]
    _replace_keys(network, "Sample", keys, "LINEAR" if fade_frames else "CONSTANT")
    return start_frame + len(samples) * frames_per_sample - 1


SWEPT_KINDS = (ops.OP_CONVOLUTION, ops.OP_MAX_POOLING, ops.OP_AVERAGE_POOLING)


def sweepable_layers(network: bpy.types.Object) -> list[tuple[int, str]]:
    """``[(layer index, name)]`` of the layers a sweep can run across: convolutions and poolings with cells."""
    bundle = network_bundle(network)
    table = get_network_input(network, "Operations")
    kinds = [0] * len(bundle.layers)
    if table is not None and "op_kind" in table.data.attributes:
        kinds = [item.value for item in table.data.attributes["op_kind"].data]
    return [(layer.index, layer.name) for layer, kind in zip(bundle.layers, kinds) if kind in SWEPT_KINDS]


def animate_sweep(
    network: bpy.types.Object,
    layer: str | int,
    channel: int = 0,
    start_frame: int = 1,
    frames: int = 48,
    taps: bool = False,
    scene: bpy.types.Scene | None = None,
) -> tuple[int, int]:
    """Sweep ``layer``'s (a name or index) window across its map ``channel``: keys Sweep from 0 at ``start_frame``
    to 1 ``frames`` frames later, at constant speed; returns ``(first frame, last frame)``.

    The focus goes to that layer and channel and Show Sweep is turned on;
    ``taps`` adds each window's products one at a time (Sweep Taps), which
    suits slow sweeps. The scene's frame range becomes the sweep's.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    sweepable = sweepable_layers(network)
    chosen = [(index, name) for index, name in sweepable if layer in (index, name)]
    if not chosen:
        names = ", ".join(name for _index, name in sweepable) or "none"
        raise BlenderCNNError(network.name, f"cannot sweep {layer!r}: the layers a sweep runs across are {names}")
    if frames < 2:
        raise BlenderCNNError(network.name, f"a sweep needs at least 2 frames, got {frames}")
    index, name = chosen[0]
    channels = network_bundle(network).layer(name).output_shape[-1]
    if not 0 <= channel < channels:
        raise BlenderCNNError(network.name, f"layer {name!r} has {channels} channels; it has no channel {channel}")
    set_network_input(network, "Focus Layer", index)
    set_network_input(network, "Focus Channel", channel)
    set_network_input(network, "Show Sweep", True)
    set_network_input(network, "Sweep Taps", taps)
    last = start_frame + frames - 1
    _replace_keys(network, "Sweep", [(start_frame, 0.0), (last, 1.0)], "LINEAR")
    scene.frame_start, scene.frame_end = start_frame, last
    return start_frame, last


def _replace_keys(network, input_name, keys, easing):
    path = network_input_path(network, input_name)
    fcurve = _fcurve(network, path)
    if fcurve is not None:
        fcurve.keyframe_points.clear()
    for frame, value in keys:
        set_network_input(network, input_name, float(value))
        network.keyframe_insert(data_path=path, frame=frame)
    fcurve = _fcurve(network, path)
    interpolation = {"EASE": "BEZIER"}.get(easing, easing)
    for point in fcurve.keyframe_points:
        point.interpolation = interpolation
        # Flat handles: the value rests on each key and eases in and out between them.
        point.handle_left_type = point.handle_right_type = "AUTO_CLAMPED"
    fcurve.update()


def _fcurve(network, path):
    animation = network.animation_data
    if animation is None or animation.action is None:
        return None
    channels = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    return None if channels is None else channels.fcurves.find(path)
