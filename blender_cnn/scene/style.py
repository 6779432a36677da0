"""Scene style presets: the look of a network and its stage as one small JSON file.

A style holds the colormaps and normalization (modifier inputs of the
network), the world's background color and how much it lights the scene, the
key light's energy, the shared materials' label color and emission strengths,
and the render side of a look (``scene.looks``): the engine and samples it is
made for, its size in pixels (or in inches at a dpi, for print), bloom and
depth of field. A preset may hold only some of these keys; the others are left
as they are. Built-in presets live in ``presets/styles/`` of the add-on, the
user's in the add-on's user folder (``user_folder("styles")``), never in the
add-on's own folder.

``apply_style`` checks every key and value before it changes anything, so a
bad preset raises one ``BlenderCNNError`` (naming the file and the key) and
leaves the scene as it was.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import bpy

from ..core import colormaps
from ..core.errors import BlenderCNNError
from ..nodes.network import input_identifiers
from . import looks
from .materials import (
    CELL_MATERIAL,
    DEFAULT_BAR_COLOR,
    EDGE_MATERIAL,
    HIGHLIGHT_MATERIAL,
    LABEL_MATERIAL,
    bar_color_socket,
    ensure_materials,
    link_brightness_socket,
)
from .network import get_network_input, network_modifier, set_network_input
from .stage import BACKGROUND, CAMERA_NAME, LIGHT_NAME, _ensure_light, frame_camera
from .user_folders import builtin_presets_folder, preset_entries, safe_file_name, user_folder

STYLES_FOLDER = "styles"
# Key of a style -> the network's modifier input it sets.
NETWORK_KEYS = {
    "activation_colormap": "Activation Colormap",
    "weight_colormap": "Weight Colormap",
    "normalize_across_network": "Normalize Across Network",
    # Layout inputs, but part of a look: on white, the gaps between cells read as a white grid over the maps,
    # and thin grey links all but vanish.
    "cell_gap": "Cell Gap",
    "link_radius": "Link Radius",
}
# Key of a style -> the material whose emission strength it sets.
EMISSION_KEYS = {
    "cell_emission": CELL_MATERIAL,
    "edge_emission": EDGE_MATERIAL,
    "highlight_emission": HIGHLIGHT_MATERIAL,
}
COLOR_KEYS = ("background", "label_color", "bar_color")
# The render side of a look (scene.looks): engine, samples, size and dpi, bloom, depth of field.
RENDER_KEYS = (
    "engine",
    "samples",
    "resolution",
    "print_size",
    "dpi",
    "dither",
    "world_lighting",
    "bloom_strength",
    "bloom_threshold",
    "bloom_size",
    "depth_of_field",
)
# Every key a style may hold; "name" and "description" are only for people reading the file.
MATERIAL_KEYS = ("label_color", "bar_color", "link_brightness", *EMISSION_KEYS)
KEYS = (*NETWORK_KEYS, "background", "light_energy", *MATERIAL_KEYS, *RENDER_KEYS)
INFO_KEYS = ("name", "description")
# On the scene: the name of the last style that set how to render (engine, size), which the render operators
# then offer instead of their own defaults.
LOOK_PROPERTY = "blender_cnn_look"
# A style's engine -> scene.render.engine.
ENGINES = {"CYCLES": "CYCLES", "EEVEE": "BLENDER_EEVEE", "WORKBENCH": "BLENDER_WORKBENCH"}
MAX_PIXELS = 16384  # Blender's largest render side
# Keys whose value is a number with these bounds (inclusive; None: unbounded).
NUMBER_RANGES: dict[str, tuple[float, float | None]] = {
    "cell_gap": (0.0, 0.95),
    "link_radius": (0.0, None),
    "link_brightness": (0.0, 1.0),
    "light_energy": (0.0, None),
    **dict.fromkeys(EMISSION_KEYS, (0.0, None)),
    "dpi": (1.0, 10000.0),
    "dither": (0.0, 2.0),
    "world_lighting": (0.0, None),
    "bloom_strength": (0.0, 1.0),
    "bloom_threshold": (0.0, None),
    "bloom_size": (0.0, 1.0),
    "depth_of_field": (0.0, looks.MAX_DOF_BLUR),
}
# What a scene without a world, light or materials shows (scene.stage and scene.materials' defaults).
DEFAULT_LIGHT_ENERGY = 2.0
DEFAULT_LABEL_COLOR = (0.85, 0.87, 0.9, 1.0)
DEFAULT_EMISSION = {"cell_emission": 0.9, "edge_emission": 1.6, "highlight_emission": 1.4}


# ---------------------------------------------------------------- folders and files


def user_styles_folder() -> str:
    """Where the user's own styles are saved (the add-on's user folder, never its own)."""
    return user_folder(STYLES_FOLDER)


def builtin_styles_folder() -> Path | None:
    folder = builtin_presets_folder()
    folder = Path(folder) / STYLES_FOLDER if folder else None
    return folder if folder is not None and folder.is_dir() else None


def style_presets() -> list[tuple[str, str, str]]:
    """``[(identifier, label, path)]``: built-in styles, then the user's."""
    return preset_entries(builtin_styles_folder(), user_styles_folder())


def style_path(identifier: str) -> str:
    """The file of a preset by its identifier from ``style_presets``."""
    for preset_id, _label, path in style_presets():
        if preset_id == identifier:
            return path
    raise BlenderCNNError(
        identifier, f"is no style preset; the presets are {[preset_id for preset_id, _label, _path in style_presets()]}"
    )


def load_style(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The style in the JSON file ``path``, checked (a bad key or value raises naming the file and the key)."""
    path = str(path)
    try:
        with open(path, encoding="utf-8") as handle:
            style = json.load(handle)
    except OSError as error:
        raise BlenderCNNError(path, f"cannot be read: {error.strerror or error}") from error
    except ValueError as error:
        raise BlenderCNNError(path, f"is not valid JSON: {error}") from error
    return check_style(style, path)


def save_style(style: dict[str, Any], name: str, folder: str | os.PathLike[str] | None = None) -> str:
    """Write ``style`` as ``<user styles folder>/<name>.json``; returns the path. Refuses an invalid style."""
    style = check_style(style, name)
    folder = folder or user_styles_folder()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, safe_file_name(name) + ".json")
    style = {"name": name, **{key: value for key, value in style.items() if key != "name"}}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(style, handle, indent=2)
        handle.write("\n")
    return path


# ---------------------------------------------------------------- checking


def check_style(style: object, where: str = "style") -> dict[str, Any]:
    """A clean copy of ``style`` (colors as 4 floats); raises one BlenderCNNError naming ``where`` and the key."""
    if not isinstance(style, dict):
        raise BlenderCNNError(where, f"must hold a JSON object of style settings, not {type(style).__name__}")
    unknown = [key for key in style if key not in KEYS and key not in INFO_KEYS]
    if unknown:
        raise BlenderCNNError(where, f"has unknown key {unknown[0]!r}; a style may hold {list(KEYS)}")
    checked: dict[str, Any] = {}
    for key, value in style.items():
        if key in INFO_KEYS:
            if not isinstance(value, str):
                raise BlenderCNNError(where, f"key {key!r} must be text, not {value!r}")
            checked[key] = value
        elif key in ("activation_colormap", "weight_colormap"):
            names = colormaps.ACTIVATION_COLORMAPS if key == "activation_colormap" else colormaps.WEIGHT_COLORMAPS
            if value not in names:
                raise BlenderCNNError(where, f"key {key!r} is {value!r}, which is no colormap of {list(names)}")
            checked[key] = value
        elif key == "normalize_across_network":
            if not isinstance(value, bool):
                raise BlenderCNNError(where, f"key {key!r} must be true or false, not {value!r}")
            checked[key] = value
        elif key in COLOR_KEYS:
            checked[key] = _color(value, where, key)
        elif key == "engine":
            if value not in ENGINES:
                raise BlenderCNNError(where, f"key {key!r} is {value!r}, which is no render engine of {list(ENGINES)}")
            checked[key] = value
        elif key == "samples":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65536:
                raise BlenderCNNError(where, f"key {key!r} must be a whole number from 1 to 65536, not {value!r}")
            checked[key] = value
        elif key == "resolution":
            if (
                not isinstance(value, (list, tuple))
                or len(value) != 2
                or not all(isinstance(side, int) and not isinstance(side, bool) for side in value)
                or not all(4 <= side <= MAX_PIXELS for side in value)
            ):
                raise BlenderCNNError(
                    where, f"key {key!r} must be two whole numbers of pixels from 4 to {MAX_PIXELS}, not {value!r}"
                )
            checked[key] = [int(side) for side in value]
        elif key == "print_size":
            if (
                not isinstance(value, (list, tuple))
                or len(value) != 2
                or not all(_is_number(side) and math.isfinite(side) and side > 0 for side in value)
            ):
                raise BlenderCNNError(where, f"key {key!r} must be a width and a height in inches, not {value!r}")
            checked[key] = [float(side) for side in value]
        else:
            low, high = NUMBER_RANGES[key]
            if not _is_number(value) or not math.isfinite(value) or value < low or (high is not None and value > high):
                bounds = f"from {low:g} to {high:g}" if high is not None else f"of {low:g} or more"
                raise BlenderCNNError(where, f"key {key!r} must be a number {bounds}, not {value!r}")
            checked[key] = float(value)
    if "print_size" in checked:
        if "resolution" in checked:
            raise BlenderCNNError(where, "gives both 'resolution' and 'print_size': keep the one you mean")
        if "dpi" not in checked:
            raise BlenderCNNError(where, "gives 'print_size' without 'dpi': a size in inches needs its dots per inch")
        pixels = looks.print_resolution(checked["print_size"], checked["dpi"])
        if not all(4 <= side <= MAX_PIXELS for side in pixels):
            raise BlenderCNNError(
                where,
                f"key 'print_size' {checked['print_size']} at {checked['dpi']:g} dpi is "
                f"{pixels[0]} x {pixels[1]} pixels; a side must be from 4 to {MAX_PIXELS}",
            )
    return checked


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _color(value, where, key):
    if (
        not isinstance(value, (list, tuple))
        or len(value) not in (3, 4)
        or not all(_is_number(channel) and math.isfinite(channel) and 0.0 <= channel <= 1.0 for channel in value)
    ):
        raise BlenderCNNError(where, f"key {key!r} must be 3 or 4 numbers from 0 to 1 (RGB or RGBA), not {value!r}")
    return [float(channel) for channel in value] + ([1.0] if len(value) == 3 else [])


# ---------------------------------------------------------------- reading and applying


def current_style(network: bpy.types.Object, scene: bpy.types.Scene | None = None) -> dict[str, Any]:
    """The style ``network`` and ``scene`` show now, with every key of a style."""
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    style = {key: get_network_input(network, name) for key, name in NETWORK_KEYS.items()}
    style["normalize_across_network"] = bool(style["normalize_across_network"])
    style["cell_gap"], style["link_radius"] = float(style["cell_gap"]), float(style["link_radius"])
    background = _world_background(scene)
    style["background"] = list(background.inputs["Color"].default_value) if background else list(BACKGROUND)
    light = bpy.data.objects.get(LIGHT_NAME)
    style["light_energy"] = (
        float(light.data.energy) if light is not None and light.type == "LIGHT" else DEFAULT_LIGHT_ENERGY
    )
    label = _emission_node(bpy.data.materials.get(LABEL_MATERIAL), "ShaderNodeEmission")
    style["label_color"] = list(label.inputs["Color"].default_value) if label else list(DEFAULT_LABEL_COLOR)
    for key, material_name in EMISSION_KEYS.items():
        node = _emission_node(bpy.data.materials.get(material_name), "ShaderNodeBsdfPrincipled")
        style[key] = float(node.inputs["Emission Strength"].default_value) if node else DEFAULT_EMISSION[key]
    bar = bar_color_socket(bpy.data.materials.get(HIGHLIGHT_MATERIAL))
    style["bar_color"] = list(bar.default_value) if bar is not None else list(DEFAULT_BAR_COLOR)
    links = link_brightness_socket(bpy.data.materials.get(EDGE_MATERIAL))
    style["link_brightness"] = float(links.default_value[0]) if links is not None else 1.0
    for key in COLOR_KEYS:
        style[key] = [float(channel) for channel in style[key]]
    style.update(_current_render(scene))
    return style


def _current_render(scene):
    """The render side of the look ``scene`` has now (every render key but ``print_size``)."""
    render = scene.render
    engine = next((key for key, name in ENGINES.items() if name == render.engine), "CYCLES")
    samples = scene.eevee.taa_render_samples if engine == "EEVEE" else scene.cycles.samples
    return {
        "engine": engine,
        "samples": int(samples),
        "resolution": [int(render.resolution_x), int(render.resolution_y)],
        "dpi": looks.dpi(scene),
        "dither": float(render.dither_intensity),
        "world_lighting": looks.world_lighting(scene),
        **looks.bloom_settings(scene),
        "depth_of_field": looks.depth_of_field_blur(scene.camera),
    }


def apply_style(
    network: bpy.types.Object,
    style: dict[str, Any] | str | os.PathLike[str],
    scene: bpy.types.Scene | None = None,
    where: str | None = None,
) -> dict[str, Any]:
    """Give ``network`` and ``scene`` the look of ``style`` (a dict, or the path of a preset file).

    Only the keys the style holds change. Everything is checked first: a bad
    key or value raises one BlenderCNNError naming ``where`` (the file, for a
    path) and the key, and nothing changes. Returns the checked style.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    if isinstance(style, (str, os.PathLike)):
        where = where or str(style)
        style = load_style(style)
    where = where or (style.get("name") if isinstance(style, dict) else None) or "style"
    style = check_style(style, where)
    modifier = network_modifier(network)
    identifiers = input_identifiers(modifier.node_group)
    for key, name in NETWORK_KEYS.items():
        if key in style and name not in identifiers:
            raise BlenderCNNError(network.name, f"has no setting {name!r} for the style key {key!r}")
    if style.get("bloom_strength", 0.0) > 0.0:
        looks.check_bloom(scene)
    if style.get("depth_of_field", 0.0) > 0.0:
        looks.check_depth_of_field(scene)

    # Checked: from here on nothing refuses.
    for key, name in NETWORK_KEYS.items():
        if key in style:
            set_network_input(network, name, style[key])
    if "background" in style or "world_lighting" in style:
        background = _world_background(scene, create=True)
        if "background" in style:
            background.inputs["Color"].default_value = style["background"]
        if "world_lighting" in style:
            looks.set_world_lighting(scene, background, style["world_lighting"])
    if "light_energy" in style:
        light = bpy.data.objects.get(LIGHT_NAME)
        if light is None or light.type != "LIGHT":
            light = _ensure_light(scene)
        light.data.energy = style["light_energy"]
    if any(key in style for key in MATERIAL_KEYS):
        ensure_materials()
    if "label_color" in style:
        _emission_node(bpy.data.materials[LABEL_MATERIAL], "ShaderNodeEmission").inputs["Color"].default_value = style[
            "label_color"
        ]
    if "bar_color" in style:
        bar_color_socket(bpy.data.materials[HIGHLIGHT_MATERIAL]).default_value = style["bar_color"]
    if "link_brightness" in style:
        brightness = style["link_brightness"]
        link_brightness_socket(bpy.data.materials[EDGE_MATERIAL]).default_value = (brightness,) * 3 + (1.0,)
    for key, material_name in EMISSION_KEYS.items():
        if key in style:
            node = _emission_node(bpy.data.materials[material_name], "ShaderNodeBsdfPrincipled")
            node.inputs["Emission Strength"].default_value = style[key]
    _apply_render(network, style, scene)
    return style


def look_render_settings(scene: bpy.types.Scene) -> dict[str, Any]:
    """``engine``, ``width``, ``height`` and ``samples`` of the scene's look, {} when no style has set them.

    What a render operator should offer: a look made for print or for Eevee
    renders at its own size and with its own engine, not the operator's defaults.
    """
    if not scene.get(LOOK_PROPERTY):
        return {}
    render = _current_render(scene)
    width, height = render["resolution"]
    return {"engine": render["engine"], "width": width, "height": height, "samples": render["samples"]}


def _apply_render(network, style, scene):
    """The render side of a checked style: engine, samples, size and dpi, bloom, depth of field."""
    render = scene.render
    if any(key in style for key in ("engine", "samples", "resolution", "print_size")):
        scene[LOOK_PROPERTY] = style.get("name", "style")
    if "engine" in style:
        render.engine = ENGINES[style["engine"]]
    if "samples" in style:
        scene.cycles.samples = style["samples"]
        scene.eevee.taa_render_samples = style["samples"]
    if "dpi" in style:
        looks.set_dpi(scene, style["dpi"])
    if "dither" in style:
        # Dither hides banding in dark gradients (a bloom's halo), and speckles a white page with 254s.
        render.dither_intensity = style["dither"]
    size = style.get("resolution")
    if "print_size" in style:
        size = looks.print_resolution(style["print_size"], style["dpi"])
    if size is not None:
        aspect = render.resolution_x / render.resolution_y
        render.resolution_x, render.resolution_y = size
        render.resolution_percentage = 100
        camera = scene.camera
        # A new shape of frame crops or pads the stage's framing: frame again, unless the camera moves.
        if (
            camera is not None
            and camera.name == CAMERA_NAME
            and not math.isclose(aspect, size[0] / size[1], rel_tol=0.01)
            and (camera.animation_data is None or camera.animation_data.action is None)
        ):
            frame_camera(camera, network, scene)
    if "bloom_strength" in style or "bloom_threshold" in style or "bloom_size" in style:
        strength = style.get("bloom_strength", looks.bloom_settings(scene)["bloom_strength"])
        looks.set_bloom(scene, strength, style.get("bloom_threshold"), style.get("bloom_size"))
    if "depth_of_field" in style:
        looks.set_depth_of_field(network, style["depth_of_field"])


def _world_background(scene, create=False):
    """The Background node of the scene's world (made with the world when ``create``), or None."""
    world = scene.world
    if world is None:
        if not create:
            return None
        world = scene.world = bpy.data.worlds.new("BCNN World")
    tree = world.node_tree
    if tree is None:
        return None
    background = next((node for node in tree.nodes if node.bl_idname == "ShaderNodeBackground"), None)
    if background is None and create:
        background = tree.nodes.new("ShaderNodeBackground")
        output = next(
            (node for node in tree.nodes if node.bl_idname == "ShaderNodeOutputWorld"), None
        ) or tree.nodes.new("ShaderNodeOutputWorld")
        tree.links.new(background.outputs[0], output.inputs["Surface"])
    return background


def _emission_node(material, kind):
    if material is None or material.node_tree is None:
        return None
    return next((node for node in material.node_tree.nodes if node.bl_idname == kind), None)
