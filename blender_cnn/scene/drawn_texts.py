"""The texts, cells and points a network draws, read from its evaluated geometry for the composition checks.

``read_drawing`` reads them once, in world space: labels are filled glyph
triangles of one mesh, which carry no id, so glyphs are grouped into texts by
the order the tree draws them in and by their lines (a text's glyphs come one
after another, in reading order, on lines one under another); probabilities
and numbers are glyph instances that carry which text they belong to
(``annotation_cell``, ``annotation``/``annotation_item``); so do the lines of
the top classes' readout, which are checked as labels. Each text is named by
where it stands (under a layer, beside a neuron, by the legend) and, where the
tree's label nodes hold its words, by them (``label_sockets``).
``scene/composition.py`` projects and checks what is read here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np

from ..nodes.annotations import ANNOTATION_TOP_CLASSES
from ..nodes.builder import tree_nodes
from ..nodes.graph import UNIT_LABELS
from ..nodes.groups import LAYER_LABEL, NEURON_LABEL
from ..nodes.operations import MAX_TOP_CLASSES
from ..nodes.timeline import SCREEN_OVERLAY
from .drawn import DrawnInstances, drawn_points, read_attribute
from .materials import ANNOTATION_MATERIAL, ANNOTATION_PLATE_MATERIAL, CELL_MATERIAL, LABEL_MATERIAL

# The label of the Index Switch of a graph's block labels (nodes/graph.py's add_graph_labels).
BLOCK_LABELS = "Block Labels"
# Glyph grouping, in letter heights: the widest gap between words of a line, and between lines.
WORD_GAP = 1.3
LINE_GAP = 1.0


@dataclass
class Text:
    """One text as drawn, in world space: its lines' ink boxes ``(lines, 4, 3)`` (corners counter-clockwise from
    the bottom left as it reads, top line first) and each line's letter height (the text's)."""

    kind: str  # "label", "probability", "number", "overlay", "readout" (the top classes')
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
    # Each cell's centre and half diagonal (world), to find the few cells near a text without projecting all.
    cell_centres: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.cell_centres is None:
            self.cell_centres = self.cells.mean(axis=1) if len(self.cells) else np.zeros((0, 3))
        self.cell_radii = (
            0.5 * np.linalg.norm(self.cells[:, 2] - self.cells[:, 0], axis=1) if len(self.cells) else np.zeros(0)
        )

    def layer_name(self, index: int) -> str:
        return "the legend's color bar" if index < 0 else self.layer_names.get(index, f"layer {index}")


# ---------------------------------------------------------------- reading the drawing


def read_drawing(network: bpy.types.Object, depsgraph: bpy.types.Depsgraph | None = None) -> Drawing:
    """The texts, cells and points ``network`` draws as evaluated now (world space)."""
    depsgraph = depsgraph or bpy.context.evaluated_depsgraph_get()
    evaluated = network.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()
    matrix = np.array(evaluated.matrix_world, dtype=np.float64)
    instances = DrawnInstances(geometry, matrix)
    cells, cell_layers = _cells(instances)
    layer_names = _layer_names(network)
    strings = _label_strings(network)
    places = _Places(cells.mean(axis=1) if len(cells) else np.zeros((0, 3)), cell_layers)
    texts = _mesh_texts(geometry, matrix, places, layer_names, strings)
    texts += _probability_texts(instances, places, layer_names, strings)
    texts += _number_texts(instances)
    _share_line_heights(texts)
    points = np.concatenate(
        [drawn_points(network, depsgraph=depsgraph).astype(np.float64), _curve_points(geometry, matrix)]
    )
    return Drawing(texts, cells, cell_layers, points, layer_names, places.centres)


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
    return transformed(positions, matrix[:3])


def transformed(points, matrix):
    """``points`` (..., 3) through the affine ``matrix`` (rows, 4): einsum, as numpy's matmul of many points by a 3x3
    matrix is ten times slower here."""
    return np.einsum("...j,ij->...i", points, matrix[:, :3]) + matrix[:, 3]


def _cells(instances):
    chosen = instances.chosen(CELL_MATERIAL)
    corners = instances.box_corners(chosen)
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 3] - corners[:, 0]), axis=1)
    shown = area > 1e-9  # hidden cells are scaled to nothing
    return corners[shown], instances.attribute("layer", chosen)[shown].astype(np.int64)


def _probability_texts(instances, places, layer_names, strings):
    """Numbers written with the label material (the output neurons' probabilities), one text per cell."""
    chosen = instances.chosen(LABEL_MATERIAL)
    if not len(chosen):
        return []
    cell = instances.attribute("annotation_cell", chosen, -1)
    texts = []
    for key in np.unique(cell):
        corners = instances.box_corners(chosen[cell == key])
        layer = _layer_at(places, corners.mean(axis=(0, 1)))
        where = layer_names.get(layer, f"layer {layer}")
        words = strings.get(("cell", int(key)))
        name = f"the probability of {words!r} beside {where}" if words else f"a probability beside {where}"
        text = _text_from_glyphs(corners, "probability", name)
        text.group, text.layer = f"the probabilities beside {where}", layer
        texts.append(text)
    return texts


def _number_texts(instances):
    """Numbers and equations of the sweep and Inspect, one text per ``(annotation, annotation_item)``."""
    chosen = instances.chosen(ANNOTATION_MATERIAL, but=ANNOTATION_PLATE_MATERIAL)
    if not len(chosen):
        return []
    keys = np.stack([instances.attribute("annotation", chosen), instances.attribute("annotation_item", chosen)], axis=1)
    texts = []
    for key in np.unique(keys, axis=0):
        if key[0] <= 0:
            continue
        own = chosen[(keys == key).all(axis=1)]
        if key[0] == ANNOTATION_TOP_CLASSES:
            # Labels on a plate of their own, beside the output layer: checked as labels (size, overlap).
            head, line = divmod(int(key[1]), MAX_TOP_CLASSES + 1)
            text = _text_from_glyphs(instances.box_corners(own), "readout", _readout_name(head, line))
            text.group = "the top classes' readout"
            texts.append(text)
            continue
        text = _text_from_glyphs(instances.box_corners(own), "number", _number_name(int(key[0]), int(key[1])))
        text.on_plate = True
        text.group = _number_name(int(key[0]), None)
        texts.append(text)
    return texts


def _readout_name(head, line):
    """A line of the top classes' readout: its title (line 0) or the class ranked ``line``."""
    which = "" if head == 0 else f" of output {head + 1}"
    return f"the top classes' title{which}" if line == 0 else f"the top class {line}{which}"


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
    positions = transformed(read_attribute(mesh, "position").astype(np.float64), matrix[:3])
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
    """Where the cells are, for naming texts: their centres, each layer's box and its cells (world)."""

    def __init__(self, centres, cell_layers):
        self.centres = centres
        self.layers = cell_layers
        # The cells by layer, sorted once: a text looks only among the cells of the layers it stands near
        # (ResNet50 has 5.8 million cells in 177 layers).
        order = np.argsort(cell_layers, kind="stable")
        layers, starts = np.unique(cell_layers[order], return_index=True)
        ends = np.r_[starts[1:], len(order)]
        self._members = {int(layer): order[start:end] for layer, start, end in zip(layers, starts, ends)}
        by_layer = centres[order]
        lows = np.minimum.reduceat(by_layer, starts) if len(order) else np.zeros((0, 3))
        highs = np.maximum.reduceat(by_layer, starts) if len(order) else np.zeros((0, 3))
        self.boxes = {int(layer): (low, high) for layer, low, high in zip(layers, lows, highs)}

    def near(self, point, reach):
        """The cells whose centres stand within ``reach`` of ``point`` on every axis."""
        members = [
            self._members[layer]
            for layer, (low, high) in self.boxes.items()
            if (low - reach <= point).all() and (point <= high + reach).all()
        ]
        candidates = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
        return np.sort(candidates[(np.abs(self.centres[candidates] - point) <= reach).all(axis=1)])


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
    near = places.near(start, 8 * height)
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
    """The layer whose cells' box is nearest ``point``."""
    boxes = [(layer, low, high) for layer, (low, high) in places.boxes.items() if layer >= 0]
    if not boxes:
        return -1
    return min(boxes, key=lambda box: float(np.linalg.norm(np.clip(point, box[1], box[2]) - point)))[0]


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
    node: Any  # of whichever node type its bl_idname names (group nodes, switches)
    for node in tree_nodes(tree) if tree is not None else ():
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
