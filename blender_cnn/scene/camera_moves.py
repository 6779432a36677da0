"""Camera moves for presentations: orbit, fly-through and push-in, as keyframes on the camera.

Each move writes ordinary keyframes (location, Euler rotation and the lens)
on the scene's camera between two frames, with Bezier interpolation, so a user
can edit them afterwards like any hand-made animation and the saved .blend
plays them without the add-on. A move replaces the keyframes the camera had
inside its frame range and keeps those outside, so moves can follow one another
on the timeline (an orbit, then a push-in).

Where things are comes from what the network draws (its evaluated geometry),
so the moves follow the current layout and spacing.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
import numpy.typing as npt
from mathutils import Euler, Vector

from ..core.errors import BlenderCNNError
from .drawn import drawn_points, drawn_quads
from .network import get_network_input, network_bundle, network_modifier
from .stage import LENS, VIEW_DIRECTION, half_view_tangents, staged_pose

CELL_MATERIAL = "BCNN Cell"
# A wider lens inside the network: with the framing's long lens a fly-through would see one map at a time.
FLY_THROUGH_LENS = 35.0
FRAMING_MARGIN = 1.08
CLOSE_UP_MARGIN = 1.2
# Keyframes per full turn of an orbit: enough that the Bezier path stays within 1% of the circle.
ORBIT_KEYS_PER_TURN = 24
# Azimuths tried when choosing one orbit distance that keeps the whole network in frame.
ORBIT_FIT_DIRECTIONS = 24
MOVED_PATHS = ("location", "rotation_euler")


def orbit(
    network: bpy.types.Object,
    camera: bpy.types.Object | None = None,
    frame_start: int = 1,
    frame_end: int = 250,
    turns: float = 1.0,
) -> bpy.types.Object:
    """Circle the camera ``turns`` times around the network's centre, looking at it; returns the camera.

    The orbit starts from the stage's view (from the input side, slightly above: the
    direction ``stage.staged_pose`` keeps), keeps that view's elevation and one
    distance: the largest at which the network fills the frame from any side, so
    nothing leaves the frame on the way round. Positive turns go counter-clockwise
    seen from above.
    """
    camera, scene = _checked(network, camera, frame_start, frame_end)
    if not math.isfinite(turns) or turns == 0:
        raise BlenderCNNError("orbit", f"turns must be a non-zero number, not {turns}")
    points = _drawn(network)
    centre = network_centre(network, points)
    look0 = _staged_look(camera)
    elevation = math.asin(max(-1.0, min(1.0, look0.z)))
    azimuth0 = math.atan2(look0.y, look0.x)

    def direction(azimuth: float) -> Vector:
        return Vector(
            (math.cos(azimuth) * math.cos(elevation), math.sin(azimuth) * math.cos(elevation), math.sin(elevation))
        )

    tried = np.linspace(0.0, 2 * math.pi, ORBIT_FIT_DIRECTIONS, endpoint=False)
    distance = FRAMING_MARGIN * max(fit_distance(points, centre, direction(azimuth0 + a), LENS, scene) for a in tried)
    keys = max(2, math.ceil(abs(turns) * ORBIT_KEYS_PER_TURN))
    poses = []
    for step in range(keys + 1):
        look = direction(azimuth0 + 2 * math.pi * turns * step / keys)
        poses.append((centre - look * distance, look))
    frames = np.linspace(frame_start, frame_end, keys + 1)
    _write_keys(camera, frames, poses, LENS, frame_start, frame_end)
    return camera


def fly_through(
    network: bpy.types.Object, camera: bpy.types.Object | None = None, frame_start: int = 1, frame_end: int = 250
) -> bpy.types.Object:
    """Fly from before the input layer along +X to past the output; returns the camera.

    The camera passes just beside the layers' walls and a little above their middle,
    looking ahead along the network (at the axis a layer and a half ahead), with a
    wider lens than the framing view.
    """
    camera, scene = _checked(network, camera, frame_start, frame_end)
    points = _drawn(network)
    low, high = points.min(axis=0), points.max(axis=0)
    centre = (low + high) / 2
    half = (high - low) / 2
    spacing = _layer_spacing(network, low, high)
    side = Vector((0.0, centre[1] - 1.15 * half[1], centre[2] + 0.35 * half[2]))
    look = Vector((1.5 * spacing, centre[1] - side.y, centre[2] - side.z)).normalized()
    start = Vector((low[0] - spacing, side.y, side.z))
    end = Vector((high[0] + 0.5 * spacing, side.y, side.z))
    _write_keys(
        camera, [frame_start, frame_end], [(start, look), (end, look)], FLY_THROUGH_LENS, frame_start, frame_end
    )
    return camera


def push_in(
    network: bpy.types.Object,
    layer_name: str,
    camera: bpy.types.Object | None = None,
    frame_start: int = 1,
    frame_end: int = 250,
) -> bpy.types.Object:
    """Move from the framing view of the whole network to a close view of one layer's cells; returns the camera.

    The move starts where the stage framed the camera (``stage.staged_pose``;
    a camera the stage never framed starts from a framing along the stage's
    view direction) and ends looking the same way, so it is a smooth dolly
    that ends with the layer's cells filling the frame.
    """
    camera, scene = _checked(network, camera, frame_start, frame_end)
    layer = network_bundle(network).layer(layer_name)  # an unknown name raises BlenderCNNError
    corners = layer_cell_corners(network, layer.index)
    if not len(corners):
        raise BlenderCNNError(layer_name, f"draws no cells in {network.name} (is the layer hidden?)")
    staged = staged_pose(camera)
    near = Vector((corners.min(axis=0) + corners.max(axis=0)) / 2)
    look = _staged_look(camera)
    if staged is not None:
        start = staged[0]
    else:
        points = _drawn(network)
        whole = network_centre(network, points)
        start = whole - look * FRAMING_MARGIN * fit_distance(points, whole, look, LENS, scene)
    end = near - look * CLOSE_UP_MARGIN * fit_distance(corners, near, look, LENS, scene)
    _write_keys(camera, [frame_start, frame_end], [(start, look), (end, look)], LENS, frame_start, frame_end)
    return camera


# --- geometry ---------------------------------------------------------------------


def _staged_look(camera: bpy.types.Object) -> Vector:
    """The direction the stage framed ``camera`` along (``stage.staged_pose``), else the stage's view direction."""
    staged = staged_pose(camera)
    if staged is None:
        return VIEW_DIRECTION.normalized()
    return (staged[1] @ Vector((0.0, 0.0, -1.0))).normalized()


def network_centre(network: bpy.types.Object, points: np.ndarray | None = None) -> Vector:
    """The centre of the box around everything the network draws (world space)."""
    points = _drawn(network) if points is None else points
    return Vector((points.min(axis=0) + points.max(axis=0)) / 2)


def layer_cell_corners(network: bpy.types.Object, layer_index: int) -> np.ndarray:
    """World corners (n, 3) of the cells one layer draws."""
    quads, geometry = drawn_quads(network, CELL_MATERIAL)
    if not len(quads):
        return np.zeros((0, 3), dtype=np.float32)
    chosen = quads.attribute("layer") == layer_index
    corners = quads.corners()[chosen].reshape(-1, 3)
    del geometry  # the quads read it until here
    return corners


def fit_distance(points: npt.ArrayLike, centre: Vector, look: Vector, lens: float, scene: bpy.types.Scene) -> float:
    """How far from ``centre`` a camera looking along ``look`` must be for ``points`` to fill its frame."""
    forward = Vector(look).normalized()  # type: ignore[arg-type]  # bpy stubs: a Vector is a sequence too
    rotation = forward.to_track_quat("-Z", "Y").to_matrix()
    right, up = np.array(rotation.col[0]), np.array(rotation.col[1])  # type: ignore[index]  # bpy stubs: col indexes
    relative = np.asarray(points, dtype=np.float64) - np.array(centre)
    x, y, depth = relative @ right, relative @ up, relative @ np.array(forward)
    tan_x, tan_y = _half_view_tangents(scene, lens)
    return float(max(1e-3, np.max(np.maximum(np.abs(x) / tan_x, np.abs(y) / tan_y) - depth)))


def _half_view_tangents(scene, lens):
    """Tangents of half the horizontal and vertical angle of view of ``lens`` at the scene's frame (sensor fit
    "Auto")."""
    render = scene.render
    return half_view_tangents(
        lens, render.resolution_x * render.pixel_aspect_x, render.resolution_y * render.pixel_aspect_y
    )


def _drawn(network):
    points = drawn_points(network)
    if not len(points):
        raise BlenderCNNError(network.name, "draws nothing to move the camera around")
    return points


def _layer_spacing(network, low, high):
    try:
        spacing = float(get_network_input(network, "Layer Spacing"))
    except KeyError:
        spacing = 0.0
    return spacing if spacing > 0 else max(1.0, float(high[0] - low[0]) / 4)


# --- checks and keyframes -----------------------------------------------------------


def _checked(network, camera, frame_start, frame_end):
    """Refuse bad input before anything changes; returns the camera and its scene."""
    if network is None:
        raise BlenderCNNError("camera move", "no network given")
    network_modifier(network)  # refuses objects that are not networks
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    camera = camera or scene.camera
    if camera is None:
        raise BlenderCNNError(scene.name, "has no camera to move (set up the stage, or pass a camera)")
    if camera.type != "CAMERA":
        raise BlenderCNNError(camera.name, f"is not a camera but a {camera.type.lower()} object")
    if int(frame_end) <= int(frame_start):
        raise BlenderCNNError("frame range", f"the last frame ({frame_end}) must come after the first ({frame_start})")
    return camera, scene


def _write_keys(camera, frames, poses, lens, frame_start, frame_end):
    """Keyframe ``poses`` ((location, look direction) per frame) and the lens, replacing keys in the range."""
    _clear_keys(camera, MOVED_PATHS, frame_start, frame_end)
    _clear_keys(camera.data, ("lens",), frame_start, frame_end)
    camera.rotation_mode = "XYZ"
    previous = Euler((0.0, 0.0, 0.0), "XYZ")
    for frame, (location, look) in zip(frames, poses):
        # Compatible Euler angles, so a full turn interpolates round and not back.
        rotation = look.to_track_quat("-Z", "Y").to_euler("XYZ", previous)
        previous = rotation
        camera.location = location
        camera.rotation_euler = rotation
        for path in MOVED_PATHS:
            camera.keyframe_insert(path, frame=float(frame))
    camera.data.lens = lens
    for frame in (frame_start, frame_end):
        camera.data.keyframe_insert("lens", frame=float(frame))
    for owner, paths in ((camera, MOVED_PATHS), (camera.data, ("lens",))):
        for curve in _fcurves(owner, paths):
            points = curve.keyframe_points
            inside = [index for index, point in enumerate(points) if frame_start <= point.co.x <= frame_end]
            for index in inside:
                points[index].interpolation = "BEZIER"
                points[index].handle_left_type = points[index].handle_right_type = "AUTO_CLAMPED"
            curve.update()
            # The move starts and ends at rest, whatever keys its neighbours on the timeline have.
            points = curve.keyframe_points
            for index in (inside[0], inside[-1]):
                point = points[index]
                point.handle_left_type = point.handle_right_type = "FREE"
                point.handle_left = (point.handle_left[0], point.co[1])
                point.handle_right = (point.handle_right[0], point.co[1])
            curve.update()
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    scene.frame_set(scene.frame_current)


def _fcurves(owner, paths):
    animation = owner.animation_data
    if animation is None or animation.action is None or animation.action_slot is None:
        return []
    from bpy_extras import anim_utils

    channelbag = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    if channelbag is None:
        return []
    return [curve for curve in channelbag.fcurves if curve.data_path in paths]


def _clear_keys(owner, paths, frame_start, frame_end):
    for curve in _fcurves(owner, paths):
        points = curve.keyframe_points
        for index in reversed(range(len(points))):
            if frame_start <= points[index].co.x <= frame_end:
                points.remove(points[index], fast=True)
        curve.update()
