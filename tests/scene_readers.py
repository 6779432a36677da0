"""Read what a user would see: the evaluated geometry of a network, as numpy arrays."""

import bpy
import numpy as np


def evaluated_geometry(obj):
    """The GeometrySet after Geometry Nodes; keep it alive while reading its parts."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return obj.evaluated_get(depsgraph).evaluated_geometry()


def read_attribute(data, name):
    attribute = data.attributes[name]
    field, width = {"FLOAT_COLOR": ("color", 4), "FLOAT_VECTOR": ("vector", 3)}.get(attribute.data_type,
                                                                                    ("value", 1))
    dtype = np.int32 if attribute.data_type in {"INT", "BOOLEAN"} else np.float32
    values = np.empty(len(attribute.data) * width, dtype=dtype)
    attribute.data.foreach_get(field, values)
    return values.reshape(-1, width) if width > 1 else values


def cell_faces(network, legend=False):
    """Per cell face of the evaluated mesh: its centre and point attributes at its first corner.

    Cells are the faces whose material is the cell material and that belong to a
    layer; the rest is text, and the legend's color bar (layer -1, or with
    ``legend=True`` only those). Returns ``(centres, {attribute: values})``.
    """
    geometry = evaluated_geometry(network)  # the mesh lives as long as this does
    mesh = geometry.mesh
    face_count = len(mesh.polygons)
    loop_start = np.empty(face_count, dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", loop_start)
    material_index = np.empty(face_count, dtype=np.int32)
    mesh.polygons.foreach_get("material_index", material_index)
    corner_vertex = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vertex)
    centres = np.empty(face_count * 3, dtype=np.float32)
    mesh.polygons.foreach_get("center", centres)
    cell_slots = [i for i, material in enumerate(mesh.materials) if material and material.name.startswith("BCNN Cell")]
    is_cell = np.isin(material_index, cell_slots)
    layer = read_attribute(mesh, "layer")[corner_vertex[loop_start]]
    is_cell &= (layer < 0) if legend else (layer >= 0)
    first_vertex = corner_vertex[loop_start[is_cell]]
    names = ("layer", "channel", "row", "col", "activation", "cell_color", "is_summary")
    values = {name: read_attribute(mesh, name)[first_vertex] for name in names}
    return centres.reshape(-1, 3)[is_cell], values


def label_face_count(network):
    geometry = evaluated_geometry(network)
    mesh = geometry.mesh
    material_index = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", material_index)
    label_slots = [i for i, material in enumerate(mesh.materials) if material and material.name.startswith("BCNN Label")]
    return int(np.isin(material_index, label_slots).sum())
