"""Camera, world, light and render settings around a network, and rendering a still."""

from __future__ import annotations

import os
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix, Vector

from .drawn import drawn_points
from .looks import depth_of_field_blur, set_depth_of_field

BACKGROUND = (0.008, 0.010, 0.016, 1.0)
# From the input side, slightly above: layers run left to right and their maps face the camera at 45 degrees.
VIEW_DIRECTION = Vector((1.0, 1.0, -0.3)).normalized()
# A long lens keeps the far layers nearly as large as the near ones.
LENS = 85.0
CAMERA_NAME = "BCNN Camera"
LIGHT_NAME = "BCNN Key Light"
# On a world the stage has set up: staging again keeps its background, so a look survives Fit Rows.
STAGED_PROPERTY = "blender_cnn_stage"
ENGINES = {"CYCLES": "CYCLES", "EEVEE": "BLENDER_EEVEE", "BLENDER_EEVEE": "BLENDER_EEVEE"}
DEFAULT_ENGINE, DEFAULT_SAMPLES = "CYCLES", 32


def set_up_stage(
    network: bpy.types.Object, scene: bpy.types.Scene | None = None, margin: float = 1.08
) -> bpy.types.Object:
    """Dark world, a soft key light and a camera that frames ``network``; returns the camera.

    Staging a scene again (after Fit Rows, a rebuild) keeps the look a style
    gave it: the world's background, the light, and a depth of field, which is
    focused again on the layer the new framing looks at.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    _set_world(scene)
    _ensure_light(scene)
    camera = _ensure_camera(scene)
    frame_camera(camera, network, scene, margin)
    blur = depth_of_field_blur(camera)
    if blur > 0.0:
        set_depth_of_field(network, blur, camera)
    view = scene.view_settings
    assert view is not None  # a scene always has them; the stubs allow None
    # "Standard" shows the colormap's colors as they are; AgX would desaturate them.
    # The ignores: bpy's stubs type these enums, whose items come from the color configuration, as "NONE".
    view.view_transform = "Standard"  # type: ignore[assignment]
    view.look = "None"  # type: ignore[assignment]
    return camera


def frame_camera(
    camera: bpy.types.Object,
    network: bpy.types.Object,
    scene: bpy.types.Scene | None = None,
    margin: float = 1.08,
    points: np.ndarray | None = None,
) -> None:
    """Aim ``camera`` along the view direction so the evaluated network (or ``points``, world) fills the frame."""
    scene = scene or bpy.context.scene
    camera_data = camera.data
    assert isinstance(camera_data, bpy.types.Camera)  # ``camera`` is a camera object
    camera.rotation_mode = "QUATERNION"
    camera.rotation_quaternion = VIEW_DIRECTION.to_track_quat("-Z", "Y")
    camera_data.lens = LENS
    # camera_fit_coords reads the camera's evaluated rotation, so apply the new one first.
    view_layer = bpy.context.view_layer
    assert view_layer is not None  # the stubs allow a context without one
    view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    # The network as drawn rather than its bounding box, so that sparse walls of maps do not leave
    # the frame half empty.
    if points is None:
        points = drawn_points(network, depsgraph=depsgraph)
    location, _scale = camera.camera_fit_coords(depsgraph, points.ravel().tolist())
    # Back off from the tight fit along the view, so nothing touches the border and the framing stays centred.
    depths = (points - np.asarray(location, dtype=np.float32)) @ np.asarray(VIEW_DIRECTION, dtype=np.float32)
    # The ignore: bpy's stubs do not let a Vector be made from a Vector.
    camera.location = Vector(location) - VIEW_DIRECTION * float(depths.mean() * (margin - 1.0))  # type: ignore[arg-type]
    # The clip range always covers what is framed, however long the network.
    nearest, furthest = float(depths.min()), float(depths.max()) + float(depths.mean() * (margin - 1.0))
    camera_data.clip_start = max(0.01, min(1.0, 0.5 * nearest))
    camera_data.clip_end = max(1000.0, 1.5 * furthest)


def camera_projection(camera: bpy.types.Object, scene: bpy.types.Scene | None = None) -> Matrix:
    """4x4 world -> clip matrix of ``camera`` at the scene's resolution, with clip y scaled to square pixels.

    Clip x spans the frame's width as -1..1 and clip y its height as -h/w..h/w,
    so a raster of those bounds has the render's pixels.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    width, height = scene.render.resolution_x, scene.render.resolution_y
    projection = camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=width, y=height)
    square = Matrix.Diagonal((1.0, height / width, 1.0, 1.0))
    return square @ projection @ camera.matrix_world.inverted()


def configure_render(scene: bpy.types.Scene | None, engine: str, width: int, height: int, samples: int) -> None:
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    render = scene.render
    render.engine = ENGINES[engine.upper()]  # type: ignore[assignment]  # bpy stubs: engines register at run time
    render.resolution_x, render.resolution_y = width, height
    render.resolution_percentage = 100
    if render.engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        scene.cycles.use_denoising = False
        scene.cycles.max_bounces = 4
        scene.cycles.transparent_max_bounces = 8
    else:
        assert scene.eevee is not None  # a scene always has them; the stubs allow None
        scene.eevee.taa_render_samples = samples


def render_still(
    path: str | os.PathLike[str],
    scene: bpy.types.Scene | None = None,
    engine: str = "CYCLES",
    width: int = 1280,
    height: int = 720,
    samples: int = 32,
) -> str:
    """Render the scene's camera view to a PNG at ``path``; returns the path."""
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    configure_render(scene, engine, width, height, samples)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = os.path.abspath(path)
    bpy.ops.render.render(write_still=True, scene=scene.name)
    return scene.render.filepath


def _set_world(scene):
    world = scene.world or bpy.data.worlds.new("BCNN World")
    scene.world = world
    assert world.node_tree is not None  # a world has a node tree in Blender 5; the stubs allow None
    background: Any = world.node_tree.nodes.get("Background")  # Any: the stubs give sockets no default_value
    if background is not None and world.get(STAGED_PROPERTY):
        return
    if background is None:
        background = world.node_tree.nodes.new("ShaderNodeBackground")
        output = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
        world.node_tree.links.new(background.outputs[0], output.inputs["Surface"])
    background.inputs["Color"].default_value = BACKGROUND
    background.inputs["Strength"].default_value = 1.0
    world[STAGED_PROPERTY] = True
    # The first staging also sets the render to the add-on's defaults (those of Render Still), so F12 renders
    # what the default look ("dark") means; staging again keeps a look's engine and samples.
    configure_render(scene, DEFAULT_ENGINE, scene.render.resolution_x, scene.render.resolution_y, DEFAULT_SAMPLES)


def _ensure_light(scene):
    light = bpy.data.objects.get(LIGHT_NAME)
    if light is None:
        data = bpy.data.lights.new(LIGHT_NAME, "SUN")
        assert isinstance(data, bpy.types.SunLight)  # what a "SUN" light is; the stubs say Light
        data.energy = 2.0
        data.angle = 0.3
        light = bpy.data.objects.new(LIGHT_NAME, data)
        light.rotation_euler = (0.9, 0.2, -0.6)
    if light.name not in scene.collection.objects:
        scene.collection.objects.link(light)
    return light


def _ensure_camera(scene):
    camera = bpy.data.objects.get(CAMERA_NAME)
    if camera is None:
        camera = bpy.data.objects.new(CAMERA_NAME, bpy.data.cameras.new(CAMERA_NAME))
    if camera.name not in scene.collection.objects:
        scene.collection.objects.link(camera)
    scene.camera = camera
    return camera
