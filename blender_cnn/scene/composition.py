"""Composition checks of a network's picture, measured on the projected geometry.

What a lecturer checks before a still goes on a slide, measured on what the
network draws (its evaluated geometry) as the camera projects it at the
scene's render size:

- no text (a label, the legend, a class name, a probability, a number) runs
  out of the frame;
- no two texts overlap, and no text lies across cells (numbers on their dark
  plates may: they are made to stand on cells);
- every text is tall enough to read at the render size (``min_text_height``);
- the network fills the frame: it is not cut by the frame's edge, and no empty
  band wider than ``MAX_EMPTY_SHARE`` of the frame is left beside it.

``read_drawing`` reads the texts and cells once, in world space: labels are
filled glyph triangles of one mesh, which carry no id, so glyphs are grouped
into texts by the order the tree draws them in and by their lines (a text's
glyphs come one after another, in reading order, on lines one under another);
probabilities and numbers are glyph instances that carry which text they belong
to (``annotation_cell``, ``annotation``/``annotation_item``). ``check_drawing``
then projects them with a camera: pure numpy, so the stage can try several
framings (``scene/stage.py``). ``check_composition`` reads and checks for one
camera, ``check_camera_moves`` at every keyframe of the camera's moves. The
thresholds and why: docs/composition.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Matrix

from ..nodes.graph import UNIT_LABELS
from ..nodes.groups import LAYER_LABEL, NEURON_LABEL
from ..nodes.timeline import SCREEN_OVERLAY
from .drawn import drawn_points, read_attribute
from .materials import ANNOTATION_MATERIAL, ANNOTATION_PLATE_MATERIAL, CELL_MATERIAL, LABEL_MATERIAL

# Letter height (of a text's capitals and digits): at least this many pixels in a frame 720 pixels high, in
# proportion in other frames (a frame is seen at the size of the screen, whatever its pixels), and never fewer than
# MIN_TEXT_PIXELS, below which a digit's strokes run together. 9 px capitals are a 13 px font (docs/composition.md).
TEXT_HEIGHT_AT_720 = 9.0
REFERENCE_FRAME_HEIGHT = 720
MIN_TEXT_PIXELS = 7.0
# Texts keep this share of the frame's height from its edges.
EDGE_MARGIN = 0.005
# Two texts, or a text and a cell, overlap when their outlines cross by more than this many pixels ...
OVERLAP_PIXELS = 1.0
# ... and a text crowds another, or cells, when their outlines stand closer than this share of the least letter
# height: words run together where they touch.
CLEARANCE = 0.25
# The network fills the frame within a margin: the empty band between it and any edge of the frame is at most this
# share of the frame (of its height above and below, of its width beside), a quarter: a network squeezed into a band
# across the middle leaves a third of the frame empty below it.
MAX_EMPTY_SHARE = 0.25
# The label of the Index Switch of a graph's block labels (nodes/graph.py's add_graph_labels).
BLOCK_LABELS = "Block Labels"
# Glyph grouping, in letter heights: the widest gap between words of a line, and between lines.
WORD_GAP = 1.3
LINE_GAP = 1.0

PROBLEM_KINDS = ("outside", "overlap", "over cells", "small", "framing")
# On the network: the last check's problems (JSON), for the panel.
COMPOSITION_PROPERTY = "blender_cnn_composition"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the picture: its ``kind`` (``PROBLEM_KINDS``), what it is about, and a one-line message."""

    kind: str
    subject: str
    message: str
    frame: int | None = None
    other: str = ""  # the second text of an overlap

    def __str__(self) -> str:
        return self.message if self.frame is None else f"frame {self.frame}: {self.message}"


@dataclass
class Text:
    """One text as drawn, in world space: its lines' ink boxes ``(lines, 4, 3)`` (corners counter-clockwise from
    the bottom left as it reads, top line first) and each line's letter height (the text's)."""

    kind: str  # "label", "probability", "number", "overlay"
    name: str  # what a message calls it
    lines: np.ndarray
    heights: np.ndarray
    up: np.ndarray  # the text's up direction (world)
    on_plate: bool = False  # numbers on dark plates, which may stand on cells
    group: str = ""  # texts of one group (a layer's class names) are reported together when too small
    plural: bool = False  # its name names several (a column of class names)
    words: list[str] = field(default_factory=list)  # each line's words, where known
    source: tuple[str, int] | None = None  # the key of ``label_sockets`` that holds its words, where known
    layer: int | None = None  # the layer it belongs to (-1: the legend), where known

    def called(self, lines: Iterable[int] = ()) -> str:
        """Its name, with the words of ``lines`` where they are known."""
        words = [self.words[line] for line in lines if line < len(self.words) and self.words[line]]
        return f"{self.name} ({' / '.join(words)!r})" if words else self.name


@dataclass
class Drawing:
    """What a network draws that a composition check measures, in world space."""

    texts: list[Text]
    cells: np.ndarray  # (cells, 4, 3) corners of every drawn cell and of the legend's bar
    cell_layers: np.ndarray  # layer index per cell (-1: the legend's bar)
    points: np.ndarray  # a sample of everything drawn (drawn_points), for the framing
    layer_names: dict[int, str] = field(default_factory=dict)

    def layer_name(self, index: int) -> str:
        return "the legend's color bar" if index < 0 else self.layer_names.get(index, f"layer {index}")


# ---------------------------------------------------------------- reading the drawing


def read_drawing(network: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None) -> Drawing:
    """The texts, cells and points ``network`` draws as evaluated now (world space)."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()
    matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    instances = _Instances(geometry, matrix)
    cells, cell_layers = instances.cells()
    layer_names = _layer_names(network)
    strings = _label_strings(network)
    places = _Places(cells, cell_layers)
    texts = _mesh_texts(geometry, matrix, places, layer_names, strings)
    texts += instances.probability_texts(places, layer_names, strings)
    texts += instances.number_texts()
    _share_line_heights(texts)
    points = np.concatenate(
        [drawn_points(network, depsgraph=depsgraph).astype(np.float64), _curve_points(geometry, matrix)]
    )
    return Drawing(texts, cells, cell_layers, points, layer_names)


def _share_line_heights(texts):
    """Texts of one group standing on one line (the legend's "0" and "max") are set in one size: each gets the
    tallest letter height of them, so a word of lower case alone is measured by its neighbour's digits."""
    for index, text in enumerate(texts):
        if len(text.lines) != 1:
            continue
        low, high = float(text.lines[0, :, 2].min()), float(text.lines[0, :, 2].max())
        for other in texts[index + 1 :]:
            if other.group != text.group or len(other.lines) != 1 or float(other.up @ text.up) < 0.999:
                continue
            other_low, other_high = float(other.lines[0, :, 2].min()), float(other.lines[0, :, 2].max())
            if min(high, other_high) - max(low, other_low) > 0.5 * min(high - low, other_high - other_low):
                tallest = max(float(text.heights[0]), float(other.heights[0]))
                text.heights[:] = other.heights[:] = tallest


def _curve_points(geometry, matrix, limit=20_000):
    """World positions of (a sample of) the points of the drawn curves: connections, a graph's arched links."""
    curves = geometry.curves
    if curves is None or not len(curves.points):
        return np.zeros((0, 3))
    positions = read_attribute(curves, "position").astype(np.float64)[:: max(1, len(curves.points) // limit)]
    return positions @ matrix[:3, :3].T + matrix[:3, 3]


class _Instances:
    """The network's instances (cells, glyphs) with their world boxes, read once."""

    def __init__(self, geometry, matrix):
        self._cloud = geometry.instances_pointcloud()
        references = geometry.instance_references()
        self._materials = [_material_name(reference) for reference in references]
        # Each reference's flat box in its own space.
        self._boxes = np.array([_local_box(reference) for reference in references]).reshape(-1, 4, 3)
        if self._cloud is None or not len(references):
            self._reference = np.zeros(0, dtype=np.int64)
            self._transforms = np.zeros((0, 4, 4))
            return
        self._reference = read_attribute(self._cloud, ".reference_index").astype(np.int64)
        local = read_attribute(self._cloud, "instance_transform").reshape(-1, 4, 4).transpose(0, 2, 1)
        self._transforms = matrix @ local.astype(np.float64)

    def chosen(self, prefix, but=None):
        matching = [
            index
            for index, name in enumerate(self._materials)
            if name.startswith(prefix) and not (but and name.startswith(but))
        ]
        return np.flatnonzero(np.isin(self._reference, matching))

    def attribute(self, name, chosen, default=0):
        if self._cloud is None or name not in self._cloud.attributes:
            return np.full(len(chosen), default)
        return read_attribute(self._cloud, name)[chosen]

    def corners(self, chosen):
        """World corners (n, 4, 3) of the chosen instances' boxes: bottom left, bottom right, top right, top left."""
        local = self._boxes[self._reference[chosen]]
        local = np.concatenate([local, np.ones(local.shape[:2] + (1,))], axis=2)
        return np.einsum("nij,nkj->nki", self._transforms[chosen], local)[:, :, :3]

    def cells(self):
        chosen = self.chosen(CELL_MATERIAL)
        corners = self.corners(chosen)
        area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 3] - corners[:, 0]), axis=1)
        shown = area > 1e-9  # hidden cells are scaled to nothing
        return corners[shown], self.attribute("layer", chosen)[shown].astype(np.int64)

    def probability_texts(self, places, layer_names, strings):
        """Numbers written with the label material (the output neurons' probabilities), one text per cell."""
        chosen = self.chosen(LABEL_MATERIAL)
        if not len(chosen):
            return []
        cell = self.attribute("annotation_cell", chosen, -1)
        texts = []
        for key in np.unique(cell):
            corners = self.corners(chosen[cell == key])
            layer = _layer_at(places, corners.mean(axis=(0, 1)))
            where = layer_names.get(layer, f"layer {layer}")
            words = strings.get(("cell", int(key)))
            name = f"the probability of {words!r} beside {where}" if words else f"a probability beside {where}"
            text = _text_from_glyphs(corners, "probability", name)
            text.group, text.layer = f"the probabilities beside {where}", layer
            texts.append(text)
        return texts

    def number_texts(self):
        """Numbers and equations of the sweep and Inspect, one text per ``(annotation, annotation_item)``."""
        chosen = self.chosen(ANNOTATION_MATERIAL, but=ANNOTATION_PLATE_MATERIAL)
        if not len(chosen):
            return []
        keys = np.stack([self.attribute("annotation", chosen), self.attribute("annotation_item", chosen)], axis=1)
        texts = []
        for key in np.unique(keys, axis=0):
            if key[0] <= 0:
                continue
            own = chosen[(keys == key).all(axis=1)]
            text = _text_from_glyphs(self.corners(own), "number", _number_name(int(key[0]), int(key[1])))
            text.on_plate = True
            text.group = _number_name(int(key[0]), None)
            texts.append(text)
        return texts


def _number_name(kind, item):
    from ..nodes.annotations import (
        ANNOTATION_CALCULATIONS,
        ANNOTATION_INSPECT_CELL,
        ANNOTATION_INSPECT_EQUATION,
        ANNOTATION_SWEEP_EQUATION,
        ANNOTATION_SWEEP_TAP,
    )

    names = {
        ANNOTATION_INSPECT_CELL: "Inspect's numbers on the cells",
        ANNOTATION_INSPECT_EQUATION: "Inspect's equation",
        ANNOTATION_SWEEP_TAP: "the sweep's numbers on the cells",
        ANNOTATION_SWEEP_EQUATION: "the sweep's equation",
        ANNOTATION_CALCULATIONS: "All Calculations' count",
    }
    name = names.get(kind, f"annotation {kind}")
    return name if item is None else f"{name} ({item})"


def _mesh_texts(geometry, matrix, places, layer_names, strings):
    """The label material's filled glyphs of the network's mesh, grouped into texts and named."""
    mesh = geometry.mesh
    if mesh is None or not len(mesh.polygons):
        return []
    slots = [
        index for index, material in enumerate(mesh.materials) if material and material.name.startswith(LABEL_MATERIAL)
    ]
    polygon_count = len(mesh.polygons)
    material_index = np.empty(polygon_count, dtype=np.int32)
    mesh.polygons.foreach_get("material_index", material_index)
    faces = np.flatnonzero(np.isin(material_index, slots))
    if not len(faces):
        return []
    starts, totals = np.empty(polygon_count, dtype=np.int32), np.empty(polygon_count, dtype=np.int32)
    mesh.polygons.foreach_get("loop_start", starts)
    mesh.polygons.foreach_get("loop_total", totals)
    corner_vertices = np.empty(len(mesh.loops), dtype=np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vertices)
    positions = read_attribute(mesh, "position").astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    overlay = (
        read_attribute(mesh, SCREEN_OVERLAY) if SCREEN_OVERLAY in mesh.attributes else np.zeros(len(positions), int)
    )
    # The corners of the label faces, and the face each belongs to.
    face_of_corner = np.repeat(np.arange(len(faces)), totals[faces])
    corners = corner_vertices[np.repeat(starts[faces], totals[faces]) + _ramps(totals[faces])]
    island = _islands(face_of_corner, corners, len(positions))[corners]
    # Glyph islands in the order the tree drew them (the first face of each).
    island_ids, first_corner = np.unique(island, return_index=True)
    order = np.argsort(first_corner)
    island_ids = island_ids[order]
    normals = _face_normals(positions, corners, face_of_corner, len(faces))
    glyphs: list[_Glyph] = []
    for island_id in island_ids:
        own_corners = island == island_id
        vertices = positions[np.unique(corners[own_corners])]
        normal = normals[face_of_corner[own_corners][0]]
        glyph = _Glyph.of(vertices, normal, bool(overlay[corners[own_corners][0]]))
        if glyphs and glyphs[-1].takes(glyph):  # the dot of an i, a colon's other half
            glyphs[-1] = glyphs[-1].merged(glyph)
        else:
            glyphs.append(glyph)
    texts = []
    for lines in (part for grouped in _group_glyphs(glyphs) for part in _aligned(grouped, glyphs)):
        first = glyphs[lines[0][0]]
        text = _text_from_lines([[glyphs[index] for index in line] for line in lines], first.axes)
        text.kind = "overlay" if first.overlay else "label"
        _label_name(text, places, layer_names, strings)
        texts.append(text)
    return texts


@dataclass
class _Glyph:
    """A glyph island in its text's plane: ``u`` along the line, ``v`` up, ``w`` along the side it faces."""

    u0: float
    u1: float
    v0: float
    v1: float
    w: float
    axes: np.ndarray  # rows U, V, N
    overlay: bool

    @classmethod
    def of(cls, vertices, normal, overlay):
        axes = _text_axes(normal)
        plane = vertices @ axes.T
        low, high = plane.min(axis=0), plane.max(axis=0)
        return cls(low[0], high[0], low[1], high[1], float(plane[:, 2].mean()), axes, overlay)

    @property
    def height(self):
        return self.v1 - self.v0

    def takes(self, other):
        """Whether ``other``, drawn next, is another piece of this glyph (the dot of an i): a small piece just over
        or under it, in the same plane."""
        if other.overlay != self.overlay or abs(float(other.axes[2] @ self.axes[2])) < 0.999:
            return False
        overlap = min(self.u1, other.u1) - max(self.u0, other.u0)
        narrower = min(self.u1 - self.u0, other.u1 - other.u0)
        gap = max(self.v0, other.v0) - min(self.v1, other.v1)
        low, high = sorted((self.height, other.height))
        return overlap > 0.5 * narrower and low < 0.5 * high and gap < 0.45 * high

    def merged(self, other):
        return _Glyph(
            min(self.u0, other.u0),
            max(self.u1, other.u1),
            min(self.v0, other.v0),
            max(self.v1, other.v1),
            self.w,
            self.axes,
            self.overlay,
        )


def _text_axes(normal):
    """Rows U (along a line, as it reads), V (up) and N (the side the text faces) of a text facing ``normal``."""
    normal = normal / max(np.linalg.norm(normal), 1e-12)
    up = np.array([0.0, 0.0, 1.0]) - normal * normal[2]
    if np.linalg.norm(up) < 1e-6:  # lying flat: its up is world Y
        up = np.array([0.0, 1.0, 0.0]) - normal * normal[1]
    up /= np.linalg.norm(up)
    return np.stack([np.cross(up, normal), up, normal])


def _group_glyphs(glyphs):
    """Texts as lists of lines of glyph indices: a glyph continues the text before it on its line (to its right, at
    most a word gap away) or starts its next line (just below); anything else starts a new text."""
    texts: list[list[list[int]]] = []
    for index, glyph in enumerate(glyphs):
        if texts:
            lines = [[glyphs[member] for member in line] for line in texts[-1]]
            step = _continues(lines, glyph)
            if step == "line":
                texts[-1][-1].append(index)
                continue
            if step == "next":
                texts[-1].append([index])
                continue
        texts.append([[index]])
    return texts


def _continues(lines, glyph):
    """How ``glyph`` continues a text of ``lines``: on its last line ("line"), on a next line ("next") or not (None)."""
    line, last = lines[-1], lines[-1][-1]
    if glyph.overlay != last.overlay or abs(float(glyph.axes[2] @ last.axes[2])) < 0.999:
        return None
    height = max(_letter_height([member.height for member in line]), 0.5 * glyph.height)
    if abs(glyph.w - last.w) > 0.05 * height:
        return None
    top, bottom = max(member.v1 for member in line), min(member.v0 for member in line)
    middle = (glyph.v0 + glyph.v1) / 2
    if bottom - 0.4 * height <= middle <= top + 0.25 * height:  # on the line (an underscore hangs below it)
        end = max(member.u1 for member in line)
        if glyph.u0 >= last.u0 - 0.15 * height and glyph.u0 - end <= WORD_GAP * height:
            return "line"
        return None
    # The next line: just below this one, starting before the text's right end (a centred line may be wider).
    right = max(member.u1 for text_line in lines for member in text_line)
    if 0.0 <= bottom - glyph.v1 <= LINE_GAP * height and glyph.u0 <= right + height:
        return "next"
    return None


def _aligned(lines, glyphs):
    """``lines`` split where a line is aligned with the one before it neither on the left, the centre nor the right:
    lines of one text share their alignment, a class name under another's, a label under a class name do not."""
    parts = [[lines[0]]]
    for before, line in zip(lines, lines[1:]):
        first, second = [glyphs[index] for index in before], [glyphs[index] for index in line]
        height = max(
            _letter_height([glyph.height for glyph in first]), _letter_height([glyph.height for glyph in second])
        )
        left = (min(glyph.u0 for glyph in first), min(glyph.u0 for glyph in second))
        right = (max(glyph.u1 for glyph in first), max(glyph.u1 for glyph in second))
        centres = ((left[0] + right[0]) / 2, (left[1] + right[1]) / 2)
        if min(abs(left[0] - left[1]), abs(right[0] - right[1]), abs(centres[0] - centres[1])) <= 0.6 * height:
            parts[-1].append(line)
        else:
            parts.append([line])
    return parts


def _letter_height(heights):
    """A line's letter height: its tallest glyphs but for a few outliers (brackets, a lone ``f``): the 85th
    percentile of its glyphs' heights. Capitals and digits where it has them, else the lower case's."""
    return float(np.percentile(np.asarray(heights, dtype=np.float64), 85, method="higher"))


def _text_from_lines(lines, axes):
    """A text from its lines of glyphs (in one plane): each line's ink box and letter height, top line first."""
    lines = sorted(lines, key=lambda line: -max(member.v1 for member in line))
    boxes = []
    for line in lines:
        u0, u1 = min(member.u0 for member in line), max(member.u1 for member in line)
        v0, v1 = min(member.v0 for member in line), max(member.v1 for member in line)
        w = float(np.mean([member.w for member in line]))
        boxes.append([(u0, v0, w), (u1, v0, w), (u1, v1, w), (u0, v1, w)])
    # The lines of a text are set in one size: a line of lower case alone ("per neuron over") has the height of the
    # text's capitals and digits.
    height = _letter_height([member.height for line in lines for member in line])
    heights = np.full(len(lines), height)
    return Text("label", "", np.array(boxes) @ axes, heights, axes[1].copy())


def _text_from_glyphs(corners, kind, name):
    """A text from its glyph instances' world corners (n, 4, 3), bottom left first, in reading order."""
    along, up = corners[0, 1] - corners[0, 0], corners[0, 3] - corners[0, 0]
    normal = np.cross(along, up)
    axes = _text_axes(normal) if np.linalg.norm(normal) > 1e-12 else np.eye(3)
    lines: list[list[_Glyph]] = []
    for quad in corners:
        plane = quad @ axes.T
        low, high = plane.min(axis=0), plane.max(axis=0)
        glyph = _Glyph(low[0], high[0], low[1], high[1], float(plane[:, 2].mean()), axes, False)
        middle = (glyph.v0 + glyph.v1) / 2
        line = next((line for line in lines if line[0].v0 <= middle <= line[0].v1), None)
        if line is None:
            lines.append([glyph])
        else:
            line.append(glyph)
    text = _text_from_lines(lines, axes)
    text.kind, text.name = kind, name
    return text


def _ramps(totals):
    """0..total-1 for each total, concatenated."""
    ends = np.cumsum(totals)
    return np.arange(ends[-1] if len(ends) else 0) - np.repeat(ends - totals, totals)


def _islands(face_of_corner, corners, vertex_count):
    """Per vertex, the smallest vertex index of its connected piece of the faces (labels flooded to a fixed point)."""
    label = np.arange(vertex_count)
    faces = face_of_corner.max() + 1 if len(face_of_corner) else 0
    while True:
        smallest = np.full(faces, vertex_count)
        np.minimum.at(smallest, face_of_corner, label[corners])
        updated = label.copy()
        np.minimum.at(updated, corners, smallest[face_of_corner])
        updated = updated[updated]
        if np.array_equal(updated, label):
            return label
        label = updated


def _face_normals(positions, corners, face_of_corner, face_count):
    first = np.searchsorted(face_of_corner, np.arange(face_count))
    a, b, c = positions[corners[first]], positions[corners[first + 1]], positions[corners[first + 2]]
    return np.cross(b - a, c - a)


def _label_name(text, places, layer_names, strings):
    """Name a label by the cells it stands by: sets its ``name``, ``group`` and each line's ``words``."""
    if text.kind == "overlay":
        text.name = text.group = "the training overlay"
        return
    layer, relation, cell = _nearest_layer(text, places)
    text.layer = layer
    if layer is None:
        text.name, text.group = "a label", "the labels"
        return
    if relation == "legend":
        text.name = text.group = "the legend"
        return
    where = layer_names.get(layer, f"layer {layer}")
    if relation == "beside":
        text.group = f"the class names beside {where}"
        words = strings.get(("cell", cell))
        if len(text.lines) > 1:
            text.name, text.plural = text.group, True
        else:
            text.name = f"the class name {words!r} beside {where}" if words else f"the label beside {where}"
        return
    text.name, text.group = f"the label under {where}", "the labels under the layers"
    for key in (("layer", layer), ("block", layer)):
        words = strings.get(key, "").split("\n")
        if len(words) == len(text.lines):
            text.words, text.source = words, key
            break


class _Places:
    """Where the cells are, for naming texts: their centres and each layer's box (world)."""

    def __init__(self, cells, cell_layers):
        self.centres = cells.mean(axis=1) if len(cells) else np.zeros((0, 3))
        self.layers = cell_layers
        self.boxes = {
            int(layer): (self.centres[cell_layers == layer].min(axis=0), self.centres[cell_layers == layer].max(axis=0))
            for layer in np.unique(cell_layers)
        }


def _nearest_layer(text, places):
    """The layer a text belongs to: ``(layer, relation, cell)`` with relation "legend" (by the legend's bar),
    "beside" (a class name: the cell just before its first line) or "under" (the nearest cells above it)."""
    if not len(places.centres):
        return None, None, None
    up = text.up
    along = text.lines[0, 1] - text.lines[0, 0]
    along = along / max(float(np.linalg.norm(along)), 1e-12)
    height = float(text.heights.max())
    box = text.lines.reshape(-1, 3)
    if -1 in places.boxes:
        low, high = places.boxes[-1]
        if (np.maximum(low, box.min(axis=0) - 3 * height) <= np.minimum(high, box.max(axis=0) + 3 * height)).all():
            return -1, "legend", None
    first = text.lines[0]
    start = (first[0] + first[3]) / 2  # the first line's left middle
    near = np.flatnonzero((np.abs(places.centres - start) <= 8 * height).all(axis=1))
    if len(near):
        relative = start - places.centres[near]
        side, rise = relative @ along, relative @ up
        off = np.linalg.norm(relative - np.outer(side, along) - np.outer(rise, up), axis=1)
        beside = (side > 0) & (np.abs(rise) < 0.6 * height) & (off < 2 * height)
        if beside.any():
            best = int(near[np.flatnonzero(beside)[np.argmin(side[beside])]])
            return int(places.layers[best]), "beside", best
    top = (first[2] + first[3]) / 2  # the top line's middle
    best_layer, best_score = None, np.inf
    for layer, (low, high) in places.boxes.items():
        if layer < 0:
            continue
        relative = np.clip(top, low, high) - top
        score = float(np.linalg.norm(relative)) + (0.0 if relative @ up > 0 else 10 * height)
        if score < best_score:
            best_layer, best_score = layer, score
    return best_layer, "under", None


def _layer_at(places, point):
    """The layer of the drawn cell nearest ``point``."""
    if not len(places.centres):
        return -1
    return int(places.layers[np.argmin(np.linalg.norm(places.centres - point, axis=1))])


def _layer_names(network):
    try:
        from .network import network_bundle

        return {layer.index: layer.name for layer in network_bundle(network).layers}
    except Exception:  # a moved bundle: messages name layers by index
        return {}


def _label_strings(network):
    """The words the tree writes: ``{("layer" | "block" | "cell", index): text}``."""
    return {key: getattr(socket, "default_value", "") for key, socket in label_sockets(network).items()}


def label_sockets(network: bpy.types.Object) -> dict[tuple[str, int], bpy.types.NodeSocket]:
    """The sockets holding the words of the network's labels, by ``("layer", index)`` (a layer's or unit's label),
    ``("block", index)`` (a collapsed block's, by its output layer) and ``("cell", index)`` (a class name)."""
    sockets: dict[tuple[str, int], bpy.types.NodeSocket] = {}
    modifier = next((modifier for modifier in network.modifiers if modifier.type == "NODES"), None)
    tree = getattr(modifier, "node_group", None)
    for node in tree.nodes if tree is not None else ():
        group = getattr(node, "node_tree", None)
        if group is not None and group.name.startswith(LAYER_LABEL):
            sockets[("layer", node.inputs["Layer"].default_value)] = node.inputs["Text"]
        elif group is not None and group.name.startswith(NEURON_LABEL):
            sockets[("cell", node.inputs["Cell"].default_value)] = node.inputs["Text"]
        elif node.bl_idname == "GeometryNodeIndexSwitch" and node.label in (UNIT_LABELS, BLOCK_LABELS):
            kind = "layer" if node.label == UNIT_LABELS else "block"
            for index, socket in enumerate(node.inputs[1:]):
                if getattr(socket, "default_value", ""):
                    sockets.setdefault((kind, index), socket)
    return sockets


def _material_name(reference):
    mesh = getattr(reference, "mesh", None)
    materials = [material for material in (mesh.materials if mesh is not None else ()) if material is not None]
    return materials[0].name if materials else ""


def _local_box(reference):
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


# ---------------------------------------------------------------- projecting and checking


def frame_size(scene: bpy.types.Scene) -> tuple[int, int]:
    """The render's size in pixels (its resolution at its percentage)."""
    render = scene.render
    scale = render.resolution_percentage / 100.0
    return max(1, round(render.resolution_x * scale)), max(1, round(render.resolution_y * scale))


def min_text_height(frame_height: int) -> float:
    """The least letter height (pixels) a text needs in a frame ``frame_height`` pixels high."""
    return max(MIN_TEXT_PIXELS, TEXT_HEIGHT_AT_720 * frame_height / REFERENCE_FRAME_HEIGHT)


class View:
    """A camera's projection onto the render's pixels (x to the right, y down from the top left).

    ``matrix_world`` stands for the camera's own (a pose being tried), so the
    stage can measure framings without moving the camera.
    """

    def __init__(self, camera: bpy.types.Object, scene: bpy.types.Scene, matrix_world: Matrix | None = None) -> None:
        self.width, self.height = frame_size(scene)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        projection = camera.calc_matrix_camera(depsgraph, x=self.width, y=self.height)
        world = matrix_world if matrix_world is not None else camera.matrix_world
        self.matrix = np.array(projection @ world.inverted(), dtype=np.float64)
        self.forward = -np.array(world.to_3x3().transposed()[2], dtype=np.float64)
        self.forward /= np.linalg.norm(self.forward)
        self.location = np.array(world.translation, dtype=np.float64)

    def pixels(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel positions (..., 2) of world ``points`` (..., 3), and whether each is in front of the camera."""
        points = np.asarray(points, dtype=np.float64)
        clip = points @ self.matrix[:3, :3].T + self.matrix[:3, 3]
        w = points @ self.matrix[3, :3] + self.matrix[3, 3]
        front = w > 1e-6
        safe = np.where(front, w, 1.0)
        x = (clip[..., 0] / safe + 1.0) * 0.5 * self.width
        y = (1.0 - clip[..., 1] / safe) * 0.5 * self.height
        return np.stack([x, y], axis=-1), front

    def inside(self, pixels: np.ndarray, margin: float = 0.0) -> np.ndarray:
        x, y = pixels[..., 0], pixels[..., 1]
        return (x >= margin) & (x <= self.width - margin) & (y >= margin) & (y <= self.height - margin)


def check_composition(
    scene: bpy.types.Scene | None = None,
    network: bpy.types.Object | None = None,
    camera: bpy.types.Object | None = None,
) -> list[Problem]:
    """What is wrong with the picture ``camera`` (the scene's by default) takes of ``network`` at the scene's render
    size and current frame: texts out of the frame, overlapping each other or cells, too small to read, and a
    network that does not fill the frame. An empty list when nothing is."""
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    if network is None:
        raise ValueError("check_composition needs the network object")
    camera = camera or scene.camera
    if camera is None:
        return [Problem("framing", "camera", f"{scene.name} has no camera to check")]
    return check_drawing(read_drawing(network), View(camera, scene))


def check_camera_moves(
    scene: bpy.types.Scene | None = None,
    network: bpy.types.Object | None = None,
    camera: bpy.types.Object | None = None,
) -> list[Problem]:
    """``check_composition`` at every keyframe of the camera's animation (its moves), each problem with its frame.

    A keyframe that frames the whole network is checked as a still; a close
    view (the end of a push-in, a fly-through) only for what it shows: texts
    it cuts at the frame's edge, overlaps and small texts in the frame.
    """
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    if network is None:
        raise ValueError("check_camera_moves needs the network object")
    camera = camera or scene.camera
    if camera is None:
        return [Problem("framing", "camera", f"{scene.name} has no camera to check")]
    frames = keyframes(camera)
    if not frames:
        return []
    current = scene.frame_current
    problems = []
    try:
        for frame in frames:
            scene.frame_set(frame)
            drawing = read_drawing(network)
            view = View(camera, scene)
            pixels, front = view.pixels(drawing.points)
            whole = bool(len(pixels)) and (front & view.inside(pixels)).mean() >= 0.98
            for problem in check_drawing(drawing, view, close_up=not whole):
                problems.append(Problem(problem.kind, problem.subject, problem.message, frame, problem.other))
    finally:
        scene.frame_set(current)
    return problems


def keyframes(camera: bpy.types.Object) -> list[int]:
    """The frames the camera object or its lens has keys on, in order."""
    frames: set[int] = set()
    for owner in (camera, camera.data):
        animation = getattr(owner, "animation_data", None)
        if animation is None or animation.action is None:
            continue
        from bpy_extras import anim_utils

        channelbag = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
        for curve in channelbag.fcurves if channelbag is not None else ():
            frames.update(round(point.co.x) for point in curve.keyframe_points)
    return sorted(frames)


def text_heights(drawing: Drawing, view: View) -> list[float | None]:
    """Each text's letter height in pixels through ``view`` (None for one it does not show from the front)."""
    seen = _Seen(drawing, view)
    return [
        seen.text_height(index) if seen._visible(index) and view.inside(seen.lines[index]).any() else None
        for index in range(len(drawing.texts))
    ]


def check_drawing(drawing: Drawing, view: View, close_up: bool = False) -> list[Problem]:
    """Every problem of ``drawing`` seen through ``view``; ``close_up`` for a view of part of the network."""
    seen = _Seen(drawing, view)
    problems = seen.outside(close_up) + seen.overlaps() + seen.over_cells() + seen.small()
    if not close_up:
        problems += seen.framing()
    return problems


class _Seen:
    """The drawing projected once: each text's lines as pixel quads, and the cells'."""

    def __init__(self, drawing, view):
        self.drawing, self.view = drawing, view
        self.clearance = CLEARANCE * min_text_height(view.height)  # the most any text keeps
        self._clearances: dict[int, float] = {}
        counts = [len(text.lines) for text in drawing.texts]
        self.owner_array = np.repeat(np.arange(len(counts)), counts).astype(np.int64)
        self.owner = self.owner_array.tolist()
        if counts:
            self.quads, front = view.pixels(np.concatenate([text.lines for text in drawing.texts]))
            self.quads_front = front.all(axis=1)
        else:
            self.quads, self.quads_front = np.zeros((0, 4, 2)), np.zeros(0, bool)
        splits = np.cumsum(counts)[:-1]
        self.lines = np.split(self.quads, splits) if counts else []
        self.line_front = np.split(self.quads_front, splits) if counts else []
        # Texts seen from behind are mirrored: nothing to read, nothing to check.
        self.facing = np.array(
            [
                float(np.cross(t.lines[0, 1] - t.lines[0, 0], t.up) @ (view.location - t.lines[0, 0])) > 0
                for t in drawing.texts
            ],
            dtype=bool,
        )
        if len(drawing.cells):
            cell_pixels, cell_front = view.pixels(drawing.cells)
            self.cells = cell_pixels[cell_front.all(axis=1)]
            self.cell_layers = drawing.cell_layers[cell_front.all(axis=1)]
        else:
            self.cells, self.cell_layers = np.zeros((0, 4, 2)), np.zeros(0, np.int64)

    def text_clearance(self, index):
        """The gap a text keeps from others and from cells: a share of its letters' height, at most ``clearance``."""
        if index not in self._clearances:
            self._clearances[index] = min(self.clearance, CLEARANCE * self.text_height(index))
        return self._clearances[index]

    def _visible(self, index):
        return bool(self.facing[index] and self.line_front[index].all())

    def outside(self, close_up):
        problems = []
        margin = EDGE_MARGIN * self.view.height
        for index, text in enumerate(self.drawing.texts):
            pixels, front = self.lines[index], self.line_front[index]
            inside = self.view.inside(pixels, margin) & front[:, None]
            if inside.all():
                continue
            if not inside.any():
                if not close_up:
                    verb = "are" if text.plural else "is"
                    problems.append(Problem("outside", text.name, f"{_capital(text.name)} {verb} outside the frame"))
                continue
            cut = [line for line in range(len(pixels)) if not inside[line].all()]
            sides = _sides(pixels[cut][front[cut]], self.view, margin) or ["near"]
            name = text.called(cut)
            verb = "are" if text.plural else "is"
            problems.append(
                Problem("outside", text.name, f"{_capital(name)} {verb} cut by the frame's {' and '.join(sides)} edge")
            )
        return problems

    def overlaps(self):
        problems: list[Problem] = []
        shown = np.array([self._visible(index) for index in self.owner], dtype=bool)
        if shown.sum() < 2:
            return problems
        quads, owners = self.quads[shown], self.owner_array[shown]
        numbers = np.concatenate([np.arange(len(lines)) for lines in self.lines])[shown]
        low, high = quads.min(axis=1) - self.clearance, quads.max(axis=1)
        crossings: dict[tuple[int, int], tuple[set[int], set[int]]] = {}
        for a in range(len(quads)):
            near = np.flatnonzero(
                (owners > owners[a])
                & (low[:, 0] < high[a, 0])
                & (high[:, 0] > low[a, 0])
                & (low[:, 1] < high[a, 1])
                & (high[:, 1] > low[a, 1])
            )
            if not len(near):
                continue
            gaps = np.array([min(self.text_clearance(owners[a]), self.text_clearance(owner)) for owner in owners[near]])
            for b in near[_quads_overlap(quads[a], quads[near], -gaps)]:
                first, second = crossings.setdefault((int(owners[a]), int(owners[b])), (set(), set()))
                first.add(int(numbers[a]))
                second.add(int(numbers[b]))
        for (a, b), (lines_a, lines_b) in crossings.items():
            text_a, text_b = self.drawing.texts[a], self.drawing.texts[b]
            first, second = text_a.called(sorted(lines_a)), text_b.called(sorted(lines_b))
            verb = "run into" if text_a.plural else "runs into"
            problems.append(Problem("overlap", text_a.name, f"{_capital(first)} {verb} {second}", other=text_b.name))
        return problems

    def over_cells(self):
        problems: list[Problem] = []
        if not len(self.cells):
            return problems
        cells = _Buckets(self.cells)
        for index, text in enumerate(self.drawing.texts):
            if text.on_plate or not self._visible(index):
                continue
            covered = np.zeros(len(self.cells), dtype=bool)
            lines = []
            for line, quad in enumerate(self.lines[index]):
                near = cells.near(quad.min(axis=0) - self.clearance, quad.max(axis=0) + self.clearance)
                if len(near):
                    crossed = near[_quads_overlap(quad, self.cells[near], -self.text_clearance(index))]
                    if len(crossed):
                        covered[crossed] = True
                        lines.append(line)
            if covered.any():
                layers = sorted({int(layer) for layer in self.cell_layers[covered]})
                where = ", ".join(self.drawing.layer_name(layer) for layer in layers)
                count = int(covered.sum())
                verb = "lie" if text.plural else "lies"
                problems.append(
                    Problem(
                        "over cells",
                        text.name,
                        f"{_capital(text.called(lines))} {verb} across {count} {'cell' if count == 1 else 'cells'} "
                        f"of {where}",
                    )
                )
        return problems

    def small(self):
        need = min_text_height(self.view.height)
        groups: dict[str, list[tuple[str, float]]] = {}
        for index, text in enumerate(self.drawing.texts):
            if not self._visible(index):
                continue
            if not (self.view.inside(self.lines[index]).any()):
                continue  # out of the frame: reported as such, or not shown by a close view
            height = self.text_height(index)
            if height < need:
                groups.setdefault(text.group or text.name, []).append((text.name, height))
        problems = []
        size = f"{self.view.width}x{self.view.height}"
        for group, members in groups.items():
            heights = [height for _name, height in members]
            if len(members) == 1:
                name = members[0][0]
                verb = "are" if name == group and group.startswith("the class names") else "is"
                message = (
                    f"{_capital(name)} {verb} {_pixels(heights[0])} px high; at {size} a text needs {_pixels(need)} px"
                )
            else:
                low, high = _pixels(min(heights)), _pixels(max(heights))
                span = low if low == high else f"{low}-{high}"
                message = (
                    f"{_capital(group)} ({len(members)}) are {span} px high; at {size} a text needs {_pixels(need)} px"
                )
            problems.append(Problem("small", group, message))
        return problems

    def text_height(self, index):
        """The smallest letter height (pixels) of a text's lines, at either end of each line."""
        text = self.drawing.texts[index]
        bottoms = text.lines[:, [0, 1]]  # (lines, 2, 3): each line's bottom corners
        tops = bottoms + text.up * text.heights[:, None, None]
        pixels, _front = self.view.pixels(np.stack([bottoms, tops]))
        return float(np.linalg.norm(pixels[1] - pixels[0], axis=-1).min())

    def framing(self):
        """The network cut by the frame's edge, or leaving a wide empty band beside it."""
        view = self.view
        pixels, front = view.pixels(self.drawing.points)
        everything = [pixels[front]]
        if len(self.quads):
            everything.append(self.quads[self.quads_front].reshape(-1, 2))
        points = np.concatenate(everything)
        problems = []
        if not len(points):
            return [Problem("framing", "network", "The network is not in the frame")]
        # Anything behind the camera, or in front but out of the frame, is cut.
        behind = float((~front).mean()) if len(front) else 0.0
        if behind > 0.001 or (~view.inside(points)).mean() > 0.001:
            sides = _sides(points, view, 0.0)
            where = f"at the {' and '.join(sides)} edge" if sides else "behind the camera"
            problems.append(Problem("framing", "network", f"The network runs out of the frame {where}"))
        inside = points[view.inside(points)]
        if not len(inside):
            return problems + [Problem("framing", "network", "The network is not in the frame")]
        low, high = inside.min(axis=0), inside.max(axis=0)
        bands = {
            "left of": low[0] / view.width,
            "right of": 1.0 - high[0] / view.width,
            "above": low[1] / view.height,
            "below": 1.0 - high[1] / view.height,
        }
        place, share = max(bands.items(), key=lambda band: band[1])
        if share > MAX_EMPTY_SHARE:
            problems.append(
                Problem(
                    "framing",
                    "network",
                    f"{share:.0%} of the frame is empty {place} the network (at most {MAX_EMPTY_SHARE:.0%})",
                )
            )
        return problems


class _Buckets:
    """Quads (n, 4, 2) sorted into square buckets of the frame by their boxes, to find those near a box fast."""

    SIZE = 32.0  # pixels

    def __init__(self, quads):
        self.low, self.high = _corner_bounds(quads)
        # A quad goes into the bucket of its box's lower corner; its box reaches at most ``reach`` buckets further.
        self.reach = int(np.ceil(np.max(self.high - self.low) / self.SIZE)) if len(quads) else 0
        keys = np.floor(self.low / self.SIZE).astype(np.int64)
        self.origin = keys.min(axis=0) if len(quads) else np.zeros(2, np.int64)
        keys -= self.origin
        self.columns, self.rows = (int(value) for value in (keys.max(axis=0) + 1 if len(quads) else (1, 1)))
        bucket = keys[:, 1] * self.columns + keys[:, 0]
        self.order = np.argsort(bucket, kind="stable")
        self.starts = np.searchsorted(bucket[self.order], np.arange(self.rows * self.columns + 1))

    def near(self, low, high):
        """Indices of the quads whose boxes overlap the box ``low``..``high``."""
        first = np.floor(low / self.SIZE).astype(np.int64) - self.origin - self.reach
        last = np.floor(high / self.SIZE).astype(np.int64) - self.origin
        left, right = max(int(first[0]), 0), min(int(last[0]), self.columns - 1)
        if left > right:
            return np.zeros(0, np.int64)
        found = [
            self.order[self.starts[row * self.columns + left] : self.starts[row * self.columns + right + 1]]
            for row in range(max(int(first[1]), 0), min(int(last[1]), self.rows - 1) + 1)
        ]
        chosen = np.concatenate(found) if found else np.zeros(0, np.int64)
        keep = (
            (self.low[chosen, 0] < high[0])
            & (self.high[chosen, 0] > low[0])
            & (self.low[chosen, 1] < high[1])
            & (self.high[chosen, 1] > low[1])
        )
        return chosen[keep]


def _corner_bounds(quads):
    """The boxes (lows, highs) of quads (n, 4, k): an element-wise minimum of the corners, faster than a reduction
    along the short middle axis."""
    corners = [quads[:, corner] for corner in range(quads.shape[1])]
    return np.minimum.reduce(corners), np.maximum.reduce(corners)


def _quads_overlap(quad: np.ndarray, others: np.ndarray, tolerance: float | np.ndarray = OVERLAP_PIXELS) -> np.ndarray:
    """Whether convex ``quad`` (4, 2) and each of ``others`` (n, 4, 2) overlap by more than ``tolerance`` pixels
    along every axis that could separate them (the separating axis test); a negative ``tolerance`` also finds
    those that stand closer than it (one for all, or one per other)."""
    edges = np.concatenate(
        [np.broadcast_to(np.roll(quad, -1, axis=0) - quad, others.shape), np.roll(others, -1, axis=1) - others], axis=1
    )
    axes = np.stack([-edges[..., 1], edges[..., 0]], axis=-1)
    lengths = np.linalg.norm(axes, axis=-1, keepdims=True)
    axes = axes / np.where(lengths > 1e-12, lengths, 1.0)
    mine = np.einsum("nak,vk->nav", axes, quad)
    theirs = np.einsum("nak,nvk->nav", axes, others)
    overlap = np.minimum(mine.max(-1), theirs.max(-1)) - np.maximum(mine.min(-1), theirs.min(-1))
    # Shapes smaller than the tolerance (the cells of a far wall) overlap by half their size.
    smaller = np.minimum(np.ptp(mine, axis=-1), np.ptp(theirs, axis=-1))
    tolerance = np.reshape(tolerance, (-1, 1)) if np.ndim(tolerance) else tolerance
    overlap = np.where(lengths[..., 0] > 1e-12, overlap - np.minimum(tolerance, 0.5 * smaller), np.inf)
    return (overlap > 0).all(axis=1)


def _sides(pixels, view, margin):
    """Which edges of the frame ``pixels`` (n, 2) pass."""
    points = pixels.reshape(-1, 2)
    sides = []
    if (points[:, 0] < margin).any():
        sides.append("left")
    if (points[:, 0] > view.width - margin).any():
        sides.append("right")
    if (points[:, 1] < margin).any():
        sides.append("top")
    if (points[:, 1] > view.height - margin).any():
        sides.append("bottom")
    return sides


def _pixels(value: float) -> str:
    """A height in pixels as a message gives it: to a tenth below 10 (8.7 of 9 must not read as 9), whole above."""
    return f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def problem_lines(problems: Iterable[Problem]) -> list[str]:
    """One line per problem, for a panel or a report."""
    return [str(problem) for problem in problems]


def record_problems(network: bpy.types.Object, scene: bpy.types.Scene, problems: Sequence[Problem]) -> None:
    """Keep the last check's problems on the network, with the frame size they were measured at, for the panel."""
    width, height = frame_size(scene)
    network[COMPOSITION_PROPERTY] = json.dumps({"size": f"{width}x{height}", "problems": problem_lines(problems)})


def recorded_problems(network: bpy.types.Object) -> tuple[str, list[str]] | None:
    """``(frame size, problem lines)`` of the network's last check, or None when it was never checked."""
    try:
        record = json.loads(network.get(COMPOSITION_PROPERTY, ""))
        return str(record["size"]), [str(line) for line in record["problems"]]
    except (ValueError, TypeError, KeyError):
        return None
