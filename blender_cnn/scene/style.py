"""Scene style presets: the look of a network and its stage as one small JSON file.

A style holds the colormaps and normalization (modifier inputs of the
network), the world's background color, the key light's energy and the
shared materials' label color and emission strengths. A preset may hold only
some of these keys; the others are left as they are. Built-in presets live in
``presets/styles/`` of the add-on, the user's in the add-on's user folder
(``user_folder("styles")``), never in the add-on's own folder.

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
from .materials import CELL_MATERIAL, EDGE_MATERIAL, HIGHLIGHT_MATERIAL, LABEL_MATERIAL, ensure_materials
from .network import get_network_input, network_modifier, set_network_input
from .stage import BACKGROUND, LIGHT_NAME, _ensure_light
from .user_folders import builtin_presets_folder, preset_entries, safe_file_name, user_folder

STYLES_FOLDER = "styles"
# Key of a style -> the network's modifier input it sets.
NETWORK_KEYS = {
    "activation_colormap": "Activation Colormap",
    "weight_colormap": "Weight Colormap",
    "normalize_across_network": "Normalize Across Network",
}
# Key of a style -> the material whose emission strength it sets.
EMISSION_KEYS = {
    "cell_emission": CELL_MATERIAL,
    "edge_emission": EDGE_MATERIAL,
    "highlight_emission": HIGHLIGHT_MATERIAL,
}
COLOR_KEYS = ("background", "label_color")
# Every key a style may hold; "name" and "description" are only for people reading the file.
KEYS = (*NETWORK_KEYS, "background", "light_energy", "label_color", *EMISSION_KEYS)
INFO_KEYS = ("name", "description")
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
        else:  # light_energy and the emission strengths
            if not _is_number(value) or not math.isfinite(value) or value < 0:
                raise BlenderCNNError(where, f"key {key!r} must be a number of 0 or more, not {value!r}")
            checked[key] = float(value)
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
    style["background"] = [float(channel) for channel in style["background"]]
    style["label_color"] = [float(channel) for channel in style["label_color"]]
    return style


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

    # Checked: from here on nothing refuses.
    for key, name in NETWORK_KEYS.items():
        if key in style:
            set_network_input(network, name, style[key])
    if "background" in style:
        background = _world_background(scene, create=True)
        background.inputs["Color"].default_value = style["background"]
    if "light_energy" in style:
        light = bpy.data.objects.get(LIGHT_NAME)
        if light is None or light.type != "LIGHT":
            light = _ensure_light(scene)
        light.data.energy = style["light_energy"]
    if "label_color" in style or any(key in style for key in EMISSION_KEYS):
        ensure_materials()
    if "label_color" in style:
        _emission_node(bpy.data.materials[LABEL_MATERIAL], "ShaderNodeEmission").inputs["Color"].default_value = style[
            "label_color"
        ]
    for key, material_name in EMISSION_KEYS.items():
        if key in style:
            node = _emission_node(bpy.data.materials[material_name], "ShaderNodeBsdfPrincipled")
            node.inputs["Emission Strength"].default_value = style[key]
    return style


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
