"""Edge bundling for dense-layer connections, in numpy: straight and bundled points per edge.

Layers sit along +X and a layer's neurons in the Y-Z plane of its x, so every
edge runs between two parallel planes. Each point of an edge keeps its x (its
parameter ``t`` along the layer pair) and bundling moves it only laterally,
in (y, z): the scene stores straight points and lateral offsets and blends
them with a keyframable strength.

The algorithm (see docs/bundling.md for why and the measurements):

1. **Nested cluster routing.** Per layer pair, the source neurons and the
   target neurons are each grouped by k-means on their (y, z) into
   *clusters*, as a funnel: the wider layer gets one cluster, the narrower
   one or two (``strands``), so the middle of the way holds one or two
   strands. Inside each cluster, neighbouring neurons form *groups* of about
   ``group_size`` (64). An edge leaves its source, merges into its group's
   centre over the first step between points, curves into its cluster's
   centre by ``fan_length`` (0.15) of the way, runs straight to its target
   cluster's centre, and mirrors that at the target end. Edges of
   neighbouring neurons share their fan from their group on; all edges of one
   pair of clusters share the middle stretch.
2. **Optional KDE smoothing**, off by default (kernel density estimation edge bundling, Hurter et al.
   2012, applied per slice of constant x): a few steps move each interior
   point up the gradient of the density of all points of its slice, then
   smooth each edge along its length. It draws neighbouring bundles together
   and rounds the corners left by the routing.

Pure numpy, float32, processed in chunks of edges so that millions fit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

# Points per edge: more for small drawings (shorter first step, so shorter fans), fewer for huge ones,
# where memory and Blender's curve count dominate.
POINTS_PER_EDGE_SMALL = 24
SMALL_EDGE_COUNT = 50_000
POINTS_PER_EDGE = 12
POINTS_PER_EDGE_HUGE = 8
HUGE_EDGE_COUNT = 500_000
CHUNK_EDGES = 131_072
GROUP_SIZE = 64
STRANDS = 2

LATERAL = slice(1, 3)


def default_points_per_edge(edge_count: int) -> int:
    """Points per edge for a drawing of ``edge_count`` edges: 24 up to 50,000 edges, 12 up to 500,000, else 8."""
    if edge_count <= SMALL_EDGE_COUNT:
        return POINTS_PER_EDGE_SMALL
    return POINTS_PER_EDGE_HUGE if edge_count > HUGE_EDGE_COUNT else POINTS_PER_EDGE


def default_clusters(source_count: int, target_count: int, strands: int = STRANDS) -> tuple[int, int]:
    """(source clusters, target clusters) of a layer pair of that many distinct neurons: a funnel.

    The wider side (more neurons; the source on a tie) gets one cluster, so
    all its edges join one trunk; the narrower side about sqrt(n) / 6
    clusters, at least 2 from 16 neurons, at most ``strands``: the trunk
    splits into that many strands as it nears the narrower layer. Measured
    on the CIFAR-10 greyscale scene from the stage camera, the former
    sqrt(n) / 6 on both sides (15 x 3 clusters for flatten 8192 -> dense 256)
    left 70% of the straight ink: the 45 strands were most of it, while the
    fans near a big layer hide in the layer's own footprint (docs/bundling.md).
    """
    if strands < 1:
        raise ValueError(f"strands must be at least 1, got {strands!r}")
    narrow = min(source_count, target_count)
    clusters = min(strands, narrow, max(1 if narrow < 16 else 2, round(math.sqrt(narrow) / 6)))
    return (1, clusters) if source_count >= target_count else (clusters, 1)


def _checked_edges(
    source_xyz: npt.ArrayLike, target_xyz: npt.ArrayLike, points_per_edge: float
) -> tuple[np.ndarray, np.ndarray, int]:
    source = np.asarray(source_xyz, dtype=np.float32)
    target = np.asarray(target_xyz, dtype=np.float32)
    if source.ndim != 2 or source.shape[1] != 3:
        raise ValueError(f"source_xyz must have shape (edges, 3), got {source.shape}")
    if target.shape != source.shape:
        raise ValueError(f"target_xyz must have the shape of source_xyz {source.shape}, got {target.shape}")
    if int(points_per_edge) != points_per_edge or points_per_edge < 2:
        raise ValueError(
            f"points_per_edge must be an integer of at least 2 (source and target), got {points_per_edge!r}"
        )
    if not (np.isfinite(source).all() and np.isfinite(target).all()):
        raise ValueError("source_xyz and target_xyz must be finite")
    return source, target, int(points_per_edge)


def _parameters(points_per_edge: int) -> np.ndarray:
    """float32 t of each point along an edge: 0 at the source, 1 at the target."""
    return (np.arange(points_per_edge, dtype=np.float64) / (points_per_edge - 1)).astype(np.float32)


def straight_points(source_xyz: npt.ArrayLike, target_xyz: npt.ArrayLike, points_per_edge: int) -> np.ndarray:
    """float32 (E, P, 3): P evenly spaced points along each straight edge.

    Point 0 is the source and point P-1 the target, exactly (as float32).
    """
    source, target, points = _checked_edges(source_xyz, target_xyz, points_per_edge)
    t = _parameters(points)[None, :, None]
    out = np.empty((len(source), points, 3), dtype=np.float32)
    for start in range(0, len(source), CHUNK_EDGES):
        part = slice(start, start + CHUNK_EDGES)
        a, b = source[part, None, :], target[part, None, :]
        out[part] = a + t * (b - a)
        # Exact ends, whatever the rounding of a + 1 * (b - a).
        out[part, 0], out[part, -1] = source[part], target[part]
    return out


def lateral_offsets(bundled: npt.ArrayLike, straight: npt.ArrayLike) -> np.ndarray:
    """float32 (E, P, 3) ``bundled - straight``: what the scene adds to straight points, scaled by strength.

    The x component is exactly 0, and so are the offsets of the first and last points.
    """
    bundled, straight = np.asarray(bundled, np.float32), np.asarray(straight, np.float32)
    if bundled.shape != straight.shape or bundled.ndim != 3 or bundled.shape[2] != 3:
        raise ValueError(
            f"bundled and straight must both have shape (edges, points, 3), got {bundled.shape} and {straight.shape}"
        )
    offsets = bundled - straight
    offsets[..., 0] = 0.0
    return offsets


def bundle_edges(
    source_xyz: npt.ArrayLike,
    target_xyz: npt.ArrayLike,
    points_per_edge: int | None = None,
    *,
    source_clusters: int | None = None,
    target_clusters: int | None = None,
    strands: int = STRANDS,
    group_size: int = GROUP_SIZE,
    fan_length: float = 0.15,
    group_length: float | None = None,
    kde_iterations: int = 0,
    kde_bandwidth: float = 0.08,
    smoothing: int = 2,
    seed: int = 0,
    straight: np.ndarray | None = None,
) -> np.ndarray:
    """float32 (E, P, 3) bundled points of the edges ``source_xyz[i] -> target_xyz[i]``.

    Edges are bundled per layer pair (edges sharing the x of their source and
    the x of their target), so one call may take all dense connections of a network.

    - ``points_per_edge``: P, points along each edge; default ``default_points_per_edge(E)``.
    - ``source_clusters``, ``target_clusters``: k-means clusters of the source
      and target neurons of each layer pair; by default ``default_clusters``
      chooses them, at most ``strands`` cluster pairs (strands in the middle
      of the way) per layer pair. Fewer clusters, fewer and thicker bundles:
      less ink, longer detours.
    - ``group_size``: neurons per group, the finer level inside each cluster;
      a cluster of fewer than 1.5 groups' worth of neurons is not divided and
      its neurons fan straight into its centre. 0 turns groups off.
    - ``fan_length``: share of the way (0 < f < 0.5) by which an edge has
      reached its source cluster's centre; it leaves its target cluster's
      centre as far from the end.
    - ``group_length``: share of the way over which an edge merges into its
      group's centre; default the first step between points, 1 / (P - 1),
      at most half the fan.
    - ``kde_iterations``: KDEEB density-gradient steps after routing. Off by
      default: measured, they pull apart bundles the routing made coincide
      and add ink (docs/bundling.md); kept for experiments.
    - ``kde_bandwidth``: kernel width of the first step, as a share of the
      lateral extent of the layer pair; halved at every step.
    - ``smoothing``: passes of smoothing along each edge after each step.
    - ``seed``: seeds the k-means initialisation; the same inputs give the same points.
    - ``straight``: the result of ``straight_points`` for these edges, if the caller already has it.

    Point 0 equals the source and point P-1 the target exactly; every point
    has the x of the matching straight point exactly; only y and z move.
    """
    source, target, _ = _checked_edges(source_xyz, target_xyz, 2)
    points = default_points_per_edge(len(source)) if points_per_edge is None else points_per_edge
    source, target, points = _checked_edges(source, target, points)
    if not 0.0 < fan_length < 0.5:
        raise ValueError(f"fan_length must be in (0, 0.5), got {fan_length!r}")
    if group_length is None:
        group_length = min(1.0 / (points - 1), fan_length / 2)
    if not 0.0 < group_length < fan_length:
        raise ValueError(f"group_length must be in (0, fan_length), got {group_length!r}")
    if group_size < 0 or strands < 1:
        raise ValueError("group_size must be >= 0 and strands >= 1")
    if kde_iterations < 0 or kde_bandwidth <= 0 or smoothing < 0:
        raise ValueError("kde_iterations and smoothing must be >= 0 and kde_bandwidth > 0")
    if straight is None:
        straight = straight_points(source, target, points)
    elif straight.shape != (len(source), points, 3):
        raise ValueError(f"straight must have shape {(len(source), points, 3)}, got {straight.shape}")
    bundled = straight.copy()
    if points < 3 or len(source) == 0:
        return bundled
    weights = route_weights(points, fan_length, group_length)
    for edges in _layer_pairs(source, target):
        lateral = _routed_lateral(
            source[edges], target[edges], weights, source_clusters, target_clusters, strands, group_size, seed
        )
        if kde_iterations:
            _kde_smooth(
                lateral, source[edges][:, LATERAL], target[edges][:, LATERAL], kde_iterations, kde_bandwidth, smoothing
            )
        bundled[edges, 1:-1, 1:3] = lateral
    return bundled


def _layer_pairs(source: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the edges of each layer pair (same source x, same target x)."""
    pair = (source[:, 0].view(np.uint32).astype(np.uint64) << np.uint64(32)) | target[:, 0].view(np.uint32)
    keys, inverse = np.unique(pair, return_inverse=True)
    if len(keys) == 1:
        return [np.arange(len(source))]
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def _distinct(lateral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (y, z) rows and, per row of ``lateral``, the index of its distinct row."""
    key = lateral.view(np.uint64).ravel()  # one float32 pair = one 64-bit key: a 1D sort, not a row sort
    keys, inverse = np.unique(key, return_inverse=True)
    return keys.view(np.float32).reshape(-1, 2), inverse


def kmeans(
    positions: npt.ArrayLike, clusters: int, seed: int = 0, iterations: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """(centres, label per position): k-means with k-means++ seeding, deterministic for a seed."""
    positions = np.asarray(positions, dtype=np.float64)
    clusters = max(1, min(int(clusters), len(positions)))
    rng = np.random.default_rng(seed)
    seeds = [positions[rng.integers(len(positions))]]
    nearest = ((positions - seeds[0]) ** 2).sum(axis=1)
    for _ in range(clusters - 1):
        total = nearest.sum()
        pick = rng.choice(len(positions), p=nearest / total) if total > 0 else rng.integers(len(positions))
        seeds.append(positions[pick])
        nearest = np.minimum(nearest, ((positions - positions[pick]) ** 2).sum(axis=1))
    centres = np.array(seeds)
    for _ in range(iterations):
        labels = _nearest(positions, centres)
        counts = np.bincount(labels, minlength=clusters)
        moved = np.stack([np.bincount(labels, positions[:, axis], minlength=clusters) for axis in range(2)], 1)
        filled = counts > 0
        moved[filled] /= counts[filled, None]
        moved[~filled] = centres[~filled]  # an emptied cluster keeps its centre
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres, _nearest(positions, centres)


def _nearest(positions: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of each position's nearest centre: |c|^2 - 2 x.c ranks them as |x - c|^2 does, without an (n, k, 2) array."""
    return ((centres**2).sum(axis=1)[None, :] - 2.0 * positions @ centres.T).argmin(axis=1)


def route_weights(points: int, fan_length: float, group_length: float) -> np.ndarray:
    """float32 (P-2, 6): each interior point as a mix of the six places of its edge's route.

    Columns: source, source group centre, source cluster centre, target
    cluster centre, target group centre, target. Over the first
    ``group_length`` of the way an edge leaves its source along +x and eases
    into its group's centre (a smoothstep, so it arrives along +x too); up to
    ``fan_length`` it curves from there into its cluster's centre; in the
    middle it runs straight from that centre to its target cluster's centre;
    the last ``fan_length`` mirrors the first. The curve into the cluster's
    centre is a cubic Hermite piece that meets the middle stretch with its
    slope, so the path has no kinks. The six weights of a point sum to 1.
    """
    t = _parameters(points)[1:-1].astype(np.float64)
    middle = 1.0 - 2.0 * fan_length
    weights = np.zeros((len(t), 6))
    for row, value in enumerate(t):
        if fan_length < value < 1.0 - fan_length:
            along = (value - fan_length) / middle
            weights[row] = (0.0, 0.0, 1.0 - along, along, 0.0, 0.0)
            continue
        near_source = value <= fan_length
        way = value if near_source else 1.0 - value  # distance from the nearer end
        if way <= group_length:
            u = way / group_length
            into_group = 3 * u**2 - 2 * u**3
            mix = (1.0 - into_group, into_group, 0.0, 0.0)  # (neuron, group, own centre, far centre)
        else:
            # Hermite basis from the group (u=0, along +x) to the centre (u=1, the route's slope).
            u = (way - group_length) / (fan_length - group_length)
            at_centre = -2 * u**3 + 3 * u**2
            slope = (u**3 - u**2) * (fan_length - group_length) / middle  # times (far centre - own centre)
            mix = (0.0, 2 * u**3 - 3 * u**2 + 1, at_centre - slope, slope)
        weights[row] = (*mix, 0.0, 0.0) if near_source else (0.0, 0.0, *mix[::-1])
    return weights.astype(np.float32)


def nested_clusters(
    positions: npt.ArrayLike, clusters: int, group_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (cluster centre, group centre) per position (n, 2): groups nested inside k-means clusters.

    Each cluster of n neurons is divided by k-means into round(n / ``group_size``)
    groups of neighbours. A cluster that would get a single group is not
    divided: each of its neurons is its own group and fans straight into the
    cluster's centre. ``group_size`` 0: no groups at all.
    """
    positions = np.asarray(positions, dtype=np.float64)
    centres, labels = kmeans(positions, clusters, seed)
    group = positions.copy()
    for cluster in range(len(centres)):
        members = np.flatnonzero(labels == cluster)
        groups = round(len(members) / group_size) if group_size else 0
        if groups > 1:
            group_centres, group_labels = kmeans(positions[members], groups, seed + 2 + cluster)
            group[members] = group_centres[group_labels]
    return centres[labels].astype(np.float32), group.astype(np.float32)


def _routed_lateral(
    source: np.ndarray,
    target: np.ndarray,
    weights: np.ndarray,
    source_clusters: int | None,
    target_clusters: int | None,
    strands: int,
    group_size: int,
    seed: int,
) -> np.ndarray:
    """float32 (E, P-2, 2): interior (y, z) of the edges routed through their groups' and clusters' centres."""
    sources, source_of = _distinct(np.ascontiguousarray(source[:, LATERAL]))
    targets, target_of = _distinct(np.ascontiguousarray(target[:, LATERAL]))
    k_source, k_target = default_clusters(len(sources), len(targets), strands)
    k_source = k_source if source_clusters is None else source_clusters
    k_target = k_target if target_clusters is None else target_clusters
    # Per distinct neuron, its cluster's centre and its group's centre.
    source_centre, source_group = nested_clusters(sources, k_source, group_size, seed)
    target_centre, target_group = nested_clusters(targets, k_target, group_size, seed + 1)
    weights = weights[None, :, :, None]
    lateral = np.empty((len(source), weights.shape[1], 2), dtype=np.float32)
    for start in range(0, len(source), CHUNK_EDGES):
        part = slice(start, start + CHUNK_EDGES)
        of_source, of_target = source_of[part], target_of[part]
        lateral[part] = (
            weights[:, :, 0] * source[part, None, LATERAL]
            + weights[:, :, 1] * source_group[of_source, None, :]
            + weights[:, :, 2] * source_centre[of_source, None, :]
            + weights[:, :, 3] * target_centre[of_target, None, :]
            + weights[:, :, 4] * target_group[of_target, None, :]
            + weights[:, :, 5] * target[part, None, LATERAL]
        )
    return lateral


def _gaussian_blur(grid: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of the last two axes (zero outside)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    kernel /= kernel.sum()
    for axis in (-1, -2):
        padded = np.pad(
            grid,
            [(0, 0)] * (grid.ndim - 1) + [(radius, radius)]
            if axis == -1
            else [(0, 0)] * (grid.ndim - 2) + [(radius, radius), (0, 0)],
        )
        size = grid.shape[axis]
        out = np.zeros_like(grid)
        for offset, weight in enumerate(kernel):
            window = padded[..., offset : offset + size] if axis == -1 else padded[..., offset : offset + size, :]
            out += weight * window
        grid = out
    return grid


def _kde_smooth(
    lateral: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    iterations: int,
    bandwidth: float,
    smoothing: int,
    cells: int = 96,
) -> None:
    """KDEEB steps in place on (E, S, 2) interior points, one density grid per slice of constant x.

    ``source`` and ``target`` (E, 2) are the fixed ends, needed by the smoothing.
    """
    edges, slices, _ = lateral.shape
    low = lateral.reshape(-1, 2).min(axis=0)
    high = lateral.reshape(-1, 2).max(axis=0)
    extent = float(max(high - low)) or 1.0
    cell = extent / (cells - 1)
    slice_index = np.arange(slices, dtype=np.int64)[None, :] * (cells * cells)
    sigma = bandwidth * extent
    for _ in range(iterations):
        density = np.zeros(slices * cells * cells, dtype=np.float32)
        flat = []
        for start in range(0, edges, CHUNK_EDGES):
            part = lateral[start : start + CHUNK_EDGES]
            cell_of = np.clip(np.rint((part - low) / cell), 0, cells - 1).astype(np.int64)
            index = slice_index + cell_of[..., 0] * cells + cell_of[..., 1]
            density += np.bincount(index.ravel(), minlength=density.size).astype(np.float32)
            flat.append(index)
        density = _gaussian_blur(density.reshape(slices, cells, cells), max(sigma / cell, 0.5))
        grad_y, grad_z = np.gradient(density, axis=(1, 2))
        norm = np.hypot(grad_y, grad_z)
        norm[norm == 0] = 1.0
        # KDEEB moves every point by a fixed step along the normalised gradient.
        step = np.float32(0.5 * sigma)
        move_y, move_z = (step * grad_y / norm).ravel(), (step * grad_z / norm).ravel()
        for number, start in enumerate(range(0, edges, CHUNK_EDGES)):
            part = lateral[start : start + CHUNK_EDGES]
            index = flat[number]
            part[..., 0] += move_y[index]
            part[..., 1] += move_z[index]
        sigma *= 0.5
        _smooth_along_edges(lateral, source, target, smoothing)


def _smooth_along_edges(lateral: np.ndarray, source: np.ndarray, target: np.ndarray, passes: int) -> None:
    """Laplacian smoothing of each edge's interior points in place, towards its fixed ends."""
    for _ in range(passes):
        for start in range(0, len(lateral), CHUNK_EDGES):
            part = lateral[start : start + CHUNK_EDGES]
            previous = np.concatenate([source[start : start + CHUNK_EDGES, None], part[:, :-1]], axis=1)
            following = np.concatenate([part[:, 1:], target[start : start + CHUNK_EDGES, None]], axis=1)
            part[:] = 0.5 * part + 0.25 * (previous + following)
