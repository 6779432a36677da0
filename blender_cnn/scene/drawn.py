"""What a network draws, read back from its evaluated geometry as numpy arrays.

The cells and every other square (legend, receptive-field frames, kernel
tiles, pooling marks) are instances of one quad per material; labels, bars
and link tubes are mesh faces. Serves the viewport focus, the camera framing
and the tests alike.
"""

from __future__ import annotations

from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

from ..nodes.graph import GRAPH_LINK
from ..nodes.timeline import SCREEN_OVERLAY

_VECTOR_WIDTHS = {"FLOAT_COLOR": ("color", 4), "FLOAT_VECTOR": ("vector", 3), "FLOAT4X4": ("value", 16)}


def evaluated_geometry(
    network: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None
) -> bpy.types.GeometrySet:
    """The network's GeometrySet after its nodes; keep it alive while reading its parts."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    return network.evaluated_get(depsgraph).evaluated_geometry()


def read_attribute(data: bpy.types.Mesh | bpy.types.Curves | bpy.types.PointCloud, name: str) -> np.ndarray:
    """One attribute of a mesh, curves or point cloud as a numpy array (rows for vectors and colors)."""
    attribute: Any = data.attributes[name]  # Any: bpy's stubs give ``data`` only to Attribute's subclasses
    field, width = _VECTOR_WIDTHS.get(attribute.data_type, ("value", 1))
    dtype = np.int32 if attribute.data_type in {"INT", "BOOLEAN"} else np.float32
    values = np.empty(len(attribute.data) * width, dtype=dtype)
    attribute.data.foreach_get(field, values)
    return values.reshape(-1, width) if width > 1 else values


class DrawnQuads:
    """The instanced squares drawn with one material: their world centres, corners and attributes."""

    def __init__(self, geometry: bpy.types.GeometrySet, matrix_world: Matrix, material_prefix: str) -> None:
        self._instances = geometry.instances_pointcloud()
        references = geometry.instance_references()
        self._matrix = np.array(matrix_world, dtype=np.float32)
        matching = [
            index for index, reference in enumerate(references) if material_name(reference).startswith(material_prefix)
        ]
        # The reference GeometrySets own their meshes; keep them, not just the meshes.
        self._quad_references = [references[index] for index in matching]
        if self._instances is None or not matching:
            self.chosen = np.zeros(0, dtype=np.int64)
            return
        reference = read_attribute(self._instances, ".reference_index")
        self.chosen = np.flatnonzero(np.isin(reference, matching))

    def __len__(self) -> int:
        return len(self.chosen)

    def has(self, name: str) -> bool:
        return self._instances is not None and name in self._instances.attributes

    def attribute(self, name: str) -> np.ndarray:
        if not len(self.chosen):
            return np.zeros(0)
        return read_attribute(self._instances, name)[self.chosen]

    def transforms(self) -> np.ndarray:
        """World matrices (n, 4, 4) of the chosen instances."""
        if not len(self.chosen):
            return np.zeros((0, 4, 4), dtype=np.float32)
        # Stored column by column, as Blender's matrices are.
        local = self.attribute("instance_transform").reshape(-1, 4, 4).transpose(0, 2, 1)
        return self._matrix @ local

    def centres(self) -> np.ndarray:
        if not len(self.chosen):
            return np.zeros((0, 3), dtype=np.float32)
        # The places alone (the last of each matrix's columns as stored), not every matrix multiplied out.
        places = self.attribute("instance_transform").reshape(-1, 16)[:, 12:15]
        return places @ self._matrix[:3, :3].T + self._matrix[:3, 3]

    def corners(self) -> np.ndarray:
        """The four world-space corners (n, 4, 3) of every chosen quad."""
        reference = self._quad_references[0]
        assert isinstance(reference, bpy.types.GeometrySet) and reference.mesh is not None  # an instanced quad
        quad = reference.mesh
        local = np.empty(len(quad.vertices) * 3, dtype=np.float32)
        quad.vertices.foreach_get("co", local)
        local = np.c_[local.reshape(-1, 3), np.ones(len(quad.vertices), dtype=np.float32)]
        return np.einsum("nij,vj->nvi", self.transforms(), local)[:, :, :3]


def drawn_quads(
    network: bpy.types.Object, material_prefix: str, depsgraph: bpy.types.Depsgraph | None = None
) -> tuple[DrawnQuads, bpy.types.GeometrySet]:
    """The squares ``network`` draws with a material whose name starts with ``material_prefix``.

    Returns the ``DrawnQuads`` and the GeometrySet it reads, which must be kept
    alive as long as the quads are read.
    """
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()
    return DrawnQuads(geometry, evaluated.matrix_world, material_prefix), geometry


def drawn_points(
    network: bpy.types.Object, limit: int = 20_000, depsgraph: bpy.types.Depsgraph | None = None
) -> np.ndarray:
    """World positions of (a sample of) everything drawn with the network: quad centres and mesh vertices.

    The training overlay is left out: it sits in front of the camera, wherever that is.
    """
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()
    matrix = np.array(evaluated.matrix_world, dtype=np.float32)
    parts = [DrawnQuads(geometry, evaluated.matrix_world, "").centres()]
    if geometry.mesh is not None and len(geometry.mesh.vertices):
        local = read_attribute(geometry.mesh, "position")
        if SCREEN_OVERLAY in geometry.mesh.attributes:
            local = local[read_attribute(geometry.mesh, SCREEN_OVERLAY) == 0]
        parts.append(local @ matrix[:3, :3].T + matrix[:3, 3])
    points = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.float32)
    return points[:: max(1, len(points) // limit)]


def drawn_curves(network: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None) -> np.ndarray:
    """World positions (curves, points per curve, 3) of the connection curves as drawn (all of equal length).

    The links between the layers of a graph (``graph_link`` 1) are left out; ``drawn_links`` reads them.
    """
    return _curves(network, depsgraph, links=False)


def drawn_links(network: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None) -> np.ndarray:
    """World positions (links, points per link, 3) of the links between a graph's layers, as drawn."""
    return _curves(network, depsgraph, links=True)


def _curves(network, depsgraph, links):
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()
    curves = geometry.curves
    if curves is None or not len(curves.curves):
        return np.zeros((0, 2, 3), dtype=np.float32)
    matrix = np.array(evaluated.matrix_world, dtype=np.float32)
    points = read_attribute(curves, "position") @ matrix[:3, :3].T + matrix[:3, 3]
    offsets = np.empty(len(curves.curves) + 1, dtype=np.int32)
    curves.curve_offset_data.foreach_get("value", offsets)
    is_link = (
        read_attribute(curves, GRAPH_LINK)
        if GRAPH_LINK in curves.attributes
        else np.zeros(len(curves.curves), dtype=np.int32)
    )
    chosen = np.flatnonzero(is_link == int(links))
    if not len(chosen):
        return np.zeros((0, 2, 3), dtype=np.float32)
    length = int(offsets[chosen[0] + 1] - offsets[chosen[0]])
    index = offsets[chosen][:, None] + np.arange(length)[None, :]
    return points[index]


def material_name(reference):
    """The material of an instanced quad ("" for anything else); Set Material leaves an empty first slot."""
    mesh = getattr(reference, "mesh", None)
    materials = [material for material in (mesh.materials if mesh is not None else ()) if material is not None]
    return materials[0].name if materials else ""
