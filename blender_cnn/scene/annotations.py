"""Many short texts (numbers on cells, an equation beside them) as one filled mesh, written with numpy.

Geometry Nodes' String to Curves takes one string, not one per point, so
hundreds of numbers would need hundreds of nodes. Instead every distinct
character is turned into a filled mesh once (Blender's own font, through a
text object) and the strings are assembled from copies of those glyphs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import bpy
import numpy as np
import numpy.typing as npt

from ..core import attributes

LINE_HEIGHT = 1.25  # in text sizes
SPACE_ADVANCE = 0.28


@dataclass(frozen=True)
class Glyph:
    vertices: np.ndarray  # (n, 2) in units of the text size, origin on the baseline
    loop_vertices: np.ndarray  # vertex index of every face corner
    face_sizes: np.ndarray  # corners per face
    advance: float


class GlyphCache:
    """Filled meshes of characters in Blender's default font, made on first use."""

    def __init__(self) -> None:
        self._glyphs: dict[str, Glyph] = {}

    def glyph(self, character: str) -> Glyph:
        if character not in self._glyphs:
            self._glyphs.update(_make_glyphs({character}))
        return self._glyphs[character]

    def prepare(self, strings: Iterable[str]) -> None:
        missing = set("".join(strings)) - set(self._glyphs)
        if missing:
            self._glyphs.update(_make_glyphs(missing))


def _make_glyphs(characters):
    """Each character's filled glyph; advances measured from the glyph written twice."""
    curve = bpy.data.curves.new("BCNN glyph", "FONT")
    holder = bpy.data.objects.new("BCNN glyph", curve)
    scene = bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    scene.collection.objects.link(holder)
    try:
        glyphs = {}
        for character in characters:
            if character.isspace():
                glyphs[character] = Glyph(
                    np.zeros((0, 2), np.float32), np.zeros(0, np.int32), np.zeros(0, np.int32), SPACE_ADVANCE
                )
                continue
            once = _font_mesh(holder, character)
            twice = _font_mesh(holder, character * 2)
            vertices, loops, sizes = once
            right_once = vertices[:, 0].max() if len(vertices) else 0.0
            right_twice = twice[0][:, 0].max() if len(twice[0]) else SPACE_ADVANCE
            glyphs[character] = Glyph(vertices, loops, sizes, float(right_twice - right_once) or SPACE_ADVANCE)
        return glyphs
    finally:
        bpy.data.objects.remove(holder)
        bpy.data.curves.remove(curve)


def _font_mesh(holder, body):
    holder.data.body = body
    evaluated = holder.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        vertices = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
        mesh.vertices.foreach_get("co", vertices)
        loops = np.empty(len(mesh.loops), dtype=np.int32)
        mesh.loops.foreach_get("vertex_index", loops)
        sizes = np.empty(len(mesh.polygons), dtype=np.int32)
        mesh.polygons.foreach_get("loop_total", sizes)
        return vertices.reshape(-1, 3)[:, :2].copy(), loops, sizes
    finally:
        evaluated.to_mesh_clear()


GLYPHS = GlyphCache()


def text_block(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]:
    """2D outline of ``text`` (lines split on newlines) in text-size units, centred on the origin.

    Returns ``(vertices (n, 2), loop_vertices, face_sizes, (width, height))``.
    """
    lines = text.split("\n")
    GLYPHS.prepare(lines)
    pieces, widths = [], []
    for number, line in enumerate(lines):
        x, baseline = 0.0, -number * LINE_HEIGHT
        for character in line:
            glyph = GLYPHS.glyph(character)
            if len(glyph.vertices):
                pieces.append((glyph, x, baseline))
            x += glyph.advance
        widths.append(x)
    height = 0.7 + (len(lines) - 1) * LINE_HEIGHT
    if not pieces:
        return np.zeros((0, 2), np.float32), np.zeros(0, np.int32), np.zeros(0, np.int32), (0.0, height)
    vertices, loops, sizes, offset = [], [], [], 0
    for glyph, x, baseline in pieces:
        vertices.append(glyph.vertices + (x, baseline))
        loops.append(glyph.loop_vertices + offset)
        sizes.append(glyph.face_sizes)
        offset += len(glyph.vertices)
    # Centre the block: the widest line's middle, and half way between the first cap line and the last baseline.
    centre = np.array([max(widths) / 2, 0.7 - height / 2], dtype=np.float32)
    return np.concatenate(vertices) - centre, np.concatenate(loops), np.concatenate(sizes), (max(widths), height)


@dataclass(frozen=True)
class Annotation:
    """A text placed in 3D: centred (or, with ``left``, starting) at ``anchor``, in the plane of ``right``/``up``."""

    text: str
    anchor: npt.ArrayLike
    right: npt.ArrayLike
    up: npt.ArrayLike
    size: float
    left: bool = False


BACKING_MARGIN = 0.18  # in text sizes, around each text's plate
LIFT = 0.04  # in text sizes: the text in front of its plate, the plate in front of what it labels


def annotation_mesh(name: str, annotations: Iterable[Annotation]) -> bpy.types.Mesh:
    """One mesh of every annotation's filled text (material 0) on a plate of its own (material 1).

    The face attribute ``annotation`` numbers the annotations, so tests and
    tools can tell which faces belong to which text.
    """
    vertices, loops, face_sizes, materials, owners, offset = [], [], [], [], [], 0
    for index, annotation in enumerate(annotations):
        flat, text_loops, text_faces, (width, height) = text_block(annotation.text)
        if not len(flat):
            continue
        right, up = np.asarray(annotation.right, np.float32), np.asarray(annotation.up, np.float32)
        normal = np.cross(right, up)
        centre = np.asarray(annotation.anchor, np.float32) + (
            right * annotation.size * width / 2 if annotation.left else 0.0
        )
        half_w, half_h = width / 2 + BACKING_MARGIN, height / 2 + BACKING_MARGIN
        plate = np.array([(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)], np.float32)
        for outline, faces, face_loops, lift, material in (
            (plate, np.array([4], np.int32), np.arange(4), 1, 1),
            (flat, text_faces, text_loops, 2, 0),
        ):
            placed = centre + annotation.size * (outline[:, :1] * right + outline[:, 1:] * up + LIFT * lift * normal)
            vertices.append(placed)
            loops.append(face_loops + offset)
            face_sizes.append(faces)
            materials.append(np.full(len(faces), material, dtype=np.int32))
            owners.append(np.full(len(faces), index, dtype=np.int32))
            offset += len(outline)
    mesh = bpy.data.meshes.new(name)
    if not vertices:
        return mesh
    points, corners, sizes = np.concatenate(vertices), np.concatenate(loops), np.concatenate(face_sizes)
    mesh.vertices.add(len(points))
    mesh.vertices.foreach_set("co", points.astype(np.float32).ravel())
    mesh.loops.add(len(corners))
    mesh.loops.foreach_set("vertex_index", corners.astype(np.int32))
    mesh.polygons.add(len(sizes))
    mesh.polygons.foreach_set("loop_start", np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int32))
    mesh.polygons.foreach_set("material_index", np.concatenate(materials))
    mesh.update()
    declared = attributes.spec("annotation")
    # The schema's type and domain are plain strings; the stubs want literals. They say Attribute, not IntAttribute.
    new_attribute = mesh.attributes.new(declared.name, declared.data_type, declared.domain)  # type: ignore[arg-type]
    owner = cast(bpy.types.IntAttribute, new_attribute)
    owner.data.foreach_set("value", np.concatenate(owners))
    return mesh
