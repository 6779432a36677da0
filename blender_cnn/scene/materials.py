"""Materials that read the color attributes the node groups store, so renders need no Python."""

import bpy

from ..nodes.groups import CELL_COLOR, EDGE_COLOR
from ..nodes.operations import HIGHLIGHT_COLOR

VERSION_PROPERTY = "blender_cnn_version"


def ensure_materials():
    """``{"cell", "edge", "label"}`` materials, created once and reused."""
    return {
        "cell": _ensure("BCNN Cell", 1, _glowing_attribute_material, attribute=CELL_COLOR, strength=0.9),
        "edge": _ensure("BCNN Edge", 1, _glowing_attribute_material, attribute=EDGE_COLOR, strength=1.6),
        "label": _ensure("BCNN Label", 1, _plain_emission, color=(0.85, 0.87, 0.9, 1.0), strength=1.0),
        # Receptive-field frames, kernel tiles, pooling winners and probability bars.
        "highlight": _ensure("BCNN Highlight", 1, _glowing_attribute_material, attribute=HIGHLIGHT_COLOR,
                             strength=1.4),
    }


def _ensure(name, version, build, **options):
    material = bpy.data.materials.get(name)
    if material is not None and material.get(VERSION_PROPERTY) == version:
        return material
    if material is None:
        material = bpy.data.materials.new(name)
    tree = material.node_tree
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    output.location = (400, 0)
    shader = build(tree, **options)
    tree.links.new(shader, output.inputs["Surface"])
    material[VERSION_PROPERTY] = version
    return material


def _glowing_attribute_material(tree, attribute, strength):
    """Cells and edges glow in their data color, with a little diffuse shading for depth."""
    color = tree.nodes.new("ShaderNodeAttribute")
    color.attribute_type = "GEOMETRY"
    color.attribute_name = attribute
    color.location = (-400, 0)
    principled = tree.nodes.new("ShaderNodeBsdfPrincipled")
    principled.inputs["Roughness"].default_value = 0.5
    principled.inputs["Emission Strength"].default_value = strength
    tree.links.new(color.outputs["Color"], principled.inputs["Base Color"])
    tree.links.new(color.outputs["Color"], principled.inputs["Emission Color"])
    return principled.outputs["BSDF"]


def _plain_emission(tree, color, strength):
    emission = tree.nodes.new("ShaderNodeEmission")
    emission.inputs["Color"].default_value = color
    emission.inputs["Strength"].default_value = strength
    return emission.outputs["Emission"]
