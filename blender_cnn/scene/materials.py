"""Materials that read the color attributes the node groups store, so renders need no Python."""

from __future__ import annotations

import bpy

from ..nodes.groups import CELL_COLOR, EDGE_COLOR
from ..nodes.operations import HIGHLIGHT_COLOR

VERSION_PROPERTY = "blender_cnn_version"
CELL_MATERIAL, EDGE_MATERIAL, LABEL_MATERIAL, HIGHLIGHT_MATERIAL = (
    "BCNN Cell",
    "BCNN Edge",
    "BCNN Label",
    "BCNN Highlight",
)
ANNOTATION_MATERIAL, ANNOTATION_PLATE_MATERIAL = "BCNN Annotation", "BCNN Annotation Plate"


def ensure_materials() -> dict[str, bpy.types.Material]:
    """``{"cell", "edge", "label"}`` materials, created once and reused."""
    return {
        "cell": _ensure(CELL_MATERIAL, 2, _glowing_attribute_material, attribute=CELL_COLOR, strength=0.9),
        "edge": _ensure(EDGE_MATERIAL, 2, _glowing_attribute_material, attribute=EDGE_COLOR, strength=1.6),
        "label": _ensure(LABEL_MATERIAL, 1, _plain_emission, color=(0.85, 0.87, 0.9, 1.0), strength=1.0),
        # Receptive-field frames, kernel tiles, pooling winners and probability bars.
        "highlight": _ensure(
            HIGHLIGHT_MATERIAL, 2, _glowing_attribute_material, attribute=HIGHLIGHT_COLOR, strength=1.4
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


def _glowing_attribute_material(tree, attribute, strength):
    """Cells and edges glow in their data color, with a little diffuse shading for depth.

    The color is read from the geometry (realized meshes, curves) and from the
    instancer (the cells' quads in the viewport) and summed: the one that does
    not exist reads as black.
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
    principled = tree.nodes.new("ShaderNodeBsdfPrincipled")
    principled.inputs["Roughness"].default_value = 0.5
    principled.inputs["Emission Strength"].default_value = strength
    tree.links.new(sockets["Result_Color"], principled.inputs["Base Color"])
    tree.links.new(sockets["Result_Color"], principled.inputs["Emission Color"])
    return principled.outputs["BSDF"]


def _plain_emission(tree, color, strength):
    emission = tree.nodes.new("ShaderNodeEmission")
    emission.inputs["Color"].default_value = color
    emission.inputs["Strength"].default_value = strength
    return emission.outputs["Emission"]
