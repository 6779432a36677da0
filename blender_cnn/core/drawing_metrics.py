"""How cluttered a drawing of polylines is: ink (share of pixels covered) and distortion.

Both take polylines as an (E, P, 3) array of points, as the bundling makes
them. Ink projects them with a 4x4 world->clip matrix (or a view direction,
for an orthographic view), draws them one pixel wide into a raster over given
bounds and counts the covered pixels; to compare a bundled drawing with the
straight one, pass both the bounds of the straight drawing. Pure numpy, in
chunks of edges so that millions fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# (x_min, y_min, x_max, y_max) in screen coordinates.
Bounds = tuple[float, float, float, float]

CHUNK_EDGES = 65_536


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
