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


class DrawnInstances:
    """Every instance a network draws (cells, squares, glyphs) as one flat list: references, places, attributes.

    The network's tree hands its cells over nested, as one instance (``nodes/network.py``): joining 15 million
    cells with the other parts would copy them all. An instance that only carries such a nested set is not in the
    list; the instances inside it are, with its transform applied.
    """

    def __init__(self, geometry: bpy.types.GeometrySet, matrix_world: Matrix | np.ndarray) -> None:
        self.matrix = np.array(matrix_world, dtype=np.float64)
        self._levels = _levels(geometry, None)
        # The reference GeometrySets own their meshes; keep them, not just the meshes.
        self.references = [reference for level in self._levels for reference in level.references]
        self.materials = [material_name(reference) for reference in self.references]
        self._starts = np.cumsum([0] + [level.count for level in self._levels])
        reference_starts = np.cumsum([0] + [len(level.references) for level in self._levels])
        self.reference_index = (
            np.concatenate([level.reference_index + first for level, first in zip(self._levels, reference_starts)])
            if self._levels
            else np.zeros(0, dtype=np.int64)
        )

    def __len__(self) -> int:
        return len(self.reference_index)

    def chosen(self, prefix: str, but: str | None = None) -> np.ndarray:
        """The instances drawn with a material named ``prefix...`` (and not ``but...``)."""
        matching = [
            index
            for index, name in enumerate(self.materials)
            if name.startswith(prefix) and not (but and name.startswith(but))
        ]
        return np.flatnonzero(np.isin(self.reference_index, matching))

    def attribute_names(self) -> set[str]:
        return {name for level in self._levels for name in level.cloud.attributes.keys()}

    def has(self, name: str) -> bool:
        return self.data_type(name) is not None

    def data_type(self, name: str) -> str | None:
        """The type of the attribute ``name`` on the instances (None: no level has it)."""
        for level in self._levels:
            attribute = level.cloud.attributes.get(name)
            if attribute is not None:
                return attribute.data_type
        return None

    def attribute(self, name: str, chosen: np.ndarray, default: float = 0) -> np.ndarray:
        """``name`` on the chosen instances; ``default`` where their level lacks it (a join would have filled it)."""
        if len(self._levels) == 1:
            level = self._levels[0]
            return level.read(name)[chosen] if name in level.cloud.attributes else np.full(len(chosen), default)
        values = None
        level_of = np.searchsorted(self._starts, chosen, side="right") - 1
        for index, level in enumerate(self._levels):
            mine = level_of == index
            if not mine.any() or name not in level.cloud.attributes:
                continue
            read = level.read(name)[chosen[mine] - self._starts[index]]
            if values is None:
                values = np.full((len(chosen), *read.shape[1:]), default, dtype=read.dtype)
            values[mine] = read
        return values if values is not None else np.full(len(chosen), default)

    def columns(self, chosen: np.ndarray) -> np.ndarray:
        """The chosen instances' matrices (n, 4, 4) in the network's space, as Blender stores them: by column."""
        return self.attribute("instance_transform", chosen).reshape(-1, 4, 4)

    def transforms(self, chosen: np.ndarray) -> np.ndarray:
        """World matrices (n, 4, 4) of the chosen instances."""
        return self.matrix.astype(np.float32) @ self.columns(chosen).transpose(0, 2, 1)

    def centres(self, chosen: np.ndarray) -> np.ndarray:
        # The places alone (the last of each matrix's columns as stored), not every matrix multiplied out.
        places = self.columns(chosen)[:, 3, :3]
        world = self.matrix.astype(np.float32)
        return places @ world[:3, :3].T + world[:3, 3]

    def box_corners(self, chosen: np.ndarray) -> np.ndarray:
        """World corners (n, 4, 3) of the chosen instances' flat boxes: bottom left, bottom right, top right, top
        left (``local_box``)."""
        references = self.reference_index[chosen]
        # One box for all (the cells' quad), else each instance's own: (1 or n, 4, 3).
        shared = len(references) and (references == references[0]).all()
        local = np.array(
            [local_box(self.references[index]) for index in (references[:1] if shared else references)],
            dtype=np.float32,
        ).reshape(-1, 4, 3)
        columns = self.columns(chosen)
        # Each corner is the translation plus the axes of the transform scaled by its local coordinates: a few
        # array operations, where an einsum over (n, 4, 4) matrices took a tenth of a second on CIFAR's cells.
        corners = columns[:, None, 3, :3] + local[:, :, 0, None] * columns[:, None, 0, :3]
        for axis in (1, 2):
            corners += local[:, :, axis, None] * columns[:, None, axis, :3]
        # One matrix product over all corners in single precision (the cells' own): a tenth of a pixel at most.
        world = self.matrix.astype(np.float32)
        return (corners.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]).reshape(corners.shape)


class _Level:
    """The leaf instances of one instances component: ``rows`` of its point cloud (None: all of them)."""

    def __init__(self, cloud, references, reference_index, rows, outer):
        self.cloud, self.references, self.rows, self.outer = cloud, references, rows, outer
        self.reference_index = reference_index.astype(np.int64)
        self.count = len(self.reference_index)
        self._columns = None

    def read(self, name):
        if name == "instance_transform":
            # Kept: texts read their glyphs' corners group by group.
            if self._columns is None:
                self._columns = self._read(name).reshape(-1, 16)
                if self.outer is not None:
                    self._columns = (self._columns.reshape(-1, 4, 4) @ self.outer).reshape(-1, 16)
            return self._columns
        return self._read(name)

    def _read(self, name):
        values = read_attribute(self.cloud, name)
        return values if self.rows is None else values[self.rows]


def _levels(geometry, outer):
    """``geometry``'s instances as ``_Level``s, nested sets flattened; ``outer``: the stored matrix carrying them."""
    cloud = geometry.instances_pointcloud()
    references = list(geometry.instance_references())
    if cloud is None or not len(cloud.points) or not references:
        return []
    reference_index = read_attribute(cloud, ".reference_index")
    nested = [
        index
        for index, reference in enumerate(references)
        if isinstance(reference, bpy.types.GeometrySet) and reference.instances_pointcloud() is not None
    ]
    if not nested:
        return [_Level(cloud, references, reference_index, None, outer)]
    carrying = np.isin(reference_index, nested)
    rows = np.flatnonzero(~carrying)
    levels = [_Level(cloud, references, reference_index[rows], rows, outer)]
    columns = read_attribute(cloud, "instance_transform").reshape(-1, 4, 4)
    for row in np.flatnonzero(carrying):
        # Stored by column, so the carrier's matrix applies on the right; Geometry to Instance leaves it identity.
        carrier = None if np.allclose(columns[row], np.eye(4)) else columns[row]
        if outer is not None:
            carrier = outer if carrier is None else carrier @ outer
        levels += _levels(references[reference_index[row]], carrier)
    return levels


def local_box(reference: Any) -> np.ndarray:
    """Corners (4, 3) of a flat reference's box in its own space, counter-clockwise in its plane: glyphs lie in
    their XY plane (bottom left first), the cells' quads in their YZ plane."""
    mesh = getattr(reference, "mesh", None)
    if mesh is None or not len(mesh.vertices):
        return np.zeros((4, 3))
    flat_positions = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", flat_positions)
    positions = flat_positions.reshape(-1, 3).astype(np.float64)
    low, high = positions.min(axis=0), positions.max(axis=0)
    flat = int(np.argmin(high - low))
    first, second = [axis for axis in (0, 1, 2) if axis != flat]
    corners = np.repeat(((low + high) / 2)[None], 4, axis=0)
    for corner, (a, b) in enumerate(((low, low), (high, low), (high, high), (low, high))):
        corners[corner, first], corners[corner, second] = a[first], b[second]
    return corners


class DrawnQuads:
    """The instanced squares drawn with one material: their world centres, corners and attributes."""

    def __init__(self, geometry: bpy.types.GeometrySet, matrix_world: Matrix, material_prefix: str) -> None:
        self._drawn = DrawnInstances(geometry, matrix_world)
        self.chosen = self._drawn.chosen(material_prefix)

    def __len__(self) -> int:
        return len(self.chosen)

    def has(self, name: str) -> bool:
        return self._drawn.has(name)

    def attribute(self, name: str) -> np.ndarray:
        return self._drawn.attribute(name, self.chosen)

    def transforms(self) -> np.ndarray:
        """World matrices (n, 4, 4) of the chosen instances."""
        return self._drawn.transforms(self.chosen)

    def centres(self) -> np.ndarray:
        return self._drawn.centres(self.chosen)

    def corners(self) -> np.ndarray:
        """The four world-space corners (n, 4, 3) of every chosen quad, in the quad mesh's order."""
        if not len(self.chosen):
            return np.zeros((0, 4, 3), dtype=np.float32)
        reference = self._drawn.references[self._drawn.reference_index[self.chosen[0]]]
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
