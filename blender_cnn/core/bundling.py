"""Edge bundling for dense-layer connections, in numpy: straight and bundled points per edge.

Layers sit along +X and a layer's neurons in the Y-Z plane of its x, so every
edge runs between two parallel planes. Each point of an edge keeps its x (its
parameter ``t`` along the layer pair) and bundling moves it only laterally,
in (y, z): the scene stores straight points and lateral offsets and blends
them with a keyframable strength.

The algorithm (see docs/bundling.md for why and the measurements):

1. **Rails** (the default, ``style="structure"``), for a pruned layer pair
   (only some weights drawn, the strongest per neuron) and for a complete
   one whose narrower layer has at least ``RAIL_MIN_NEURONS`` (16) neurons.
   The narrower layer's neurons are split into ``rails`` (4) bands of
   whole, neighbouring rows (counted in the order of z: ``rail_bands``). Every edge leaves its
   wide-side neuron, curves within ``rail_fan`` (0.2) of the way onto the
   rail of its narrow-side neuron's band, runs along it, and leaves it for
   its neuron just before the narrow layer. A grid's rail runs at its band's
   centre pushed out from the layer's centre (``rail_spread``, three times as
   far), so that rails stay apart in a picture (a column's rails are apart
   already). Edges share ink only with edges that reach the same band: a
   reader following a rail arrives at its own quarter of the neurons, where
   one trunk would lead to all of them.
2. **Nested cluster routing** for the remaining pairs (a complete pair into a
   layer of fewer than 16 neurons) and for every pair with
   ``style="funnel"``, the default before rails. Per layer pair, the source neurons and the
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
3. **Optional KDE smoothing**, off by default (kernel density estimation edge bundling, Hurter et al.
   2012, applied per slice of constant x): a few steps move each interior
   point up the gradient of the density of all points of its slice, then
   smooth each edge along its length. It draws neighbouring bundles together
   and rounds the corners left by the routing.

The routing is kept as data that scales (``route_edges``): per edge, the
ids of its groups and clusters and how far its clusters' centres are pushed
out from their groups', and per point how much of each place of the route it
takes. The centres are means of the neurons' positions, so
``routed_points`` (and the scene's node group, which does the same in
Geometry Nodes) recomputes every curve from wherever the neurons stand now:
moving or spreading a layer moves and spreads its bundles.

Pure numpy, float32, processed in chunks of edges so that millions fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
# Bundling styles: rails for wide or pruned layer pairs and the funnel for the rest, or the funnel everywhere.
STRUCTURE, FUNNEL = "structure", "funnel"
STYLES = (STRUCTURE, FUNNEL)
RAILS = 4
RAIL_SPREAD = 3.0
RAIL_FAN = 0.2
# A complete pair runs on rails too when its narrower layer has at least this many neurons (the width from which the
# funnel split it into two strands); a narrower one (an output layer of 10) keeps the funnel's one trunk.
RAIL_MIN_NEURONS = 16
# Kinds of route (rows of ``Routes.point_weights``): the funnel, rails at the target's side or at the source's.
FUNNEL_ROUTE, RAIL_AT_TARGET, RAIL_AT_SOURCE = 0, 1, 2

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


@dataclass(frozen=True)
class Routes:
    """How each edge is bundled, as data that holds wherever its neurons stand (``route_edges``).

    Per edge (``E``): int32 ids of its source group, source cluster, target
    cluster and target group (unique over all layer pairs of the call);
    float32 shares: 1 / the number of the pair's edges leaving its source
    (``source_share``) or reaching its target (``target_share``), so that a
    centre weighted by them is the mean of distinct neurons, however many edges
    each has; float32 ``spread``: a cluster's place is its centre pushed out
    from its group's centre by that much of their distance (0: the centre
    itself; a grid's rails: 2, three times as far); and its ``kind`` (int8, a row of
    ``point_weights``). ``point_weights`` (kinds, P, 3) float32: each point as
    a mix of its own neuron, its own group's centre and its own cluster's
    place, the far cluster's place taking the rest; "own" is the source's side
    for the points before the middle of the edge (t < 0.5) and the target's
    after it.
    """

    source_group: np.ndarray
    source_cluster: np.ndarray
    target_cluster: np.ndarray
    target_group: np.ndarray
    source_share: np.ndarray
    target_share: np.ndarray
    spread: np.ndarray
    kind: np.ndarray
    point_weights: np.ndarray

    @property
    def points_per_edge(self) -> int:
        return int(self.point_weights.shape[1])

    def curve_arrays(self) -> dict[str, np.ndarray]:
        """The per-edge arrays by the names the scene stores them under (``core/attributes.py``)."""
        return {
            "bundle_source_group": self.source_group,
            "bundle_source_cluster": self.source_cluster,
            "bundle_target_cluster": self.target_cluster,
            "bundle_target_group": self.target_group,
            "bundle_source_share": self.source_share,
            "bundle_target_share": self.target_share,
            "bundle_spread": self.spread,
        }

    def point_arrays(self) -> dict[str, np.ndarray]:
        """The per-point array the scene stores: ``bundle_route``, float32 (E * P, 3), edge after edge."""
        return {"bundle_route": np.ascontiguousarray(self.point_weights[self.kind].reshape(-1, 3))}


def bundle_edges(
    source_xyz: npt.ArrayLike,
    target_xyz: npt.ArrayLike,
    points_per_edge: int | None = None,
    *,
    style: str = STRUCTURE,
    rails: int = RAILS,
    rail_spread: float = RAIL_SPREAD,
    rail_fan: float = RAIL_FAN,
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
    - ``style``: ``"structure"`` (rails for a pair of which only some weights
      are drawn, and for a complete pair into a layer of at least
      ``RAIL_MIN_NEURONS``; the funnel below for the rest) or ``"funnel"``
      (the funnel for every pair, the default before rails).
    - ``rails``: rails of a pair on rails: bands of its narrower layer's rows
      (``rail_bands``, at most one per row). More rails keep more apart
      and take more ink.
    - ``rail_spread``: how far a rail runs from the narrow layer's centre, in
      units of its band centre's distance from it (1: at the centre); a
      narrow layer in one column keeps its rails at their centres.
    - ``rail_fan``: share of the way (0 < f < 0.5) over which an edge curves
      from its wide-side neuron onto its rail; it leaves the rail for its
      narrow-side neuron over half that (at least two steps between points).
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
      and add ink (docs/bundling.md); kept for experiments. The scene cannot
      draw them: it keeps only the routing (``route_edges``), which follows
      the neurons when the layout changes.
    - ``kde_bandwidth``: kernel width of the first step, as a share of the
      lateral extent of the layer pair; halved at every step.
    - ``smoothing``: passes of smoothing along each edge after each step.
    - ``seed``: seeds the k-means initialisation; the same inputs give the same points.
    - ``straight``: the result of ``straight_points`` for these edges, if the caller already has it.

    Whether a pair is complete, and the clusters and bands, depend only on
    the ends' positions (equal positions are one neuron), not on the weights:
    the weights change from epoch to epoch, the routes stay.

    Point 0 equals the source and point P-1 the target exactly; every point
    has the x of the matching straight point exactly; only y and z move.
    Without KDE steps it is ``routed_points(source, target, route_edges(...))``.
    """
    if kde_iterations < 0 or kde_bandwidth <= 0 or smoothing < 0:
        raise ValueError("kde_iterations and smoothing must be >= 0 and kde_bandwidth > 0")
    source, target, _ = _checked_edges(source_xyz, target_xyz, 2)
    routes = route_edges(
        source,
        target,
        points_per_edge,
        style=style,
        rails=rails,
        rail_spread=rail_spread,
        rail_fan=rail_fan,
        source_clusters=source_clusters,
        target_clusters=target_clusters,
        strands=strands,
        group_size=group_size,
        fan_length=fan_length,
        group_length=group_length,
        seed=seed,
    )
    bundled = routed_points(source, target, routes, straight=straight)
    if kde_iterations and routes.points_per_edge > 2:
        for edges in _layer_pairs(source, target):
            lateral = np.ascontiguousarray(bundled[edges, 1:-1, 1:3])
            _kde_smooth(
                lateral, source[edges][:, LATERAL], target[edges][:, LATERAL], kde_iterations, kde_bandwidth, smoothing
            )
            bundled[edges, 1:-1, 1:3] = lateral
    return bundled


def route_edges(
    source_xyz: npt.ArrayLike,
    target_xyz: npt.ArrayLike,
    points_per_edge: int | None = None,
    *,
    style: str = STRUCTURE,
    rails: int = RAILS,
    rail_spread: float = RAIL_SPREAD,
    rail_fan: float = RAIL_FAN,
    source_clusters: int | None = None,
    target_clusters: int | None = None,
    strands: int = STRANDS,
    group_size: int = GROUP_SIZE,
    fan_length: float = 0.15,
    group_length: float | None = None,
    seed: int = 0,
) -> Routes:
    """The ``Routes`` of the edges ``source_xyz[i] -> target_xyz[i]``: the bundling, before any position.

    The parameters are ``bundle_edges``'. Groups, clusters and rails are
    found on these positions; ``routed_points`` then draws the routes from
    these or any later positions of the same neurons. k-means does not change
    its choice when a layer's neurons are moved or scaled together (it takes
    them in the order of their values and gives a neuron halfway between two
    centres to the first), so routing the moved neurons anew gives the curves
    ``routed_points`` draws from the old routes.
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
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if rails < 1 or rail_spread <= 0 or not 0.0 < rail_fan < 0.5:
        raise ValueError(
            f"rails must be >= 1, rail_spread > 0 and rail_fan in (0, 0.5), got {rails!r}, {rail_spread!r}, {rail_fan!r}"
        )
    count = len(source)
    ids = {
        name: np.zeros(count, np.int32) for name in ("source_group", "source_cluster", "target_cluster", "target_group")
    }
    shares = {name: np.ones(count, np.float32) for name in ("source_share", "target_share")}
    spread = np.zeros(count, np.float32)
    kind = np.full(count, FUNNEL_ROUTE, np.int8)
    next_id = 0
    for edges in _layer_pairs(source, target) if count else []:
        sources, source_of = _distinct(np.ascontiguousarray(source[edges][:, LATERAL]))
        targets, target_of = _distinct(np.ascontiguousarray(target[edges][:, LATERAL]))
        for side, of in (("source", source_of), ("target", target_of)):
            shares[f"{side}_share"][edges] = 1.0 / np.bincount(of)[of]
        if style == STRUCTURE and _on_rails(len(edges), len(sources), len(targets)):
            at_target = len(targets) <= len(sources)
            narrow, narrow_of = (targets, target_of) if at_target else (sources, source_of)
            labels = rail_bands(narrow, rails)
            narrow_side, wide_side = ("target", "source") if at_target else ("source", "target")
            # The wide side's cluster and group are its whole layer; the narrow side's group is its whole layer,
            # the centre its rails spread from.
            ids[f"{wide_side}_cluster"][edges] = ids[f"{wide_side}_group"][edges] = next_id
            ids[f"{narrow_side}_group"][edges] = next_id + 1
            ids[f"{narrow_side}_cluster"][edges] = next_id + 2 + labels[narrow_of]
            next_id += 2 + int(labels.max()) + 1
            # Seen at an angle, the rails of a grid line up into fewer lines: pushed apart, they stay apart. A
            # column's rails are a line already, and as long as the column: spreading them only lengthens the way.
            spread[edges] = 0.0 if _collinear(narrow) else rail_spread - 1.0
            kind[edges] = RAIL_AT_TARGET if at_target else RAIL_AT_SOURCE
            continue
        k_source, k_target = default_clusters(len(sources), len(targets), strands)
        k_source = k_source if source_clusters is None else source_clusters
        k_target = k_target if target_clusters is None else target_clusters
        for side, neurons, of, clusters, side_seed in (
            ("source", sources, source_of, k_source, seed),
            ("target", targets, target_of, k_target, seed + 1),
        ):
            cluster, group = nested_labels(neurons, clusters, group_size, side_seed)
            ids[f"{side}_cluster"][edges] = next_id + cluster[of]
            next_id += int(cluster.max()) + 1
            ids[f"{side}_group"][edges] = next_id + group[of]
            next_id += int(group.max()) + 1
    funnel = _own_side_weights(route_weights(points, fan_length, group_length) if points > 2 else None, points)
    return Routes(
        **ids,
        **shares,
        spread=spread,
        kind=kind,
        point_weights=np.stack([funnel, *rail_weights(points, rail_fan)]),
    )


def _on_rails(edges: int, sources: int, targets: int) -> bool:
    """Whether the default style draws a layer pair of that many edges and distinct neurons on rails.

    A pruned pair (fewer edges than sources times targets) always does; a
    complete one when its narrower layer has at least ``RAIL_MIN_NEURONS``.
    """
    return edges < sources * targets or min(sources, targets) >= RAIL_MIN_NEURONS


def rail_bands(narrow: npt.ArrayLike, rails: int = RAILS) -> np.ndarray:
    """int rail of each (y, z) position of a narrow layer: ``rails`` bands of neighbouring rows, by z.

    The scene's views look across the layers with z up (the stage camera
    along the diagonal of x and y, the side view along y): a rail's offset in
    z moves it across the picture, one in y mostly along its own line. So the
    rails are bands of whole rows (equal z), the rows taken in the order of
    their z and cut where the count of neurons comes nearest to an even share
    (a layer in one row is cut along y instead). Integer counts and the order
    of values decide, so moving or scaling the layer does not change the
    bands, and a column of 32 splits into four of 8.
    """
    positions = np.asarray(narrow, dtype=np.float64)
    axis = 1 if len(positions) and np.ptp(positions[:, 1]) > 0 else 0
    _rows, row_of = np.unique(positions[:, axis], return_inverse=True)
    row_of = row_of.reshape(-1)
    counts = np.bincount(row_of)
    bands = max(1, min(int(rails), len(counts)))
    running = np.cumsum(counts)
    shares = np.arange(1, bands) * len(positions) / bands
    # The row after which each cut falls: the nearest running count to its share, each cut after the one before.
    cuts = np.abs(running[:-1, None] - shares[None, :]).argmin(axis=0) if bands > 1 else np.zeros(0, np.int64)
    for index in range(len(cuts)):
        low = cuts[index - 1] + 1 if index else 0
        cuts[index] = min(max(cuts[index], low), len(counts) - bands + index)
    return np.searchsorted(cuts, np.arange(len(counts)), side="left")[row_of]


def _collinear(lateral: np.ndarray) -> bool:
    """Whether the (y, z) positions lie on one line (a column of neurons), whatever the layer's scale."""
    if len(lateral) < 3:
        return True
    spread = np.linalg.svd(lateral - lateral.mean(axis=0), compute_uv=False)
    return bool(spread[1] <= 1e-6 * spread[0])


def rail_weights(points: int, fan: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 (P, 3) own-side weights of the two rail routes: rails at the target's side, and at the source's.

    From the wide side's neuron an edge curves onto the rail (the narrow
    side's cluster place) over ``fan`` of the way, a smoothstep, so it leaves
    along +x and joins the rail along it; it leaves the rail for its narrow-side
    neuron over half ``fan``, at least two steps between points. No group
    takes a share: a wide-side group would merge neighbours that feed
    different rails.
    """
    t = _parameters(points).astype(np.float64)
    narrow_fan = max(fan / 2, min(2.0 / (points - 1), fan)) if points > 1 else fan

    def onto(way: np.ndarray, length: float) -> np.ndarray:
        u = np.clip(way / length, 0.0, 1.0)
        return 3 * u**2 - 2 * u**3

    before = _before_middle(points)
    at_target = np.zeros((points, 3))
    at_source = np.zeros((points, 3))
    # Rails at the target's side: before the middle the source's neuron gives way to the far (target) cluster;
    # after it, the target's cluster gives way to the target itself.
    at_target[before, 0] = 1.0 - onto(t[before], fan)
    leaving = onto(1.0 - t[~before], narrow_fan)
    at_target[~before, 0], at_target[~before, 2] = 1.0 - leaving, leaving
    # Rails at the source's side mirror it.
    arriving = onto(t[before], narrow_fan)
    at_source[before, 0], at_source[before, 2] = 1.0 - arriving, arriving
    at_source[~before, 0] = 1.0 - onto(1.0 - t[~before], fan)
    for weights in (at_target, at_source):
        weights[[0, -1]] = (1.0, 0.0, 0.0)
    return at_target.astype(np.float32), at_source.astype(np.float32)


def _own_side_weights(interior: np.ndarray | None, points: int) -> np.ndarray:
    """float32 (P, 3) ``Routes.point_weights`` from ``route_weights``' (P-2, 6) of the interior points.

    Before the middle an interior point's target group and target neuron
    weigh nothing, after it its source neuron and source group: three
    weights and a side say it all. The ends are their own neurons.
    """
    weights = np.zeros((points, 3), np.float32)
    weights[[0, -1], 0] = 1.0
    if interior is not None:
        before = np.flatnonzero(_before_middle(points)[1:-1])
        after = np.flatnonzero(~_before_middle(points)[1:-1])
        if np.any(interior[before][:, 4:]) or np.any(interior[after][:, :2]):
            raise ValueError("route weights give the far side's group or neuron a share")
        weights[1 + before] = interior[before][:, :3]
        weights[1 + after] = interior[after][:, 5:2:-1]
    return weights


def _before_middle(points: int) -> np.ndarray:
    """bool (P,): the points whose own side is the source's, t < 0.5 (as the scene's node group decides)."""
    return 2 * np.arange(points) < points - 1


def routed_points(
    source_xyz: npt.ArrayLike, target_xyz: npt.ArrayLike, routes: Routes, straight: np.ndarray | None = None
) -> np.ndarray:
    """float32 (E, P, 3): the edges bundled along ``routes`` from where their neurons stand now.

    What the scene's node group computes: each group's and cluster's centre
    is the mean of its neurons' positions (each neuron once, by the shares), a
    cluster's place its centre pushed out from its group's by ``routes.spread``,
    each point the mix ``routes.point_weights`` gives of its own neuron, own
    group, own cluster and the far cluster, on the straight point's x. Ends
    equal the neurons exactly.
    """
    source, target, points = _checked_edges(source_xyz, target_xyz, routes.points_per_edge)
    if straight is None:
        straight = straight_points(source, target, points)
    elif straight.shape != (len(source), points, 3):
        raise ValueError(f"straight must have shape {(len(source), points, 3)}, got {straight.shape}")
    if len(routes.source_group) != len(source):
        raise ValueError(f"routes are for {len(routes.source_group)} edges, got {len(source)}")
    bundled = straight.copy()
    if points < 3 or len(source) == 0:
        return bundled
    spread = routes.spread[:, None]
    source_group = _centres(source[:, LATERAL], routes.source_group, routes.source_share)
    target_group = _centres(target[:, LATERAL], routes.target_group, routes.target_share)
    source_cluster = _centres(source[:, LATERAL], routes.source_cluster, routes.source_share)
    target_cluster = _centres(target[:, LATERAL], routes.target_cluster, routes.target_share)
    places = (
        source[:, LATERAL],
        source_group,
        source_cluster + spread * (source_cluster - source_group),
        target_cluster + spread * (target_cluster - target_group),
        target_group,
        target[:, LATERAL],
    )
    # Back to the six places' weights: own side first, the far cluster taking what the three leave.
    own = routes.point_weights[:, 1:-1].astype(np.float32)
    far = np.float32(1.0) - own.sum(axis=2, dtype=np.float32)
    weights = np.zeros((len(own), points - 2, 6), np.float32)
    before = _before_middle(points)[1:-1]
    weights[:, before, :3], weights[:, before, 3] = own[:, before], far[:, before]
    weights[:, ~before, 5:2:-1], weights[:, ~before, 2] = own[:, ~before], far[:, ~before]
    for start in range(0, len(source), CHUNK_EDGES):
        part = slice(start, start + CHUNK_EDGES)
        mine = weights[routes.kind[part]][..., None]  # (edges, P-2, 6, 1)
        lateral = mine[:, :, 0] * places[0][part, None, :]
        for column in range(1, 6):
            lateral = lateral + mine[:, :, column] * places[column][part, None, :]
        bundled[part, 1:-1, 1:3] = lateral
    return bundled


def _centres(lateral: np.ndarray, ids: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """float32 (E, 2): per edge, the share-weighted mean (y, z) of the edges of its id."""
    total = np.bincount(ids, weights=shares)
    mean = np.stack([np.bincount(ids, weights=shares * lateral[:, axis]) for axis in range(2)], axis=1)
    nonempty = total > 0
    mean[nonempty] /= total[nonempty, None]
    return mean[ids].astype(np.float32)


def _layer_pairs(source: np.ndarray, target: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the edges of each layer pair (same source x, same target x)."""
    pair = (source[:, 0].view(np.uint32).astype(np.uint64) << np.uint64(32)) | target[:, 0].view(np.uint32)
    keys, inverse = np.unique(pair, return_inverse=True)
    if len(keys) == 1:
        return [np.arange(len(source))]
    order = np.argsort(inverse, kind="stable")
    return np.split(order, np.cumsum(np.bincount(inverse))[:-1])


def _distinct(lateral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (y, z) rows, ordered by y then z, and per row of ``lateral`` the index of its distinct row.

    The order is what k-means' seeding picks from, so it must not change when
    the layout moves or spreads a layer: an order of the values does not,
    where one of their bit patterns (negative numbers, -0.0) would.
    """
    order = np.lexsort((lateral[:, 1], lateral[:, 0]))
    ordered = lateral[order]
    first = np.r_[True, np.any(ordered[1:] != ordered[:-1], axis=1)]
    inverse = np.empty(len(lateral), np.int64)
    inverse[order] = np.cumsum(first) - 1
    return ordered[first], inverse


def kmeans(
    positions: npt.ArrayLike, clusters: int, seed: int = 0, iterations: int = 25, restarts: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(centres, label per position): k-means with k-means++ seeding, deterministic for a seed.

    ``restarts`` > 1 keeps the tightest of that many runs (seeds ``seed``, ``seed + 1``, ...).
    """
    if restarts > 1:
        runs = [kmeans(positions, clusters, seed + run, iterations) for run in range(restarts)]
        points = np.asarray(positions, dtype=np.float64)
        return min(runs, key=lambda run: float(((points - run[0][run[1]]) ** 2).sum()))
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
    # A symmetric layout has neurons exactly between two centres; what rounding makes of them after the layer was
    # moved or spread must not change the clusters.
    tie = 1e-6 * float(np.ptp(positions, axis=0).max()) ** 2
    for _ in range(iterations):
        labels = _nearest(positions, centres, tie)
        counts = np.bincount(labels, minlength=clusters)
        moved = np.stack([np.bincount(labels, positions[:, axis], minlength=clusters) for axis in range(2)], 1)
        filled = counts > 0
        moved[filled] /= counts[filled, None]
        moved[~filled] = centres[~filled]  # an emptied cluster keeps its centre
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres, _nearest(positions, centres, tie)


def _nearest(positions: np.ndarray, centres: np.ndarray, tie: float = 0.0) -> np.ndarray:
    """Index of each position's nearest centre, the lowest of those within ``tie`` (squared distance) of it.

    |c|^2 - 2 x.c ranks the centres as |x - c|^2 does, without an (n, k, 2) array.
    """
    score = (centres**2).sum(axis=1)[None, :] - 2.0 * positions @ centres.T
    return (score <= score.min(axis=1, keepdims=True) + tie).argmax(axis=1)


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


def nested_labels(
    positions: npt.ArrayLike, clusters: int, group_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """int (cluster, group) label per position (n, 2): groups nested inside k-means clusters.

    Each cluster of n neurons is divided by k-means into round(n / ``group_size``)
    groups of neighbours. A cluster that would get a single group is not
    divided: each of its neurons is a group of its own and fans straight into
    the cluster's centre. ``group_size`` 0: no groups at all. Group labels
    are unique over all clusters, from 0.
    """
    positions = np.asarray(positions, dtype=np.float64)
    _centres_found, labels = kmeans(positions, clusters, seed)
    group = np.arange(len(positions))
    next_group = len(positions)
    for cluster in range(int(labels.max()) + 1 if len(labels) else 0):
        members = np.flatnonzero(labels == cluster)
        groups = round(len(members) / group_size) if group_size else 0
        if groups > 1:
            _group_centres, group_labels = kmeans(positions[members], groups, seed + 2 + cluster)
            group[members] = next_group + group_labels
            next_group += groups
    return labels, np.unique(group, return_inverse=True)[1].reshape(-1)


def nested_clusters(
    positions: npt.ArrayLike, clusters: int, group_size: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (cluster centre, group centre) per position (n, 2) of ``nested_labels``: each the mean of its members."""
    positions = np.asarray(positions, dtype=np.float64)
    shares = np.ones(len(positions))
    cluster, group = nested_labels(positions, clusters, group_size, seed)
    return _centres(positions, cluster, shares), _centres(positions, group, shares)


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
