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

``read_drawing`` (``scene/drawn_texts.py``) reads the texts and cells once, in
world space; ``check_drawing`` then projects them with a camera (``View``):
pure numpy, so the stage can try several framings (``scene/stage.py``). ``check_composition`` reads and checks for one
camera, ``check_camera_moves`` at every keyframe of the camera's moves. The
thresholds and why: docs/composition.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Matrix

from .drawn_texts import Drawing, read_drawing, transformed

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
        clip = transformed(points, self.matrix[[0, 1, 3]])
        w = clip[..., 2]
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
    scene, camera, missing = _what_is_checked(scene, network, camera, "check_composition")
    if missing:
        return missing
    assert network is not None and camera is not None  # _what_is_checked says so
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
    scene, camera, missing = _what_is_checked(scene, network, camera, "check_camera_moves")
    if missing:
        return missing
    assert network is not None and camera is not None  # _what_is_checked says so
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


def _what_is_checked(
    scene: bpy.types.Scene | None, network: bpy.types.Object | None, camera: bpy.types.Object | None, caller: str
) -> tuple[bpy.types.Scene, bpy.types.Object | None, list[Problem]]:
    """``(scene, camera, problems)``: the scene (the context's by default), its camera unless one is given, and the
    one problem to report when there is no camera. A missing network is the caller's mistake, not the picture's."""
    scene = scene or bpy.context.scene
    assert scene is not None  # the stubs allow a context without a scene
    if network is None:
        raise ValueError(f"{caller} needs the network object")
    camera = camera or scene.camera
    if camera is None:
        return scene, None, [Problem("framing", "camera", f"{scene.name} has no camera to check")]
    return scene, camera, []


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
        near = self._cells_near_texts()
        cell_pixels, cell_front = view.pixels(drawing.cells[near])
        self.cells = cell_pixels[cell_front.all(axis=1)]
        self.cell_layers = drawing.cell_layers[near][cell_front.all(axis=1)]

    def _cells_near_texts(self):
        """Indices of the cells whose pixels may come within a clearance of a text the checks test against cells.

        Only those are projected: a cell's centre and its reach in pixels
        (its half diagonal at its depth) tell whether it can touch a text's
        box, so a CIFAR network's 230,000 cells need not all be projected for
        every view the stage tries.
        """
        drawing, view = self.drawing, self.view
        tested = [index for index, text in enumerate(drawing.texts) if not text.on_plate and self._visible(index)]
        if not len(drawing.cells) or not tested:
            return np.zeros(0, np.int64)
        centres, front = view.pixels(drawing.cell_centres)
        depth = drawing.cell_centres @ view.matrix[3, :3] + view.matrix[3, 3]
        # Pixels per world unit at depth 1, along the frame's wider axis: a bound for either axis.
        scale = max(np.linalg.norm(view.matrix[0, :3]) * view.width, np.linalg.norm(view.matrix[1, :3]) * view.height)
        reach = 0.5 * scale * drawing.cell_radii / np.maximum(depth, 1e-6)
        reach = float(reach[front].max()) if front.any() else 0.0
        # Buckets of the frame (and as much again around it) that a tested text's box, grown by the clearance and
        # the reach of the largest cell, touches.
        size = _Buckets.SIZE
        low_edge = np.array([-view.width, -view.height], dtype=np.float64)
        columns, rows = int(np.ceil(3 * view.width / size)), int(np.ceil(3 * view.height / size))
        marked = np.zeros((rows, columns), dtype=bool)
        grow = self.clearance + reach
        for index in tested:
            for quad in self.lines[index]:
                first = np.floor((quad.min(axis=0) - grow - low_edge) / size).astype(np.int64)
                last = np.floor((quad.max(axis=0) + grow - low_edge) / size).astype(np.int64)
                first, last = np.maximum(first, 0), np.minimum(last, (columns - 1, rows - 1))
                if (first <= last).all():
                    marked[first[1] : last[1] + 1, first[0] : last[0] + 1] = True
        keys = np.floor((centres - low_edge) / size).astype(np.int64)
        inside = front & (keys[:, 0] >= 0) & (keys[:, 0] < columns) & (keys[:, 1] >= 0) & (keys[:, 1] < rows)
        chosen = np.flatnonzero(inside)
        return chosen[marked[keys[chosen, 1], keys[chosen, 0]]]

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
