"""Time edge bundling of dense connections, measure its clutter and ambiguity, compare datashader's hammer_bundle.

    .venv/bin/python scripts/bench_bundling.py [--hammer-limit 300] [--no-write] [--benchmarks FILE]
    .venv/bin/python scripts/bench_bundling.py --smoke [--benchmarks FILE]

Writes the section "## Edge bundling" of docs/BENCHMARKS.md (the other
sections are kept). Every timing runs in a child Python of its own. The figures:

(a) nn_vis's dense network 784-81-49-10 (67,963 edges; 784 as a 28x28 grid,
    81 as a 9x9 grid, 49 and 10 as columns): time to bundle all three layer pairs.
(b) one layer pair 8192 (grid) -> 256 (grid), 2,097,152 edges: time and peak
    memory of the routes the scene stores (``route_edges``), then Blender's hair curves.
(c) datashader's hammer_bundle on the edges of (a) and (b), and on the
    pruned pair 8192 -> 256 the CIFAR-10 scene draws (the strongest 78 inputs
    of each neuron of a random kernel), against ours, each timed cold (the
    first call in a fresh Python, after its imports) and warm (the second call
    in the same process); hammer_bundle also with ``use_dask=True``. A call is
    stopped after --hammer-limit seconds. hammer_bundle is 2D: it gets the side
    view's projection (x, z) of the neurons, and its result is measured in that
    same view: ink, distortion and ambiguity, ours with the default bundling
    and with the one before it (``style="funnel"``), in the same run.
(d) ink and distortion, straight vs bundled, for a demo-like stack
    (flatten 256 -> 32 -> 10) and a CIFAR-like one (flatten 8192 -> 256 -> 10),
    seen from the stage camera's direction and from the side.
(e) ink, distortion and ambiguity for scenes built by ``build_network``,
    through the stage camera: straight, the default bundling, the one before
    it (its routes written onto the same curves), and hammer_bundle given the
    picture itself (the neurons where the camera shows them), all measured in
    that picture.

Every case has weights (random kernels): ambiguity asks about the
connections that stand out (``drawing_metrics.strong_edges``), and in a
pruned case the weights choose which are drawn. The bundling itself uses
only the neurons' positions. datashader, dask and scikit-image
(requirements.txt) are used only here. ``--smoke`` runs the same path on
small stacks, (c) on the first and the pruned case only and (e) on the
digits network only, and writes into a temporary folder.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from bench import (
    add_output_arguments,
    benchmarks_file,
    format_bytes,
    format_seconds,
    measured_line,
    note_load,
    package_version,
    write_section,
)

from blender_cnn.core.bundling import FUNNEL, bundle_edges, default_points_per_edge, route_edges, straight_points
from blender_cnn.core.connections import AUTO_MAX_EDGES, STRONGEST_PER_NEURON, EdgeSelection, selected_weights
from blender_cnn.core.drawing_metrics import ambiguity, distortion, drawing_bounds, ink, project, strong_edges
from blender_cnn.core.layout import display_shape, neuron_positions, suggested_spacing

SECTION = "Edge bundling"
NN_VIS = (784, 81, 49, 10)
DEMO = (256, 32, 10)  # the digits demo's flatten -> dense 32 -> output
CIFAR = (8192, 256, 10)
VIEWS = {"stage (1, 1, -0.4)": (1.0, 1.0, -0.4), "side (0, 1, 0)": (0.0, 1.0, 0.0)}
SIDE = (0.0, 1.0, 0.0)
RESOLUTIONS = (1024, 512)  # pixels along the longer side of the frame
# "ambiguity": at most this share of the ambiguity of the bundling before rails (the funnel), where it shows any.
GOALS = {
    "ink": 0.6,
    "distortion": 1.3,
    "ambiguity": 0.75,
    "large_seconds": 30.0,
    "large_bytes": 4e9,
    "nn_vis_seconds": 3.0,
}
# The pruned pair of (c): the CIFAR-10 scene's flatten -> dense 256, the strongest 78 inputs per neuron (AUTO_MAX_EDGES).
PRUNED = (8192, 256)
PRUNED_PER_NEURON = AUTO_MAX_EDGES // PRUNED[1]
# The synthetic scenes of (e): name -> kind (``scene_child``).
SCENES = {"digits demo CNN (16x16x1)": "digits", "CIFAR-10 greyscale CNN (32x32x1)": "cifar"}
SCENE_WIDTHS = (1280, 640)  # render widths of the 16:9 frame
# The bundled drawings of a scene: the default, and the bundling before rails (every pair through one funnel).
LOOKS = ("bundled", "funnel")
# What each run measures: the nn_vis-like stack, the large pair, the cases hammer_bundle runs on, the clutter
# stacks and the scenes.
FULL = {
    "nn_vis": NN_VIS,
    "large": CIFAR[:2],
    "pruned": PRUNED,
    "hammer_cases": ("nn_vis", "large", "pruned"),
    "stacks": {"digits demo": DEMO, "CIFAR-like": CIFAR},
    "scenes": SCENES,
}
SMOKE = {
    "nn_vis": (64, 16, 9, 4),
    "large": (256, 16),
    "pruned": (1024, 64),
    "hammer_cases": ("nn_vis", "pruned"),
    "stacks": {"digits demo": DEMO, "CIFAR-like": (512, 16, 10)},
    "scenes": {"digits demo CNN (16x16x1)": "digits"},
}


def spacing(sizes):
    """The Layer Spacing the scene would choose for these layers (suggested_spacing)."""
    return float(suggested_spacing([(size,) for size in sizes]))


def dense_stack(sizes, per_neuron=0):
    """(source_xyz, target_xyz, source index, target index, weight) of the weights of a dense stack of random kernels,
    and every neuron's place.

    Every weight, or (``per_neuron``) the strongest that many inputs of each neuron: what the scene draws of a
    layer of more than AUTO_MAX_EDGES weights.
    """
    gap = spacing(sizes)
    positions = [neuron_positions(size, index * gap) for index, size in enumerate(sizes)]
    offsets = np.cumsum((0,) + sizes[:-1])
    rng = np.random.default_rng(0)
    parts = []
    for index, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        kernel = rng.standard_normal((inputs, outputs)).astype(np.float32)
        if per_neuron:
            source, target = selected_weights(kernel, EdgeSelection(STRONGEST_PER_NEURON, per_neuron=per_neuron))
        else:
            source, target = (
                part.ravel() for part in np.meshgrid(np.arange(inputs), np.arange(outputs), indexing="ij")
            )
        parts.append(
            (
                positions[index][source],
                positions[index + 1][target],
                offsets[index] + source,
                offsets[index + 1] + target,
                kernel[source, target],
            )
        )
    return tuple(np.concatenate(column) for column in zip(*parts)), np.concatenate(positions)


def case_sizes(config, key):
    """(sizes, inputs kept per neuron: 0 for all) of a case of ``config``."""
    if key == "pruned":
        return config["pruned"], PRUNED_PER_NEURON if config["pruned"] == PRUNED else 16
    return config[key], 0


def side_quality(drawn, straight, source, target, weight):
    """Ink (over the straight drawing's), distortion and ambiguity of a drawing in the side view, RESOLUTIONS[0].

    The nodes and layer pairs are named by the edges' indices and the straight drawing's ends, so a drawing whose
    paths end a little off their neurons (hammer_bundle's) is measured on the same graph; ambiguity asks about the
    connections that stand out by ``weight``.
    """
    frame = drawing_bounds(straight, SIDE)
    resolution = RESOLUTIONS[0]
    pairs = np.unique(np.stack([straight[:, 0, 0], straight[:, -1, 0]], axis=1), axis=0, return_inverse=True)[1]
    return {
        "ink": ink(drawn, SIDE, resolution, frame) / ink(straight, SIDE, resolution, frame),
        "distortion": distortion(drawn),
        "ambiguity": ambiguity(
            drawn, SIDE, resolution, frame, sources=source, targets=target, pairs=np.ravel(pairs), weights=weight
        ),
    }


def sizes_text(sizes):
    return ",".join(map(str, sizes))


def parse_sizes(text):
    return tuple(int(size) for size in text.split(","))


def emit(**values):
    """Print one JSON line for the parent, at once: it stops a call that prints nothing for too long."""
    print(json.dumps(values), flush=True)


def child(mode, *args, limit=None):
    """Run this script in ``mode`` in a child Python; stop it when a call prints nothing for ``limit`` seconds.

    The child prints JSON lines (``emit``) as it goes; the clock of ``limit`` restarts at each. Returns
    ``(one dict of every JSON line's values, True if it was stopped, peak resident bytes)``.
    """
    note_load()
    process = subprocess.Popen([sys.executable, __file__, mode, *map(str, args)], stdout=subprocess.PIPE, text=True)
    values, last = {}, [time.perf_counter()]

    def read():
        for line in process.stdout:
            if line.startswith("{"):
                values.update(json.loads(line))
                last[0] = time.perf_counter()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stopped = False
    while True:
        # wait4 gives this child's own peak memory (RUSAGE_CHILDREN would be the largest of all so far).
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if limit is not None and time.perf_counter() - last[0] > limit:
            process.kill()
            _, status, usage = os.wait4(process.pid, 0)
            stopped = True
            break
        time.sleep(0.05)
    reader.join()
    process.stdout.close()
    if not stopped and os.waitstatus_to_exitcode(status):
        raise RuntimeError(
            f"{mode} {' '.join(map(str, args))} failed with exit code {os.waitstatus_to_exitcode(status)}"
        )
    return values, stopped, usage.ru_maxrss * 1024


def large_pair_child(sizes):
    """(b): the bundling routes of one large layer pair, as the scene stores them."""
    sources, targets = parse_sizes(sizes)
    (source, target, _, _, _), _ = dense_stack((sources, targets))
    start = time.perf_counter()
    points = default_points_per_edge(len(source))
    routes = route_edges(source, target, points)
    route = routes.point_arrays()["bundle_route"]
    seconds = time.perf_counter() - start
    # Then Blender's hair curves, as the scene writes them: one curve per edge with its route, the route's
    # weights per point (the node tree places the points from the neurons and the keyframable bundling strength).
    import bpy  # noqa: F401 (Blender as a module; imported here so the timing above excludes it)

    from blender_cnn.scene.geometry_data import hair_curves

    start = time.perf_counter()
    count = len(source)
    curve_arrays = {
        "source_cell": np.arange(count, dtype=np.int32) % sources,
        "target_cell": sources + np.arange(count, dtype=np.int32) // sources,
        "weight": np.zeros(count, np.float32),
        "weight_max": np.ones(count, np.float32),
        **routes.curve_arrays(),
    }
    curves = hair_curves("bench connections", count, points, curve_arrays, {"bundle_route": route})
    curve_seconds = time.perf_counter() - start
    emit(
        seconds=seconds,
        curve_seconds=curve_seconds,
        edges=count,
        points=points,
        curve_points=len(curves.points),
        bytes=route.nbytes + sum(array.nbytes for array in routes.curve_arrays().values()),
    )


def ours_child(sizes, per_neuron):
    """(c), ours: straight points and bundling of a dense stack, cold then warm, and its side-view clutter, with the
    default bundling and the one before it (``funnel_*``)."""
    (source_xyz, target_xyz, source, target, weight), _ = dense_stack(parse_sizes(sizes), int(per_neuron))
    points = default_points_per_edge(len(source_xyz))
    emit(edges=len(source_xyz), points=points)
    for run in ("cold", "warm"):
        start = time.perf_counter()
        straight = straight_points(source_xyz, target_xyz, points)
        bundled = bundle_edges(source_xyz, target_xyz, points, straight=straight)
        emit(**{run: time.perf_counter() - start})
    emit(**side_quality(bundled, straight, source, target, weight))
    del bundled
    funnel = bundle_edges(source_xyz, target_xyz, points, style=FUNNEL, straight=straight)
    emit(**{f"funnel_{name}": value for name, value in side_quality(funnel, straight, source, target, weight).items()})


# The scenes' pictures are measured in the camera's own coordinates: clip x, y (z 0), drawn as they are.
PICTURE = np.eye(4)


def in_picture(points, projection):
    """float32 (E, P, 3): polylines as the camera shows them, (clip x, clip y, 0)."""
    screen = project(points, projection)
    return np.concatenate([screen, np.zeros((*screen.shape[:2], 1))], axis=2).astype(np.float32)


def picture_quality(drawn, straight, names, frame):
    """Ink over the straight drawing's and ambiguity at each of SCENE_WIDTHS, and distortion, of a drawing in the
    picture (``in_picture``); ``names``: sources, targets, pairs and weights per edge (``perceived_neighbours``)."""
    result = {"picture_distortion": distortion(drawn)}
    for width in SCENE_WIDTHS:
        result[f"ink_{width}"] = ink(drawn, PICTURE, width, frame) / ink(straight, PICTURE, width, frame)
        result[f"ambiguity_{width}"] = ambiguity(drawn, PICTURE, width, frame, **names)
    return result


def scene_child(kind, work):
    """(e): a synthetic network built as the scene builds it (default edge selection), its evaluated curves
    straight, bundled and bundled as before rails, seen from the stage camera; the straight picture and the
    curves' neurons and weights go to ``work``/``kind``.picture.npz for hammer_bundle."""
    import bpy
    from bench_scene import cifar_greyscale_layers, digits_demo_layers, write_synthetic_bundle
    from render_bundling import connection_values, draw_routes

    from blender_cnn.scene.drawn import drawn_curves
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import camera_projection, configure_render, set_up_stage

    layers = {
        "digits": ((16, 16, 1), digits_demo_layers()),
        "cifar": ((32, 32, 1), cifar_greyscale_layers()),
    }[kind]
    path = write_synthetic_bundle(Path(work) / f"{kind}.bcnn.npz", kind, *layers)
    bpy.ops.wm.read_homefile(app_template="")
    network = build_network(path)
    camera = set_up_stage(network)
    configure_render(bpy.context.scene, "CYCLES", 1280, 720, 32)
    drawn = {}
    for look, strength in (("straight", 0.0), ("bundled", 1.0)):
        set_network_input(network, "Bundling Strength", strength)
        drawn[look] = drawn_curves(network)
    values = connection_values(network)
    # The bundling before rails, drawn by the scene from its routes on the same curves.
    ends = drawn["straight"]
    draw_routes(network, route_edges(ends[:, 0], ends[:, -1], ends.shape[1], style=FUNNEL))
    drawn["funnel"] = drawn_curves(network)
    projection = np.array(camera_projection(camera))
    # The camera's whole frame, at the render's pixels (camera_projection makes them square).
    frame = (-1.0, -720 / 1280, 1.0, 720 / 1280)
    pairs = np.unique(np.stack([ends[:, 0, 0], ends[:, -1, 0]], axis=1), axis=0, return_inverse=True)[1].ravel()
    names = {"sources": values["source_cell"], "targets": values["target_cell"], "pairs": pairs}
    names["weights"] = values["weight"]
    straight = in_picture(drawn["straight"], projection)
    np.savez(Path(work) / f"{kind}.picture.npz", straight=straight, frame=np.array(frame), **names)
    result = {
        "edges": len(drawn["bundled"]),
        "total": sum(entry["total"] for entry in network["blender_cnn_connections"]),
        "strong": int(strong_edges(values["weight"], pairs).sum()),
        "distortion": [distortion(drawn[look]) for look in LOOKS],
        **{f"straight_ink_{width}": ink(straight, PICTURE, width, frame) for width in SCENE_WIDTHS},
    }
    for look in ("straight", *LOOKS):
        result[look] = picture_quality(in_picture(drawn[look], projection), straight, names, frame)
    emit(**result)


def hammer_scene_child(picture):
    """(e): datashader's hammer_bundle on a scene's picture (``scene_child``'s file): the neurons where the camera
    shows them, the curves' pairs of neurons; measured in that picture as ours are."""
    start = time.perf_counter()
    import pandas as pd
    from datashader.bundling import hammer_bundle

    emit(imported=time.perf_counter() - start)
    saved = np.load(picture)
    straight, frame = saved["straight"], tuple(saved["frame"])
    names = {key: saved[key] for key in ("sources", "targets", "pairs", "weights")}
    cells, index = np.unique(np.concatenate([names["sources"], names["targets"]]), return_inverse=True)
    index = index.ravel()
    where = np.zeros((len(cells), 2))
    where[index] = np.concatenate([straight[:, 0, :2], straight[:, -1, :2]])
    nodes = pd.DataFrame({"x": where[:, 0], "y": where[:, 1]})
    edges = pd.DataFrame({"source": index[: len(straight)], "target": index[len(straight) :]})
    start = time.perf_counter()
    paths = hammer_bundle(nodes, edges)
    emit(seconds=time.perf_counter() - start)
    polylines = hammer_polylines(paths[["x", "y"]].to_numpy(), plane=(0, 1))
    emit(**picture_quality(polylines, straight, names, frame))


def hammer_child(sizes, per_neuron, use_dask):
    """(c): datashader's hammer_bundle on the side view's projection of a dense stack, cold then warm."""
    start = time.perf_counter()
    import datashader
    import pandas as pd
    from datashader.bundling import hammer_bundle

    emit(imported=time.perf_counter() - start, version=datashader.__version__)
    (source_xyz, target_xyz, source, target, weight), positions = dense_stack(parse_sizes(sizes), int(per_neuron))
    nodes = pd.DataFrame({"x": positions[:, 0].astype(np.float64), "y": positions[:, 2].astype(np.float64)})
    edges = pd.DataFrame({"source": source, "target": target})
    for run in ("cold", "warm"):
        start = time.perf_counter()
        paths = hammer_bundle(nodes, edges, use_dask=use_dask == "dask")
        emit(**{run: time.perf_counter() - start})
    polylines = hammer_polylines(paths[["x", "y"]].to_numpy())
    emit(**side_quality(polylines, straight_points(source_xyz, target_xyz, 2), source, target, weight))


def hammer_polylines(xy, plane=(0, 2)):
    """hammer_bundle's NaN-separated paths as (E, P, 3) points, padded with their last point: its x and y as the
    ``plane``'s two coordinates (the side view's x and z; the picture's x and y), the third 0.

    A repeated last point adds neither ink nor length.
    """
    breaks = np.flatnonzero(np.isnan(xy[:, 0]))
    starts = np.r_[0, breaks + 1][: len(breaks)]
    lengths = breaks - starts
    longest = int(lengths.max())
    index = starts[:, None] + np.minimum(np.arange(longest)[None, :], lengths[:, None] - 1)
    polylines = np.zeros((len(starts), longest, 3), dtype=np.float32)
    polylines[..., plane[0]], polylines[..., plane[1]] = xy[index, 0], xy[index, 1]
    return polylines


def clutter(sizes):
    """(d): {(view, resolution): (straight ink, bundled ink)} and the two distortions of a dense stack."""
    (source, target, _, _, _), _ = dense_stack(sizes)
    points = default_points_per_edge(len(source))
    straight = straight_points(source, target, points)
    bundled = bundle_edges(source, target, points, straight=straight)
    inks = {}
    for view_name, view in VIEWS.items():
        frame = drawing_bounds(straight, view)
        for res in RESOLUTIONS:
            inks[view_name, res] = (ink(straight, view, res, frame), ink(bundled, view, res, frame))
    return {
        "edges": len(source),
        "points": points,
        "inks": inks,
        "distortion": (distortion(straight), distortion(bundled)),
    }


def met(ok):
    return "**met**" if ok else "**NOT met**"


def times_ratio(theirs, ours):
    """theirs / ours as "164x" (two digits below 10: "1.3x")."""
    value = theirs / ours
    return f"{value:.0f}x" if value >= 10 else f"{value:.2g}x"


def case_label(key, sizes):
    """ "nn_vis dense 784-81-49-10", "8192 grid -> 256 grid", "8192 grid -> 256 grid, strongest 78 per neuron"."""
    if key == "nn_vis":
        return ("nn_vis dense " if tuple(sizes) == NN_VIS else "dense ") + "-".join(map(str, sizes))
    label = " -> ".join(f"{size} {'column' if display_shape((size,))[1] == 1 else 'grid'}" for size in sizes)
    if key == "pruned":
        label += f", strongest {case_sizes({'pruned': tuple(sizes)}, key)[1]} per neuron"
    return label


def hammer_cells(outcome, run, ours, limit):
    """The time and ratio cells of one hammer_bundle run (``run``: "cold" or "warm")."""
    values, stopped, _ = outcome
    if run in values:
        return f"{format_seconds(values[run])} | {times_ratio(values[run], ours[run])}"
    if stopped and (run == "cold" or "cold" in values):
        return f"did not finish in {limit:g} s (stopped) | over {times_ratio(limit, ours[run])}"
    return "not run (the cold call did not finish) | "


def quality_value(values, name):
    """A child's "ink" or "ambiguity" (2 decimals) or "distortion" (3), or "-" when it did not get that far."""
    return f"{values[name]:.{3 if name.endswith('distortion') else 2}f}" if name in values else "-"


def goals_met(ink_ratio, bent, confused, before):
    """Whether a bundled drawing meets the goals: ink, distortion, and ambiguity well under the funnel's, if any."""
    clear = confused <= GOALS["ambiguity"] * before if before > 0 else confused == 0
    return ink_ratio <= GOALS["ink"] and bent < GOALS["distortion"] and clear


def picture_goal(values, width, before, bent=None):
    """ "**met**" or "**NOT met**" for one drawing of a scene at one width (ambiguity against ``before``'s), or "-".

    ``bent``: the distortion to hold to the goal; default the one in the picture.
    """
    if f"ambiguity_{width}" not in values:
        return "-"
    bent = values["picture_distortion"] if bent is None else bent
    return met(goals_met(values[f"ink_{width}"], bent, values[f"ambiguity_{width}"], before))


def report(results, stacks, scenes):
    config, limit = results["config"], results["hammer_limit"]
    nn_vis, large_sizes = config["nn_vis"], config["large"]
    spaced = [nn_vis, config["pruned"], *config["stacks"].values()]
    lines = [
        f"## {SECTION}",
        "",
        *measured_line("bench_bundling.py", ("numpy", "bpy", "datashader", "dask")),
        "Algorithm and parameters: docs/bundling.md (defaults throughout). Layer Spacing as the scene",
        "suggests it (`suggested_spacing`): "
        + ", ".join(f"{'-'.join(map(str, sizes))}: {spacing(sizes):g}" for sizes in spaced)
        + ".",
        "",
        "### Time and memory",
        "",
        "| case | edges | points per edge | time | peak memory | goal |",
        "|---|---:|---:|---:|---:|---|",
    ]
    ours = results["ours"]["nn_vis"][0]
    lines.append(
        f"| {case_label('nn_vis', nn_vis)}, all {len(nn_vis) - 1} pairs (straight + bundled), the first call "
        f"in a fresh process (the second: {format_seconds(ours['warm'])}) | {ours['edges']:,} | "
        f"{ours['points']} | {format_seconds(ours['cold'])} | | under {GOALS['nn_vis_seconds']:g} s: "
        f"{met(ours['cold'] < GOALS['nn_vis_seconds'])} |"
    )
    large, _, peak = results["large"]
    total = large["seconds"] + large["curve_seconds"]
    lines.append(
        f"| {case_label('large', large_sizes)}: the routes the scene stores (`route_edges`) "
        f"{format_seconds(large['seconds'])}, then Blender hair curves with them "
        f"{format_seconds(large['curve_seconds'])} (child process) | {large['edges']:,} | "
        f"{large['points']} | {format_seconds(total)} | {format_bytes(peak)} | under "
        f"{GOALS['large_seconds']:g} s: {met(total < GOALS['large_seconds'])}; under "
        f"{GOALS['large_bytes'] / 1e9:g} GB: {met(peak < GOALS['large_bytes'])} |"
    )
    hammer = results["hammer"]
    started = [values for values, _, _ in hammer.values() if "version" in values]
    version = started[0]["version"] if started else package_version("datashader")
    imported = (
        f" Importing `datashader.bundling` took {format_seconds(max(v['imported'] for v in started))} "
        "(numba compiles its functions), counted in neither."
        if started
        else ""
    )
    lines += [
        "",
        "Peak memory is the child's maximum resident set (ru_maxrss), Python, numpy and bpy included.",
        "",
        "### datashader hammer_bundle, same edges",
        "",
        f"hammer_bundle (datashader {version}, default parameters) is 2D: it bundles the side view's projection",
        "(x, z) of the neurons, and its ink, distortion and ambiguity are measured in that view (ink against",
        "the straight drawing). Ours is straight points + bundling (`straight_points`, `bundle_edges`) of the",
        'same edges; *before rails* is ours with `style="funnel"`, the default before this one, in the same run.',
        f"The pruned case is the pair the CIFAR-10 scene draws: the strongest {PRUNED_PER_NEURON} inputs of each of",
        "the 256 neurons (of a random kernel). Every figure comes",
        "from one run of this script, each side in a fresh Python of its own: *cold* is the first call after",
        "the imports, *warm* the second call in the same process." + imported,
        "`use_dask=True` makes hammer_bundle split its work into dask tasks. A call still running after",
        f"{limit:g} s is stopped. *ratio*: hammer_bundle's time over ours, cold over cold and warm over warm.",
        "",
        "| case | edges | call | ours | hammer_bundle | ratio | hammer_bundle, use_dask=True | ratio |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    quality = [
        f"Side view, {RESOLUTIONS[0]} px; each cell: ours / before rails / hammer_bundle / use_dask. Ambiguity",
        "(docs/bundling.md): the mean share of a neuron's non-neighbours the drawing shows as connected, among",
        "the connections that stand out (|weight| at least half the largest of their layer pair). From the side a",
        "grid's neurons stand behind each other: no drawing can tell those of one row apart.",
        "",
        "| case | ink / straight | distortion | ambiguity |",
        "|---|---:|---:|---:|",
    ]
    for key in config["hammer_cases"]:
        label, ours = case_label(key, case_sizes(config, key)[0]), results["ours"][key][0]
        plain, dask = hammer[key, "plain"], hammer[key, "dask"]
        for run in ("cold", "warm"):
            lines.append(
                f"| {label} | {ours['edges']:,} | {run} | {format_seconds(ours[run])} "
                f"| {hammer_cells(plain, run, ours, limit)} | {hammer_cells(dask, run, ours, limit)} |"
            )
        quality.append(
            f"| {label} | "
            + " | ".join(
                " / ".join(
                    quality_value(values, prefix + name)
                    for values, prefix in ((ours, ""), (ours, "funnel_"), (plain[0], ""), (dask[0], ""))
                )
                for name in ("ink", "distortion", "ambiguity")
            )
            + " |"
        )
    lines += ["", *quality]
    lines += [
        "",
        "### Clutter: ink and distortion",
        "",
        "Ink: share of the frame's pixels covered when every edge is drawn one pixel wide, orthographic",
        "view; the frame is the straight drawing's bounding box, pixels square, the resolution the",
        f"frame's longer side. Goal at full strength: bundled ink at most {GOALS['ink']:.0%} of straight, mean",
        f"distortion (path length / straight length) under {GOALS['distortion']:g}.",
        "",
        "| stack | edges | view | resolution | straight ink | bundled ink | ratio | distortion | goal |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, numbers in stacks:
        bent = numbers["distortion"][1]
        for (view, res), (plain, bundled) in numbers["inks"].items():
            ratio = bundled / plain
            lines.append(
                f"| {name} | {numbers['edges']:,} | {view} | {res} | {plain:.3f} | {bundled:.3f} | "
                f"{ratio:.2f} | {bent:.3f} | {met(ratio <= GOALS['ink'] and bent < GOALS['distortion'])} |"
            )
    lines += [
        "",
        "### The scenes as built",
        "",
        "The goal's own terms: each network built by `build_network` with its default edge selection (every",
        f"weight of a layer up to {AUTO_MAX_EDGES:,}, else the strongest per neuron within that many), its evaluated",
        "curves at Bundling Strength 0 and 1, drawn through the stage camera's perspective projection",
        "into its whole 16:9 frame at the render's pixels. Synthetic bundles (random weights) of the real shapes.",
        '*Before*: the same curves bundled as by the default before rails (`style="funnel"`: every pair through',
        "one funnel, a 256-neuron layer's connections in two strands), drawn by the scene from those routes in",
        "the same run. *hammer_bundle*: datashader's, default parameters, given the picture itself (every",
        "neuron where the camera shows it, every drawn curve's pair of neurons). Measured in the picture: ink",
        "over the straight drawing's, ambiguity (docs/bundling.md) of the connections that stand out (|weight| at",
        "least half the largest of their layer pair, drawn at least 60% as thick as the strongest), and the",
        "distortion of the curves as drawn there; ours also in 3D, where they are drawn (the picture shortens",
        "x, the way between the layers, and so lengthens every detour across it).",
        f"Goal, for ours and for hammer_bundle alike: ink at most {GOALS['ink']:.0%} of straight, distortion under",
        f"{GOALS['distortion']:g} (ours: of the curves in 3D; hammer_bundle, which has no 3D: in the picture),",
        f"ambiguity at most {GOALS['ambiguity']:.0%} of the one before.",
        "",
        "| network | curves drawn (of weights; standing out) | render | straight ink | ink / straight: ours / before "
        "/ hammer_bundle | distortion, picture: ours / before / hammer_bundle (3D: ours / before) | ambiguity: "
        "straight / ours / before / hammer_bundle | goal: ours / hammer_bundle |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, numbers in scenes:
        hammer = numbers.get("hammer", {})
        drawings = (numbers["bundled"], numbers["funnel"], hammer)

        def cell(values, key, digits=2):
            return f"{values[key]:.{digits}f}" if key in values else "-"

        bent = " / ".join(cell(values, "picture_distortion", 3) for values in drawings)
        bent_3d = " / ".join(f"{value:.3f}" for value in numbers["distortion"])
        for width in SCENE_WIDTHS:
            ink_key, confused_key = f"ink_{width}", f"ambiguity_{width}"
            before = numbers["funnel"][confused_key]
            lines.append(
                f"| {name} | {numbers['edges']:,} ({numbers['total']:,}; {numbers['strong']:,}) | "
                f"{width}x{width * 9 // 16} | {numbers[f'straight_ink_{width}']:.3f} | "
                + " / ".join(cell(values, ink_key) for values in drawings)
                + f" | {bent} ({bent_3d}) | "
                + " / ".join(cell(values, confused_key) for values in (numbers["straight"], *drawings))
                + f" | {picture_goal(numbers['bundled'], width, before, numbers['distortion'][0])} / "
                + f"{picture_goal(hammer, width, before)} |"
            )
    if any("hammer_stopped" in numbers for _, numbers in scenes):
        lines += ["", "hammer_bundle was stopped on: " + ", ".join(n for n, v in scenes if "hammer_stopped" in v)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--hammer-limit",
        type=float,
        default=300.0,
        help="seconds one hammer_bundle call may take before its process is stopped",
    )
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    results = {"config": config, "hammer_limit": args.hammer_limit, "ours": {}, "hammer": {}}

    results["large"] = child("--child-large", sizes_text(config["large"]))
    print(f"{case_label('large', config['large'])}:", results["large"], flush=True)
    for key in dict.fromkeys(("nn_vis", *config["hammer_cases"])):
        sizes, per_neuron = case_sizes(config, key)
        results["ours"][key] = child("--child-ours", sizes_text(sizes), per_neuron)
        print(f"ours, {case_label(key, sizes)}:", results["ours"][key], flush=True)
    for key in config["hammer_cases"]:
        sizes, per_neuron = case_sizes(config, key)
        for variant in ("plain", "dask"):
            results["hammer"][key, variant] = child(
                "--child-hammer", sizes_text(sizes), per_neuron, variant, limit=args.hammer_limit
            )
            print(f"hammer_bundle ({variant}), {case_label(key, sizes)}:", results["hammer"][key, variant], flush=True)

    stacks = []
    for name, sizes in config["stacks"].items():
        stacks.append((f"{name} {' -> '.join(map(str, sizes))}", clutter(sizes)))
        print(stacks[-1][0], stacks[-1][1], flush=True)

    scenes = []
    with tempfile.TemporaryDirectory() as work:
        for name, kind in config["scenes"].items():
            numbers = child("--child-scene", kind, work)[0]
            hammer, stopped, _ = child(
                "--child-hammer-scene", Path(work) / f"{kind}.picture.npz", limit=args.hammer_limit
            )
            numbers["hammer"] = hammer
            if stopped:
                numbers["hammer_stopped"] = True
            scenes.append((name, numbers))
            print(name, numbers, flush=True)

    with benchmarks_file(args) as path:
        write_section(path, SECTION, report(results, stacks, scenes))


if __name__ == "__main__":
    children = {
        "--child-large": large_pair_child,
        "--child-ours": ours_child,
        "--child-hammer": hammer_child,
        "--child-scene": scene_child,
        "--child-hammer-scene": hammer_scene_child,
    }
    if len(sys.argv) > 1 and sys.argv[1] in children:
        # Keep the user's own add-ons and settings out of the children that import bpy.
        os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
        children[sys.argv[1]](*sys.argv[2:])
    else:
        main()
