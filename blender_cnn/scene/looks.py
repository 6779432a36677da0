"""What a look adds to the stage besides colors: bloom, depth of field, print size and dpi, world lighting.

Everything here is ordinary scene data (a compositor node group, the camera's
depth of field and an Empty it focuses on, render settings, world nodes), so
a saved .blend renders the look without the add-on.

- **Bloom** is the compositor's Glare node (type Bloom): Blender 5 has no
  Eevee bloom of its own any more, and the compositor works the same after
  Cycles and Eevee. It runs on the CPU compositor, which needs no GPU context.
- **Depth of field** focuses on the layer the camera looks at (the layer whose
  cells lie nearest the middle of the frame) through the Empty "BCNN Focus",
  so a camera move keeps that layer sharp and a user can move the focus by
  moving the Empty. The f-stop is computed from the network as drawn: a fixed
  f-stop would blur a small network not at all and a large one to mush,
  because their sizes in scene units differ a hundredfold.
- **dpi** is the PNG's pHYs chunk, which Blender writes from the render's
  pixels per metre (``ppm_factor / ppm_base``).
- **World lighting** separates the background the camera sees from the light
  the world casts: a white paper background must not light the cells white.
"""

from __future__ import annotations

import math
from typing import Any

import bpy
import numpy as np
from mathutils import Vector

from ..core.errors import BlenderCNNError
from .drawn import drawn_points
from .focus import cell_centres

COMPOSITING_GROUP = "BCNN Compositing"
BLOOM_NODE = "BCNN Bloom"
FOCUS_NAME = "BCNN Focus"
# On the camera's data: the blur of the most out-of-focus element as a share of the frame width.
DOF_PROPERTY = "blender_cnn_dof_blur"
WORLD_LIGHTING_NODE = "BCNN World Lighting"
# With ppm_base one inch in metres, ppm_factor reads as dots per inch (Blender's own convention).
INCH = 0.0254
DEFAULT_DPI = 72.0
# The Glare node's own defaults, reported for a scene without bloom.
DEFAULT_BLOOM = {"bloom_strength": 0.0, "bloom_threshold": 1.0, "bloom_size": 0.5}
# Depth of field never blurs more than this share of the frame, whatever a style asks.
MAX_DOF_BLUR = 0.05


# ---------------------------------------------------------------- bloom


def bloom_settings(scene: bpy.types.Scene) -> dict[str, float]:
    """``bloom_strength`` (0: none), ``bloom_threshold`` and ``bloom_size`` of the scene's compositor."""
    glare = _bloom_node(scene)
    if glare is None:
        return dict(DEFAULT_BLOOM)
    inputs: Any = glare.inputs  # Any: the stubs give sockets no default_value
    return {
        "bloom_strength": float(inputs["Strength"].default_value),
        "bloom_threshold": float(inputs["Threshold"].default_value),
        "bloom_size": float(inputs["Size"].default_value),
    }


def check_bloom(scene: bpy.types.Scene) -> None:
    """Refuse a scene whose compositor nodes are the user's own: bloom would replace them."""
    group = scene.compositing_node_group
    if group is not None and group.name != COMPOSITING_GROUP:
        raise BlenderCNNError(
            scene.name,
            f"composites with its own node group {group.name!r}; add a Glare node (type Bloom) to it yourself, "
            "or remove it to let the style add bloom",
        )


def set_bloom(
    scene: bpy.types.Scene, strength: float, threshold: float | None = None, size: float | None = None
) -> None:
    """Bloom of ``strength`` around everything brighter than ``threshold``; strength 0 removes it.

    ``size`` is the glow's reach as Blender's Glare node has it (0-1, a share of
    the image, so the look is the same at any resolution).
    """
    if strength <= 0.0:
        if _bloom_node(scene) is not None:
            scene.compositing_node_group = None
        return
    check_bloom(scene)
    group = bpy.data.node_groups.get(COMPOSITING_GROUP)
    if group is None or group.bl_idname != "CompositorNodeTree" or _glare(group) is None:
        group = _new_compositing_group()
    scene.compositing_node_group = group
    # The CPU compositor: the GPU one needs an OpenGL context, which a machine without a display may lack.
    scene.render.compositor_device = "CPU"
    inputs: Any = _glare(group).inputs  # Any: the stubs give sockets no default_value
    inputs["Strength"].default_value = min(1.0, strength)
    if threshold is not None:
        inputs["Threshold"].default_value = threshold
    if size is not None:
        inputs["Size"].default_value = size


def _bloom_node(scene):
    group = scene.compositing_node_group
    return None if group is None or group.name != COMPOSITING_GROUP else _glare(group)


def _glare(group):
    return group.nodes.get(BLOOM_NODE)


def _new_compositing_group():
    old = bpy.data.node_groups.get(COMPOSITING_GROUP)
    if old is not None:
        old.name = COMPOSITING_GROUP + " (old)"
    group: Any = bpy.data.node_groups.new(COMPOSITING_GROUP, "CompositorNodeTree")
    group.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    layers = group.nodes.new("CompositorNodeRLayers")
    glare = group.nodes.new("CompositorNodeGlare")
    glare.name = glare.label = BLOOM_NODE
    glare.inputs["Type"].default_value = "Bloom"
    glare.inputs["Quality"].default_value = "High"
    output = group.nodes.new("NodeGroupOutput")
    layers.location, glare.location, output.location = (-400, 0), (-100, 0), (200, 0)
    group.links.new(layers.outputs["Image"], glare.inputs["Image"])
    group.links.new(glare.outputs["Image"], output.inputs[0])
    return group


# ---------------------------------------------------------------- depth of field


def depth_of_field_blur(camera: bpy.types.Object | None) -> float:
    """The blur a look gave ``camera``'s depth of field (share of the frame width), 0 when it has none."""
    if camera is None or camera.type != "CAMERA":
        return 0.0
    data = camera.data
    assert isinstance(data, bpy.types.Camera) and data.dof is not None  # a camera has them; the stubs allow None
    if not data.dof.use_dof:
        return 0.0
    return float(data.get(DOF_PROPERTY, 0.0))


def check_depth_of_field(scene: bpy.types.Scene) -> None:
    if scene.camera is None:
        raise BlenderCNNError(scene.name, "has no camera for depth of field (set up the stage first)")


def set_depth_of_field(
    network: bpy.types.Object,
    blur: float,
    camera: bpy.types.Object | None = None,
    layer: int | None = None,
) -> int | None:
    """Focus ``camera`` (the scene's) on a layer of ``network``; the layers furthest from it blur by ``blur``.

    ``blur`` is the blur circle of the most out-of-focus element as a share of
    the frame's width (0.004: about 8 pixels across a 1920-pixel frame); 0
    turns depth of field off. The layer is ``layer`` (an index in the bundle),
    else the one the camera looks at. Returns the focused layer's index (None
    when the network draws no cells, and then it focuses on the middle of the
    drawing).
    """
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    camera = camera or scene.camera
    if camera is None:
        if blur <= 0.0:
            return None
        check_depth_of_field(scene)
    assert camera is not None  # check_depth_of_field refused a scene without one
    data = camera.data
    assert isinstance(data, bpy.types.Camera)  # the scene's camera
    dof = data.dof
    assert dof is not None  # a camera has them; the stubs allow None
    if blur <= 0.0:
        dof.use_dof = False
        data[DOF_PROPERTY] = 0.0
        return None
    blur = min(blur, MAX_DOF_BLUR)
    centres, indices = cell_centres(network)
    position, forward = _camera_axis(camera)
    if len(centres):
        layers = np.unique(indices[:, 0])
        if layer is None:
            layer = camera_target_layer(network, camera, centres, indices)
        elif layer not in layers:
            raise BlenderCNNError(network.name, f"draws no cells of layer {layer} to focus on")
        target = centres[indices[:, 0] == layer].mean(axis=0)
    else:
        layer = None
        points = drawn_points(network)
        target = (points.min(axis=0) + points.max(axis=0)) / 2 if len(points) else position + forward
    focus = _ensure_focus_empty(scene)
    focus.location = Vector(target.tolist())
    distance = float((target - position) @ forward)
    dof.use_dof = True
    dof.focus_object = focus
    # Also the distance itself, so the focus stays where it is if a user clears the focus object.
    dof.focus_distance = max(1e-3, distance)
    dof.aperture_fstop = _fstop(network, camera, distance, blur)
    data[DOF_PROPERTY] = blur
    return None if layer is None else int(layer)


def camera_target_layer(
    network: bpy.types.Object,
    camera: bpy.types.Object,
    centres: np.ndarray | None = None,
    indices: np.ndarray | None = None,
) -> int | None:
    """The index of the layer the camera looks at: whose cells' middle is nearest the middle of the frame."""
    if centres is None or indices is None:
        centres, indices = cell_centres(network)
    if not len(centres):
        return None
    position, forward = _camera_axis(camera)
    layers = np.unique(indices[:, 0])
    middles = np.stack([centres[indices[:, 0] == layer].mean(axis=0) for layer in layers])
    relative = middles - position
    depth = relative @ forward
    aside = np.linalg.norm(relative - np.outer(depth, forward), axis=1)
    # An angle, not a distance: a near layer a little aside is no nearer the middle of the frame than a far one.
    angle = np.where(depth > 0, np.arctan2(aside, np.maximum(depth, 1e-9)), np.inf)
    return int(layers[int(np.argmin(angle))])


def _camera_axis(camera):
    # A camera just moved (framed by the stage) has its new matrix only after the depsgraph is updated.
    view_layer = bpy.context.view_layer
    assert view_layer is not None  # the stubs allow a context without one
    view_layer.update()
    matrix = np.array(camera.matrix_world, dtype=np.float64)
    forward = -matrix[:3, 2] / np.linalg.norm(matrix[:3, 2])
    return matrix[:3, 3], forward


def _fstop(network, camera, focus_distance, blur):
    """The f-stop at which the drawn point furthest out of focus blurs by ``blur`` of the frame width.

    Thin lens: a point at depth d, with the focus at s, blurs on the sensor by
    c = (f / N) * f * |d - s| / (d * (s - f)); as a share of the sensor width
    that is c / S. Solved for N with the worst point.
    """
    data = camera.data
    position, forward = _camera_axis(camera)
    depths = (drawn_points(network).astype(np.float64) - position) @ forward
    depths = depths[depths > max(data.clip_start, 1e-6)]
    lens = data.lens * 1e-3
    sensor = (data.sensor_height if data.sensor_fit == "VERTICAL" else data.sensor_width) * 1e-3
    focus = max(focus_distance, 2 * lens)
    worst = float(np.max(np.abs(depths - focus) / depths)) if len(depths) else 0.0
    if worst <= 0.0:
        return 1.0
    return max(1e-3, lens * lens * worst / ((focus - lens) * sensor * blur))


def _ensure_focus_empty(scene):
    focus = bpy.data.objects.get(FOCUS_NAME)
    if focus is None or focus.type != "EMPTY":
        focus = bpy.data.objects.new(FOCUS_NAME, None)
        focus.empty_display_type = "SPHERE"
        focus.empty_display_size = 0.5
    if focus.name not in scene.collection.objects:
        scene.collection.objects.link(focus)
    return focus


# ---------------------------------------------------------------- print size and dpi


def dpi(scene: bpy.types.Scene) -> float:
    """The dots per inch the scene's PNGs say they have (their pHYs chunk)."""
    render = scene.render
    # ppm_base is a float32: 0.0254 reads back as 0.0253999997, which would make 300 dpi 300.0000035.
    return round(float(render.ppm_factor) * INCH / float(render.ppm_base), 3)


def set_dpi(scene: bpy.types.Scene, value: float) -> None:
    scene.render.ppm_base = INCH
    scene.render.ppm_factor = value


def print_resolution(size_inches: tuple[float, float] | list[float], dots_per_inch: float) -> tuple[int, int]:
    """Pixels of a picture ``size_inches`` (width, height) at ``dots_per_inch``: 7 x 4 in at 300 dpi is 2100 x 1200."""
    return int(round(size_inches[0] * dots_per_inch)), int(round(size_inches[1] * dots_per_inch))


# ---------------------------------------------------------------- world lighting


def world_lighting(scene: bpy.types.Scene) -> float:
    """How strongly the background lights the scene (1: as bright as the camera sees it)."""
    node = _world_lighting_node(scene)
    if node is None:
        return 1.0
    return float(_socket(node, "A_Float").default_value)


def set_world_lighting(scene: bpy.types.Scene, background: Any, value: float) -> None:
    """Light the scene with ``value`` times the background ``background`` (a Background node) shows the camera."""
    tree = background.id_data
    node = _world_lighting_node(scene)
    if node is None:
        if math.isclose(value, 1.0):
            return
        path = tree.nodes.new("ShaderNodeLightPath")
        node = tree.nodes.new("ShaderNodeMix")
        node.name = node.label = WORLD_LIGHTING_NODE
        node.data_type = "FLOAT"
        path.location = background.location + Vector((-500, 0))
        node.location = background.location + Vector((-250, 0))
        # Camera rays see the background at full strength, every other ray at ``value`` of it.
        _socket(node, "B_Float").default_value = 1.0
        tree.links.new(path.outputs["Is Camera Ray"], _socket(node, "Factor_Float"))
        tree.links.new(_socket(node, "Result_Float"), background.inputs["Strength"])
    _socket(node, "A_Float").default_value = value


def _socket(node, identifier):
    """A Mix node's socket by identifier: it has an A, a B and a Result per data type, all named alike."""
    return next(socket for socket in (*node.inputs, *node.outputs) if socket.identifier == identifier)


def _world_lighting_node(scene):
    world = scene.world
    if world is None or world.node_tree is None:
        return None
    return world.node_tree.nodes.get(WORLD_LIGHTING_NODE)
