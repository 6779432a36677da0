"""Materials that read the color attributes the node groups store, so renders need no Python."""

from __future__ import annotations

from typing import Any

import bpy

from ..nodes.graph import GRAPH_LINK
from ..nodes.groups import CELL_COLOR, EDGE_COLOR
from ..nodes.operations import BAR_COLOR, HIGHLIGHT_COLOR, OVERLAY_BAR

VERSION_PROPERTY = "blender_cnn_version"
CELL_MATERIAL, EDGE_MATERIAL, LABEL_MATERIAL, HIGHLIGHT_MATERIAL = (
    "BCNN Cell",
    "BCNN Edge",
    "BCNN Label",
    "BCNN Highlight",
)
ANNOTATION_MATERIAL, ANNOTATION_PLATE_MATERIAL = "BCNN Annotation", "BCNN Annotation Plate"
# The node of the highlight material that paints the probability bars; a style sets its color.
BAR_COLOR_NODE = "BCNN Bar Color"
DEFAULT_BAR_COLOR = (*BAR_COLOR, 1.0)
# The node of the edge material that scales the brightness of the links between a graph's layers.
LINK_BRIGHTNESS_NODE = "BCNN Link Brightness"


def ensure_materials() -> dict[str, bpy.types.Material]:
    """``{"cell", "edge", "label"}`` materials, created once and reused."""
    return {
        "cell": _ensure(CELL_MATERIAL, 2, _glowing_attribute_material, attribute=CELL_COLOR, strength=0.9),
        "edge": _ensure(EDGE_MATERIAL, 3, _glowing_attribute_material, attribute=EDGE_COLOR, strength=1.6, links=True),
        "label": _ensure(LABEL_MATERIAL, 1, _plain_emission, color=(0.85, 0.87, 0.9, 1.0), strength=1.0),
        # Receptive-field frames, kernel tiles, pooling winners and probability bars.
        "highlight": _ensure(
            HIGHLIGHT_MATERIAL, 3, _glowing_attribute_material, attribute=HIGHLIGHT_COLOR, strength=1.4, bars=True
        ),
    }


def ensure_annotation_materials() -> tuple[bpy.types.Material, bpy.types.Material]:
    """``(text, plate)`` materials of inspection annotations: bright numbers on dark plates, readable on any cell."""
    return (
        _ensure(ANNOTATION_MATERIAL, 1, _plain_emission, color=(1.0, 0.93, 0.75, 1.0), strength=2.0),
        _ensure(ANNOTATION_PLATE_MATERIAL, 1, _plain_emission, color=(0.01, 0.01, 0.015, 1.0), strength=1.0),
    )


def _ensure(name, version, build, **options):
    material = bpy.data.materials.get(name)
    if material is not None and material.get(VERSION_PROPERTY) == version:
        return material
    if material is None:
        material = bpy.data.materials.new(name)
    tree = material.node_tree
    assert tree is not None  # every material has a node tree in Blender 5; the stubs allow None
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    output.location = (400, 0)
    shader = build(tree, **options)
    tree.links.new(shader, output.inputs["Surface"])
    material[VERSION_PROPERTY] = version
    return material


def _glowing_attribute_material(tree, attribute, strength, bars=False, links=False):
    """Cells and edges glow in their data color, with a little diffuse shading for depth.

    The color is read from the geometry (realized meshes, curves) and from the
    instancer (the cells' quads in the viewport) and summed: the one that does
    not exist reads as black. With ``bars``, the probability bars take the
    color of the node "BCNN Bar Color" instead: the node groups draw them pale,
    which vanishes on a white background, and a style must be able to ink them.
    With ``links``, the links between a graph's layers are scaled by the
    brightness of the node "BCNN Link Brightness": their colors are made to
    glow on black, and on white the plain grey ones would all but vanish.
    """
    colors = []
    for offset, kind in enumerate(("GEOMETRY", "INSTANCER")):
        node = tree.nodes.new("ShaderNodeAttribute")
        node.attribute_type = kind
        node.attribute_name = attribute
        node.location = (-600, 150 - 300 * offset)
        colors.append(node.outputs["Color"])
    color = tree.nodes.new("ShaderNodeMix")
    color.data_type = "RGBA"
    color.blend_type = "ADD"
    color.location = (-350, 0)
    color.inputs["Factor"].default_value = 1.0
    # A Mix node has an A and a B socket per data type; the color ones are named by identifier.
    sockets = {socket.identifier: socket for socket in (*color.inputs, *color.outputs)}
    tree.links.new(colors[0], sockets["A_Color"])
    tree.links.new(colors[1], sockets["B_Color"])
    result = sockets["Result_Color"]
    if bars:
        result = _bar_color(tree, result)
    if links:
        result = _link_brightness(tree, result)
    principled = tree.nodes.new("ShaderNodeBsdfPrincipled")
    principled.inputs["Roughness"].default_value = 0.5
    principled.inputs["Emission Strength"].default_value = strength
    tree.links.new(result, principled.inputs["Base Color"])
    tree.links.new(result, principled.inputs["Emission Color"])
    return principled.outputs["BSDF"]


def _bar_color(tree, color):
    """``color``, but the bar color where the geometry's overlay is a probability bar."""
    overlay = tree.nodes.new("ShaderNodeAttribute")
    overlay.attribute_type = "GEOMETRY"
    overlay.attribute_name = "overlay"
    overlay.location = (-600, -450)
    is_bar = tree.nodes.new("ShaderNodeMath")
    is_bar.operation = "COMPARE"
    is_bar.inputs[1].default_value = float(OVERLAY_BAR)
    is_bar.inputs[2].default_value = 0.5
    is_bar.location = (-350, -300)
    tree.links.new(overlay.outputs["Fac"], is_bar.inputs[0])
    mix = tree.nodes.new("ShaderNodeMix")
    mix.name = mix.label = BAR_COLOR_NODE
    mix.data_type = "RGBA"
    mix.location = (-150, -100)
    sockets = {socket.identifier: socket for socket in (*mix.inputs, *mix.outputs)}
    sockets["B_Color"].default_value = DEFAULT_BAR_COLOR
    tree.links.new(is_bar.outputs["Value"], sockets["Factor_Float"])
    tree.links.new(color, sockets["A_Color"])
    return sockets["Result_Color"]


def _link_brightness(tree, color):
    """``color``, times the link brightness where the geometry is a link between a graph's layers."""
    is_link = tree.nodes.new("ShaderNodeAttribute")
    is_link.attribute_type = "GEOMETRY"
    is_link.attribute_name = GRAPH_LINK
    is_link.location = (-600, -450)
    mix = tree.nodes.new("ShaderNodeMix")
    mix.name = mix.label = LINK_BRIGHTNESS_NODE
    mix.data_type = "RGBA"
    mix.blend_type = "MULTIPLY"
    mix.location = (-150, -100)
    sockets = {socket.identifier: socket for socket in (*mix.inputs, *mix.outputs)}
    sockets["B_Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    tree.links.new(is_link.outputs["Fac"], sockets["Factor_Float"])
    tree.links.new(color, sockets["A_Color"])
    return sockets["Result_Color"]


def link_brightness_socket(material: bpy.types.Material | None) -> Any:
    """The socket whose grey is the graph links' brightness in the edge material (None without one)."""
    return _node_socket(material, LINK_BRIGHTNESS_NODE)


def bar_color_socket(material: bpy.types.Material | None) -> Any:
    """The socket that holds the probability bars' color in the highlight material (None without one)."""
    return _node_socket(material, BAR_COLOR_NODE)


def _node_socket(material, name):
    """The B color of the Mix node ``name`` in ``material``, None without one."""
    if material is None or material.node_tree is None:
        return None
    node = material.node_tree.nodes.get(name)
    if node is None:
        return None
    return next(socket for socket in node.inputs if socket.identifier == "B_Color")


def _plain_emission(tree, color, strength):
    emission = tree.nodes.new("ShaderNodeEmission")
    emission.inputs["Color"].default_value = color
    emission.inputs["Strength"].default_value = strength
    return emission.outputs["Emission"]
