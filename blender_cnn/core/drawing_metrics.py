"""How cluttered and how truthful a drawing of polylines is: ink, distortion and ambiguity.

All take polylines as an (E, P, 3) array of points, as the bundling makes
them. Ink projects them with a 4x4 world->clip matrix (or a view direction,
for an orthographic view), draws them one pixel wide into a raster over given
bounds and counts the covered pixels; to compare a bundled drawing with the
straight one, pass both the bounds of the straight drawing. Ambiguity
(``ambiguity``) asks how much of what is not connected the drawing shows as
connected, among the connections that stand out (docs/bundling.md). Pure
numpy, in chunks of edges so that millions fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# (x_min, y_min, x_max, y_max) in screen coordinates.
Bounds = tuple[float, float, float, float]

CHUNK_EDGES = 65_536
# A connection stands out when its |weight| is at least this share of the largest of its layer pair: the scene
# draws it at least 0.2 + 0.8 * 0.5 = 60% as thick as the strongest, and at least half as saturated.
STRONG = 0.5


def view_projection(view_direction: npt.ArrayLike, up: npt.ArrayLike = (0.0, 0.0, 1.0)) -> np.ndarray:
    """4x4 orthographic world->clip matrix looking along ``view_direction``, ``up`` upwards on screen.

    Screen x is ``view x up`` (to the right), screen y the part of ``up``
    across the view; both in world units. Direction (0, 1, 0) shows x to the
    right and z up: the side of the network.
    """
    view = np.asarray(view_direction, dtype=np.float64)
    if view.shape != (3,) or not np.linalg.norm(view):
        raise ValueError(f"view_direction must be a non-zero 3-vector, got {view_direction!r}")
    view = view / np.linalg.norm(view)
    right = np.cross(view, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("view_direction must not be parallel to up")
    right /= np.linalg.norm(right)
    screen_up = np.cross(right, view)
    matrix = np.eye(4)
    matrix[0, :3], matrix[1, :3], matrix[2, :3] = right, screen_up, -view
    return matrix


def _matrix(projection: npt.ArrayLike) -> np.ndarray:
    projection = np.asarray(projection, dtype=np.float64)
    if projection.shape == (3,):
        return view_projection(projection)
    if projection.shape != (4, 4):
        raise ValueError(
            f"projection must be a 4x4 world->clip matrix or a view direction, got shape {projection.shape}"
        )
    return projection


def _checked_polylines(points: npt.ArrayLike) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] < 2:
        raise ValueError(f"points must have shape (edges, points >= 2, 3), got {points.shape}")
    return points


def project(points: npt.ArrayLike, projection: npt.ArrayLike) -> np.ndarray:
    """(..., 2) float64 screen coordinates of (..., 3) points: clip x, y after the perspective divide."""
    matrix = _matrix(projection)
    points = np.asarray(points, dtype=np.float64)
    clip = points @ matrix[:3, :3].T + matrix[:3, 3]
    w = points @ matrix[3, :3] + matrix[3, 3]
    return clip[..., :2] / w[..., None]


def drawing_bounds(points: npt.ArrayLike, projection: npt.ArrayLike) -> Bounds:
    """(x_min, y_min, x_max, y_max) of the projected polylines: the frame to draw both drawings in."""
    points = _checked_polylines(points)
    low, high = np.full(2, np.inf), np.full(2, -np.inf)
    for start in range(0, len(points), CHUNK_EDGES * 8):
        screen = project(points[start : start + CHUNK_EDGES * 8], projection).reshape(-1, 2)
        low, high = np.minimum(low, screen.min(axis=0)), np.maximum(high, screen.max(axis=0))
    return (*low, *high)


def raster_shape(bounds: Sequence[float], resolution: int) -> tuple[int, int, float]:
    """(rows, cols) of square pixels covering ``bounds``, ``resolution`` pixels along the longer side."""
    width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
    if width <= 0 and height <= 0:
        raise ValueError(f"bounds must have an area or a length, got {bounds!r}")
    pixel = max(width, height) / resolution
    return max(1, int(np.ceil(height / pixel - 1e-9))), max(1, int(np.ceil(width / pixel - 1e-9))), pixel


def rasterize(
    points: npt.ArrayLike, projection: npt.ArrayLike, resolution: int = 512, bounds: Sequence[float] | None = None
) -> np.ndarray:
    """bool (rows, cols) raster of the polylines drawn one pixel wide (row 0 at the bottom)."""
    points = _checked_polylines(points)
    bounds = drawing_bounds(points, projection) if bounds is None else tuple(float(b) for b in bounds)
    rows, cols, pixel = raster_shape(bounds, resolution)
    raster = np.zeros(rows * cols, dtype=bool)
    origin = np.array(bounds[:2])
    for start in range(0, len(points), CHUNK_EDGES):
        screen = ((project(points[start : start + CHUNK_EDGES], projection) - origin) / pixel).astype(np.float32)
        begin, end = _distinct_segments(screen[:, :-1].reshape(-1, 2), screen[:, 1:].reshape(-1, 2), rows, cols)
        # A segment as long in x as in y is drawn column by column.
        x_major = np.abs(end[:, 0] - begin[:, 0]) >= np.abs(end[:, 1] - begin[:, 1])
        _draw_along(raster, rows, cols, begin[x_major], end[x_major], 0)
        _draw_along(raster, rows, cols, begin[~x_major], end[~x_major], 1)
    return raster.reshape(rows, cols)


def _distinct_segments(
    begin: np.ndarray, end: np.ndarray, rows: int, cols: int, steps: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """The segments (in pixel units) with duplicates within 1/32 pixel dropped.

    Bundled drawings repeat the same stretch thousands of times; drawing it
    once is what makes measuring millions of bundled edges fast. Straight
    drawings have few duplicates and pass through unchanged.
    """
    if max(rows, cols) * steps >= 2**15:
        return begin, end
    quantized = np.rint(np.concatenate([begin, end], axis=1) * steps).astype(np.int64)
    # Each coordinate in 16 bits (offset to keep segments reaching a little outside the frame).
    quantized = np.clip(quantized + 2**15, 0, 2**16 - 1)
    key = (quantized[:, 0] << 48) | (quantized[:, 1] << 32) | (quantized[:, 2] << 16) | quantized[:, 3]
    _, first = np.unique(key, return_index=True)
    inside = np.all((quantized > 0) & (quantized < 2**16 - 1), axis=1)
    keep = np.union1d(first, np.flatnonzero(~inside))  # clipped keys may merge distinct segments
    return begin[keep], end[keep]


SAMPLES_PER_BATCH = 8_000_000


def _draw_along(raster: np.ndarray, rows: int, cols: int, begin: np.ndarray, end: np.ndarray, major: int) -> None:
    """Mark the pixels of segments (pixel units) whose longer axis is ``major``: one per pixel crossed.

    Along that axis a segment gets one sample in every pixel it crosses,
    taken on the pixel's centre line: a gap-free line one pixel wide, like Bresenham's.
    """
    minor = 1 - major
    swap = end[:, major] < begin[:, major]
    u0 = np.where(swap, end[:, major], begin[:, major])
    u1 = np.where(swap, begin[:, major], end[:, major])
    v0 = np.where(swap, end[:, minor], begin[:, minor])
    v1 = np.where(swap, begin[:, minor], end[:, minor])
    first = np.floor(u0)
    counts = (np.floor(u1) - first).astype(np.int64) + 1
    span = u1 - u0
    slope = np.divide(v1 - v0, span, out=np.zeros_like(span), where=span > 0)
    # Batches of segments with a bounded number of samples keep memory flat for any resolution.
    ends = np.searchsorted(np.cumsum(counts), np.arange(1, counts.sum() // SAMPLES_PER_BATCH + 2) * SAMPLES_PER_BATCH)
    for batch in np.split(np.arange(len(counts)), np.unique(np.minimum(ends, len(counts)))[:-1] + 1):
        if not len(batch):
            continue
        count = counts[batch]
        local = np.arange(count.sum(), dtype=np.float32) - np.repeat(
            (np.cumsum(count) - count).astype(np.float32), count
        )
        low, high = np.repeat(u0[batch], count), np.repeat(u1[batch], count)
        u = np.clip(np.repeat(first[batch], count) + local + np.float32(0.5), low, high)
        v = np.repeat(v0[batch], count) + (u - low) * np.repeat(slope[batch], count)
        x, y = (u, v) if major == 0 else (v, u)
        # A point on the far edge of the frame belongs to the last pixel; anything further out is off the raster.
        inside = (x >= 0) & (y >= 0) & (x <= cols) & (y <= rows)
        col = np.minimum(x[inside].astype(np.int64), cols - 1)
        row = np.minimum(y[inside].astype(np.int64), rows - 1)
        raster[row * cols + col] = True


def ink(
    points: npt.ArrayLike, projection: npt.ArrayLike, resolution: int = 512, bounds: Sequence[float] | None = None
) -> float:
    """Share of the raster's pixels covered by the polylines (E, P, 3), drawn one pixel wide.

    ``projection``: a 4x4 world->clip matrix, or a view direction for an
    orthographic view (``view_projection``). ``bounds``: (x_min, y_min,
    x_max, y_max) in screen coordinates; default the drawing's own. Pass the
    straight drawing's bounds to compare a bundled drawing with it.
    ``resolution``: pixels along the longer side (pixels are square).
    """
    return float(rasterize(points, projection, resolution, bounds).mean())


def distortion(points: npt.ArrayLike) -> float:
    """Mean over edges of polyline length / straight distance from its first to its last point.

    1 for straight polylines. Edges whose ends coincide are left out (their ratio is undefined).
    """
    points = _checked_polylines(points)
    total, counted = 0.0, 0
    for start in range(0, len(points), CHUNK_EDGES * 8):
        part = np.asarray(points[start : start + CHUNK_EDGES * 8], dtype=np.float64)
        length = np.linalg.norm(np.diff(part, axis=1), axis=2).sum(axis=1)
        chord = np.linalg.norm(part[:, -1] - part[:, 0], axis=1)
        valid = chord > 0
        total += float((length[valid] / chord[valid]).sum())
        counted += int(valid.sum())
    if not counted:
        raise ValueError("distortion needs at least one edge whose ends differ")
    return total / counted


@dataclass(frozen=True)
class Perceived:
    """Which connections the drawing of one layer pair suggests, and which exist: source by target.

    ``sources`` and ``targets``: the node ids of the rows and columns, every
    node with an edge in the pair. ``perceived`` and ``true``: bool
    (sources, targets). A node's perceived neighbours are its row (a source)
    or its column (a target); ``true`` holds every edge of the pair, whether
    or not any of its ink is visible, and every edge whose ink is visible is
    perceived.
    """

    sources: np.ndarray
    targets: np.ndarray
    perceived: np.ndarray
    true: np.ndarray

    def counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(node ids, false neighbours perceived, non-neighbours) of the sources, then of the targets."""
        false = self.perceived & ~self.true
        return (
            np.concatenate([self.sources, self.targets]),
            np.concatenate([false.sum(axis=1), false.sum(axis=0)]),
            np.concatenate([(~self.true).sum(axis=1), (~self.true).sum(axis=0)]),
        )


def node_ambiguity(pairs: Sequence[Perceived]) -> tuple[np.ndarray, np.ndarray]:
    """(node ids, each node's ambiguity): the share of its non-neighbours that the drawing shows as neighbours.

    A node of two layer pairs (a middle layer) adds up its false neighbours
    and its non-neighbours on both sides. Nodes with no non-neighbour (every
    connection they could have is drawn) are left out: nothing false can be
    suggested about them.
    """
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0)
    ids, false, candidates = (np.concatenate(part) for part in zip(*(pair.counts() for pair in pairs)))
    nodes, where = np.unique(ids, return_inverse=True)
    false_total = np.bincount(where, weights=false, minlength=len(nodes))
    candidate_total = np.bincount(where, weights=candidates, minlength=len(nodes))
    counted = candidate_total > 0
    return nodes[counted], false_total[counted] / candidate_total[counted]


def ambiguity(
    points: npt.ArrayLike,
    projection: npt.ArrayLike,
    resolution: int = 512,
    bounds: Sequence[float] | None = None,
    **options: Any,
) -> float:
    """How much of what is not connected the drawing shows as connected: the mean over nodes of ``node_ambiguity``.

    0: a reader following the curves never arrives at a neuron its own
    neuron does not connect to; 1: every neuron seems connected to every
    neuron of the next layer. ``options`` and the definition:
    ``perceived_neighbours``. With ``weights``, the question is asked of the
    connections that stand out (``strong_edges``), the ones a reader follows;
    without, of every edge, and a drawing whose every layer pair is complete
    (all weights drawn alike) has nothing to confuse and gives 0.
    """
    _nodes, shares = node_ambiguity(perceived_neighbours(points, projection, resolution, bounds, **options))
    return float(shares.mean()) if len(shares) else 0.0


def strong_edges(weights: npt.ArrayLike, pairs: npt.ArrayLike, strong: float = STRONG) -> np.ndarray:
    """bool per edge: its |weight| is at least ``strong`` times the largest |weight| of its layer pair.

    The scene colours a curve by its weight over the pair's largest and
    thickens it from 0.2 to 1 of the full radius by the same ratio, so these
    are the curves that stand out: at ``STRONG`` (0.5), at least 60% of full
    thickness and half of full saturation.
    """
    magnitude = np.abs(np.asarray(weights, dtype=np.float64))
    pair_of = np.asarray(pairs, np.int64)
    if magnitude.shape != pair_of.shape or magnitude.ndim != 1:
        raise ValueError(f"weights and pairs must hold one value per edge, got {magnitude.shape} and {pair_of.shape}")
    if not 0.0 < strong <= 1.0:
        raise ValueError(f"strong must be in (0, 1], got {strong!r}")
    if not len(magnitude):
        return np.zeros(0, bool)
    _pairs, index = np.unique(pair_of, return_inverse=True)
    largest = np.zeros(index.max() + 1)
    np.maximum.at(largest, index, magnitude)
    return magnitude >= strong * largest[index]


def perceived_neighbours(
    points: npt.ArrayLike,
    projection: npt.ArrayLike,
    resolution: int = 512,
    bounds: Sequence[float] | None = None,
    *,
    sources: npt.ArrayLike | None = None,
    targets: npt.ArrayLike | None = None,
    pairs: npt.ArrayLike | None = None,
    weights: npt.ArrayLike | None = None,
    strong: float = STRONG,
    width: float = 2.0,
    angle: float = 10.0,
    clearance: float = 3.0,
) -> list[Perceived]:
    """The connections the drawing of the polylines (E, P, 3) suggests, and the true ones, per layer pair.

    Each edge runs from its source (point 0) to its target (point P-1).
    ``sources``, ``targets``: int node ids per edge; by default the ends'
    positions name the nodes (curves that end at the same point end at the
    same node). ``pairs``: int layer pair per edge; by default the ends' x
    (a layer stands in a plane of constant x). ``weights``: the weight per
    edge; when given, only the edges that stand out (``strong_edges`` at
    ``strong``) are asked about and followed: they are the pair's
    connections, and the ink of the others (thin and pale) leads nowhere.
    Each pair is measured on its own; a pair whose every pair of nodes is
    connected is skipped (it has no non-neighbours). The drawing is projected
    as ``ink`` projects it (``projection``, ``resolution``, ``bounds``), and:

    1. every edge is drawn ``width`` pixels wide; a pixel it covers gets the
       direction the edge runs there (modulo 180 degrees);
    2. two edges are *confusable* where they cover the same pixel running in
       nearly the same direction: directions fall into bins of ``angle`` / 2
       degrees and the same or a neighbouring bin counts, so directions under
       ``angle`` / 2 apart always do and ``angle`` or more apart never;
    3. pixels within ``clearance`` pixels of a node's centre are left out:
       every edge of a node meets there, and where nodes are closer than that
       no drawing could tell their edges apart;
    4. a reader following edge (a, b) onto a confusable edge (c, d) arrives at
       d: a *perceives* d, and d perceives a (c perceives b, b perceives c).
       An edge is confusable with itself: a node perceives its own
       neighbours wherever any of their ink shows.

    A perceived connection is true when it is an edge of the drawing (one
    hop in the graph), as in the ambiguity measure of edge-path bundling
    (Wallinger et al., IEEE TVCG 2022, k = 1). ``node_ambiguity`` turns this
    into a share per node.
    """
    points = _checked_polylines(points)
    if width <= 0 or not 0 < angle <= 180 or clearance < 0:
        raise ValueError(
            f"width and angle must be positive (angle at most 180) and clearance >= 0, got {width}, {angle}, "
            f"{clearance}"
        )
    source_id, target_id = _node_ids(points, sources, targets)
    pair_of = _pair_ids(points, pairs)
    bounds = drawing_bounds(points, projection) if bounds is None else tuple(float(b) for b in bounds)
    rows, cols, pixel = raster_shape(bounds, resolution)
    origin = np.array(bounds[:2])
    # Every neuron is drawn, whichever of its curves stand out: the clearance is around all of them.
    ends = np.concatenate([points[:, 0], points[:, -1]])
    near_nodes = _near((project(ends, projection) - origin) / pixel, rows, cols, clearance)
    if weights is not None:
        chosen = strong_edges(weights, pair_of, strong)
        points, source_id, target_id, pair_of = points[chosen], source_id[chosen], target_id[chosen], pair_of[chosen]
    bins = max(1, round(360.0 / angle))
    found = []
    for pair in np.unique(pair_of):
        edges = np.flatnonzero(pair_of == pair)
        node_rows, row_of = np.unique(source_id[edges], return_inverse=True)
        node_cols, col_of = np.unique(target_id[edges], return_inverse=True)
        true = np.zeros((len(node_rows), len(node_cols)), bool)
        true[row_of, col_of] = True
        if true.all():
            continue
        perceived = _perceived(
            np.asarray(points)[edges], row_of, col_of, true.shape, projection, origin, pixel, near_nodes, bins, width
        )
        found.append(Perceived(node_rows, node_cols, perceived, true))
    return found


def _perceived(
    points: np.ndarray,
    row_of: np.ndarray,
    col_of: np.ndarray,
    shape: tuple[int, int],
    projection: npt.ArrayLike,
    origin: np.ndarray,
    pixel: float,
    near_nodes: np.ndarray,
    bins: int,
    width: float,
) -> np.ndarray:
    """bool (sources, targets): which sources' ink is confusable with which targets' ink (one layer pair).

    Cells are (pixel, direction bin). A first pass over the curves collects
    per cell the targets whose curves cover it, as bit sets; a second, per
    source, the targets of the cells its curves cover and of the cells of
    the neighbouring directions. Curves are taken in chunks of a bounded
    number of samples, so memory holds the cells and one chunk.
    """
    sources, targets = shape
    words = (targets + 63) // 64
    raster_rows, raster_cols = near_nodes.shape
    chunks = _sample_chunks(points, projection, origin, pixel, width)

    def visible_cells(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        screen = (project(points[start:stop], projection) - origin) / pixel
        edge, covered = _direction_cells(screen, raster_rows, raster_cols, width, bins)
        visible = ~near_nodes.ravel()[covered // bins]
        return edge[visible] + start, covered[visible]

    cells, reaching = np.zeros(0, np.int64), np.zeros((0, words), np.uint64)
    for start, stop in chunks:
        edge, covered = visible_cells(start, stop)
        pairs = _unique(covered * targets + col_of[edge])
        cells, reaching = _merged_bit_sets(
            np.concatenate([cells, pairs // targets]),
            np.concatenate([reaching, _bit_rows(pairs % targets, words)]),
        )
    perceived = np.zeros((sources, words), np.uint64)
    if not len(cells):
        return _bits(perceived, targets)
    for start, stop in chunks:
        edge, covered = visible_cells(start, stop)
        pairs = _unique(covered * sources + row_of[edge])
        cell, row = pairs // sources, pairs % sources
        direction = cell % bins
        seen = np.zeros((len(pairs), words), np.uint64)
        for turn in (-1, 0, 1):
            neighbour = cell - direction + (direction + turn) % bins
            where = np.minimum(np.searchsorted(cells, neighbour), len(cells) - 1)
            hit = cells[where] == neighbour
            seen[hit] |= reaching[where[hit]]
        rows, seen = _merged_bit_sets(row, seen)
        perceived[rows] |= seen
    return _bits(perceived, targets)


SAMPLES_PER_CHUNK = 4_000_000


def _sample_chunks(
    points: np.ndarray, projection: npt.ArrayLike, origin: np.ndarray, pixel: float, width: float
) -> list[tuple[int, int]]:
    """(start, stop) ranges of curves that leave at most about SAMPLES_PER_CHUNK samples each (one curve at least)."""
    estimate = np.zeros(len(points))
    for start in range(0, len(points), CHUNK_EDGES):
        screen = (project(points[start : start + CHUNK_EDGES], projection) - origin) / pixel
        longer = np.abs(np.diff(screen, axis=1)).max(axis=2)
        estimate[start : start + CHUNK_EDGES] = (longer + 1).sum(axis=1) * (width + 2)
    ends = np.searchsorted(
        np.cumsum(estimate), np.arange(1, estimate.sum() // SAMPLES_PER_CHUNK + 2) * SAMPLES_PER_CHUNK
    )
    stops = np.unique(np.clip(ends + 1, 1, len(points)))
    return list(zip(np.r_[0, stops[:-1]].tolist(), stops.tolist(), strict=True)) if len(points) else []


def _bit_rows(columns: np.ndarray, words: int) -> np.ndarray:
    """uint64 (n, words): one bit set per row, bit ``columns[i]``."""
    rows = np.zeros((len(columns), words), np.uint64)
    rows[np.arange(len(columns)), columns // 64] = np.left_shift(np.uint64(1), (columns % 64).astype(np.uint64))
    return rows


def _merged_bit_sets(keys: np.ndarray, bit_sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, the OR of the bit sets of each key)."""
    if not len(keys):
        return keys, bit_sets
    order = np.argsort(keys, kind="stable")
    keys, bit_sets = keys[order], bit_sets[order]
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return keys[first], np.bitwise_or.reduceat(bit_sets, first, axis=0)


def _unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values: a sort, which numpy 2.5's hashing ``np.unique`` is many times slower than here."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _bits(words: np.ndarray, count: int) -> np.ndarray:
    """bool (n, count) from (n, words) uint64 bit sets, bit i of word w being column 64 w + i."""
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :count].astype(bool)


def _node_ids(
    points: np.ndarray, sources: npt.ArrayLike | None, targets: npt.ArrayLike | None
) -> tuple[np.ndarray, np.ndarray]:
    """int64 node id of each edge's source and target: the given ones, or one per distinct end position."""
    if sources is not None and targets is not None:
        source_id, target_id = np.asarray(sources, np.int64), np.asarray(targets, np.int64)
        if source_id.shape != (len(points),) or target_id.shape != (len(points),):
            raise ValueError(f"sources and targets must hold one node id per edge ({len(points)})")
        return source_id, target_id
    if sources is not None or targets is not None:
        raise ValueError("give both sources and targets, or neither")
    ends = np.ascontiguousarray(np.concatenate([points[:, 0], points[:, -1]]), dtype=np.float64)
    _unique, ids = np.unique(ends.view(np.dtype((np.void, 24))).ravel(), return_inverse=True)
    return ids[: len(points)].astype(np.int64), ids[len(points) :].astype(np.int64)


def _pair_ids(points: np.ndarray, pairs: npt.ArrayLike | None) -> np.ndarray:
    """int64 layer pair of each edge: the given ones, or one per distinct (source x, target x)."""
    if pairs is not None:
        pair_of = np.asarray(pairs, np.int64)
        if pair_of.shape != (len(points),):
            raise ValueError(f"pairs must hold one layer pair id per edge ({len(points)})")
        return pair_of
    ends = np.ascontiguousarray(np.stack([points[:, 0, 0], points[:, -1, 0]], axis=1), dtype=np.float64)
    return np.unique(ends.view(np.dtype((np.void, 16))).ravel(), return_inverse=True)[1].astype(np.int64)


def _near(nodes: np.ndarray, rows: int, cols: int, clearance: float) -> np.ndarray:
    """bool (rows, cols): the pixels whose centre is within ``clearance`` pixels of a node (pixel units)."""
    near = np.zeros(rows * cols, bool)
    reach = int(np.floor(clearance))
    for dy in range(-reach - 1, reach + 2):
        for dx in range(-reach - 1, reach + 2):
            # The pixel (dx, dy) away from the one holding the node: its centre within reach of the node?
            col = np.floor(nodes[:, 0]) + dx
            row = np.floor(nodes[:, 1]) + dy
            close = np.hypot(col + 0.5 - nodes[:, 0], row + 0.5 - nodes[:, 1]) <= clearance
            close &= (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
            near[(row[close] * cols + col[close]).astype(np.int64)] = True
    return near.reshape(rows, cols)


def _direction_cells(
    screen: np.ndarray, rows: int, cols: int, width: float, bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """(edge, cell) of every pixel the polylines (E, P, 2 in pixel units) cover ``width`` wide, cell being
    ``pixel * bins + direction bin``. Along its longer axis a segment is sampled once per pixel it crosses,
    as ``rasterize`` does; across it, every pixel overlapping the ``width`` around the line."""
    begin, end = screen[:, :-1].reshape(-1, 2), screen[:, 1:].reshape(-1, 2)
    segment_edge = np.repeat(np.arange(len(screen)), screen.shape[1] - 1)
    delta = end - begin
    direction = np.mod(np.arctan2(delta[:, 1], delta[:, 0]), np.pi)
    direction_bin = np.minimum((direction / np.pi * bins).astype(np.int64), bins - 1)
    x_major = np.abs(delta[:, 0]) >= np.abs(delta[:, 1])
    edges, cells = [], []
    for major, chosen in ((0, x_major), (1, ~x_major)):
        minor = 1 - major
        b, e = begin[chosen], end[chosen]
        swap = e[:, major] < b[:, major]
        u0 = np.where(swap, e[:, major], b[:, major])
        u1 = np.where(swap, b[:, major], e[:, major])
        v0 = np.where(swap, e[:, minor], b[:, minor])
        v1 = np.where(swap, b[:, minor], e[:, minor])
        first = np.floor(u0)
        counts = (np.floor(u1) - first).astype(np.int64) + 1
        span = u1 - u0
        slope = np.divide(v1 - v0, span, out=np.zeros_like(span), where=span > 0)
        local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        low, high = np.repeat(u0, counts), np.repeat(u1, counts)
        u = np.clip(np.repeat(first, counts) + local + 0.5, low, high)
        v = np.repeat(v0, counts) + (u - low) * np.repeat(slope, counts)
        owner = np.repeat(np.flatnonzero(chosen), counts)
        # Across the line: every pixel that overlaps [v - width / 2, v + width / 2).
        lowest = np.floor(v - width / 2)
        across = np.ceil(v + width / 2).astype(np.int64) - lowest.astype(np.int64)
        step = np.arange(across.sum()) - np.repeat(np.cumsum(across) - across, across)
        owner, u = np.repeat(owner, across), np.repeat(np.floor(u), across)
        v = np.repeat(lowest, across) + step
        x, y = (u, v) if major == 0 else (v, u)
        inside = (x >= 0) & (y >= 0) & (x < cols) & (y < rows)
        pixel = y[inside].astype(np.int64) * cols + x[inside].astype(np.int64)
        edges.append(segment_edge[owner[inside]])
        cells.append(pixel * bins + direction_bin[owner[inside]])
    return np.concatenate(edges), np.concatenate(cells)
