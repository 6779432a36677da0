"""Camera, world, light and render settings around a network, and rendering a still."""

import os

import bpy
import numpy as np
from mathutils import Matrix, Vector

from .drawn import drawn_points

BACKGROUND = (0.008, 0.010, 0.016, 1.0)
# From the input side, slightly above: layers run left to right and their maps face the camera at 45 degrees.
VIEW_DIRECTION = Vector((1.0, 1.0, -0.3)).normalized()
# A long lens keeps the far layers nearly as large as the near ones.
LENS = 85.0
CAMERA_NAME = "BCNN Camera"
LIGHT_NAME = "BCNN Key Light"
ENGINES = {"CYCLES": "CYCLES", "EEVEE": "BLENDER_EEVEE", "BLENDER_EEVEE": "BLENDER_EEVEE"}


def set_up_stage(network, scene=None, margin=1.08):
    """Dark world, a soft key light and a camera that frames ``network``; returns the camera."""
    scene = scene or bpy.context.scene
    _set_world(scene)
    _ensure_light(scene)
    camera = _ensure_camera(scene)
    frame_camera(camera, network, scene, margin)
    view = scene.view_settings
    # "Standard" shows the colormap's colors as they are; AgX would desaturate them.
    view.view_transform = "Standard"
    view.look = "None"
    return camera


def frame_camera(camera, network, scene=None, margin=1.08, points=None):
    """Aim ``camera`` along the view direction so the evaluated network (or ``points``, world) fills the frame."""
    scene = scene or bpy.context.scene
    camera.rotation_mode = "QUATERNION"
    camera.rotation_quaternion = VIEW_DIRECTION.to_track_quat("-Z", "Y")
    camera.data.lens = LENS
    # camera_fit_coords reads the camera's evaluated rotation, so apply the new one first.
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    # The network as drawn rather than its bounding box, so that sparse walls of maps do not leave
    # the frame half empty.
    if points is None:
        points = drawn_points(network, depsgraph=depsgraph)
    location, _scale = camera.camera_fit_coords(depsgraph, points.ravel().tolist())
    # Back off from the tight fit along the view, so nothing touches the border and the framing stays centred.
    depths = (points - np.asarray(location, dtype=np.float32)) @ np.asarray(VIEW_DIRECTION, dtype=np.float32)
    camera.location = Vector(location) - VIEW_DIRECTION * float(depths.mean() * (margin - 1.0))
    # The clip range always covers what is framed, however long the network.
    nearest, furthest = float(depths.min()), float(depths.max()) + float(depths.mean() * (margin - 1.0))
    camera.data.clip_start = max(0.01, min(1.0, 0.5 * nearest))
    camera.data.clip_end = max(1000.0, 1.5 * furthest)


def camera_projection(camera, scene=None):
    """4x4 world -> clip matrix of ``camera`` at the scene's resolution, with clip y scaled to square pixels.

    Clip x spans the frame's width as -1..1 and clip y its height as -h/w..h/w,
    so a raster of those bounds has the render's pixels.
    """
    scene = scene or bpy.context.scene
    width, height = scene.render.resolution_x, scene.render.resolution_y
    projection = camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=width, y=height)
    square = Matrix.Diagonal((1.0, height / width, 1.0, 1.0))
    return square @ projection @ camera.matrix_world.inverted()


def configure_render(scene=None, engine="CYCLES", width=1280, height=720, samples=32):
    scene = scene or bpy.context.scene
    render = scene.render
    render.engine = ENGINES[engine.upper()]
    render.resolution_x, render.resolution_y = width, height
    render.resolution_percentage = 100
    if render.engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        scene.cycles.use_denoising = False
        scene.cycles.max_bounces = 4
        scene.cycles.transparent_max_bounces = 8
    else:
        scene.eevee.taa_render_samples = samples


def render_still(path, scene=None, engine="CYCLES", width=1280, height=720, samples=32):
    """Render the scene's camera view to a PNG at ``path``; returns the path."""
    scene = scene or bpy.context.scene
    configure_render(scene, engine, width, height, samples)
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = os.path.abspath(path)
    bpy.ops.render.render(write_still=True, scene=scene.name)
    return scene.render.filepath


def _set_world(scene):
    world = scene.world or bpy.data.worlds.new("BCNN World")
    scene.world = world
    background = world.node_tree.nodes.get("Background")
    if background is None:
        background = world.node_tree.nodes.new("ShaderNodeBackground")
        output = world.node_tree.nodes.get("World Output") or world.node_tree.nodes.new("ShaderNodeOutputWorld")
        world.node_tree.links.new(background.outputs[0], output.inputs["Surface"])
    background.inputs["Color"].default_value = BACKGROUND
    background.inputs["Strength"].default_value = 1.0


def _ensure_light(scene):
    light = bpy.data.objects.get(LIGHT_NAME)
    if light is None:
        data = bpy.data.lights.new(LIGHT_NAME, "SUN")
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
