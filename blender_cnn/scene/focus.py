"""Focus the receptive-field view on a cell picked in the viewport (through the 3D cursor)."""

import bpy
import numpy as np

from .network import set_network_input

FOCUS_INPUTS = ("Focus Layer", "Focus Channel", "Focus Row", "Focus Column")


def cell_centres(network):
    """World-space centres and ``(layer, channel, row, col)`` of the cells as drawn (evaluated).

    Cells are the faces with the cell material that belong to a layer and are not
    a folded layer's summary; their quads carry the cell's attributes.
    """
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()  # keeps the mesh alive while it is read
    mesh = geometry.mesh
    if mesh is None or not len(mesh.polygons):
        return np.zeros((0, 3), dtype=np.float32), np.zeros((0, 4), dtype=np.int32)
    faces = len(mesh.polygons)
    loop_start = _read(mesh.polygons, "loop_start", faces, np.int32)
    material_index = _read(mesh.polygons, "material_index", faces, np.int32)
    corner_vertex = _read(mesh.loops, "vertex_index", len(mesh.loops), np.int32)
    centres = _read(mesh.polygons, "center", faces * 3, np.float32).reshape(-1, 3)
    first_vertex = corner_vertex[loop_start]
    indices = np.stack([_point_attribute(mesh, name)[first_vertex] for name in ("layer", "channel", "row", "col")],
                       axis=1)
    cell_slots = [i for i, material in enumerate(mesh.materials) if material and material.name.startswith("BCNN Cell")]
    is_cell = np.isin(material_index, cell_slots) & (indices[:, 0] >= 0)
    if "is_summary" in mesh.attributes:
        is_cell &= _point_attribute(mesh, "is_summary")[first_vertex] == 0
    matrix = np.array(evaluated.matrix_world, dtype=np.float32)
    world = centres[is_cell] @ matrix[:3, :3].T + matrix[:3, 3]
    return world, indices[is_cell]


def focus_nearest_cell(network, location):
    """Set the focus inputs to the drawn cell nearest ``location`` (world space); returns its indices.

    Returns ``(layer, channel, row, col)``, or None when the network draws no cells.
    """
    centres, indices = cell_centres(network)
    if not len(centres):
        return None
    nearest = indices[int(np.argmin(np.sum((centres - np.asarray(location, dtype=np.float32)) ** 2, axis=1)))]
    for name, value in zip(FOCUS_INPUTS, nearest):
        set_network_input(network, name, int(value))
    return tuple(int(value) for value in nearest)


def _read(collection, field, count, dtype):
    values = np.empty(count, dtype=dtype)
    collection.foreach_get(field, values)
    return values


def _point_attribute(mesh, name):
    attribute = mesh.attributes[name]
    values = np.empty(len(attribute.data), dtype=np.int32)
    attribute.data.foreach_get("value", values)
    return values
