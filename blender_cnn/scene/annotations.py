"""The numbers a network writes beside its cells (a sweep's, Inspect's, All Calculations'), read back.

``nodes/annotations.py`` draws them as glyphs on dark plates; every glyph
carries which text it belongs to (``annotation``, ``annotation_item``), the
cell it stands by and its first numbers as shown. This reads them from the
evaluated network, one entry per text, for tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ..nodes.annotations import NUMBERS_STORED
from .drawn import evaluated_geometry, read_attribute
from .materials import ANNOTATION_MATERIAL, ANNOTATION_PLATE_MATERIAL


@dataclass(frozen=True)
class DrawnText:
    """One text as drawn: its kind (``nodes/annotations.py``'s ``ANNOTATION_*``), which one, where, its numbers."""

    kind: int
    item: int
    cell: int
    numbers: tuple[float, ...]
    centre: np.ndarray  # world centre of its plates (each line's plate is centred on the line, or starts with it)
    glyph_faces: int


def drawn_texts(network: bpy.types.Object, kind: int | None = None) -> list[DrawnText]:
    """Every text the network draws (of ``kind``), sorted by kind and item; several lines of a text are one."""
    geometry = evaluated_geometry(network)
    mesh = geometry.mesh
    if mesh is None or "annotation" not in mesh.attributes:
        return []

    def slots(name):
        return [i for i, material in enumerate(mesh.materials) if material and material.name.split(".")[0] == name]

    faces = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("material_index", faces)
    loop_start = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", loop_start)
    corners = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", corners)
    vertex_of_face = corners[loop_start]
    kinds = read_attribute(mesh, "annotation")
    items, cells = read_attribute(mesh, "annotation_item"), read_attribute(mesh, "annotation_cell")
    numbers = np.stack([read_attribute(mesh, f"annotation_n{k}") for k in range(NUMBERS_STORED)], axis=1)
    matrix = np.array(network.matrix_world, dtype=np.float32)
    positions = read_attribute(mesh, "position") @ matrix[:3, :3].T + matrix[:3, 3]
    glyphs = vertex_of_face[np.isin(faces, slots(ANNOTATION_MATERIAL))]
    plate_faces = np.flatnonzero(np.isin(faces, slots(ANNOTATION_PLATE_MATERIAL)))
    plate_corners = corners[loop_start[plate_faces, None] + np.arange(4)]
    plate_keys = np.stack([kinds[plate_corners[:, 0]], items[plate_corners[:, 0]]], axis=1)
    texts = []
    keys = np.stack([kinds[glyphs], items[glyphs]], axis=1)
    for key in np.unique(keys, axis=0):
        text_kind, item = (int(value) for value in key)
        if text_kind <= 0 or (kind is not None and text_kind != kind):
            continue
        chosen = glyphs[(keys == key).all(axis=1)]
        vertices = plate_corners[(plate_keys == key).all(axis=1)].ravel()
        first = chosen[0]
        texts.append(
            DrawnText(
                text_kind,
                item,
                int(cells[first]),
                tuple(float(value) for value in numbers[first]),
                positions[vertices].mean(axis=0),
                len(chosen),
            )
        )
    return texts
