"""Time edge bundling of dense connections, measure its clutter, compare datashader's hammer_bundle.

    .venv/bin/python scripts/bench_bundling.py [--hammer-limit 300] [--no-write]

Writes the section "## Edge bundling" of docs/BENCHMARKS.md (the other
sections are kept). The figures:

(a) nn_vis's dense network 784-81-49-10 (67,963 edges; 784 as a 28x28 grid,
    81 as a 9x9 grid, 49 and 10 as columns): time to bundle all three layer pairs.
(b) one layer pair 8192 (grid) -> 256 (grid), 2,097,152 edges: time and peak
    memory of straight points + bundling + offsets, in a child process.
(c) datashader's hammer_bundle on the same edges, in a child process killed
    after --hammer-limit seconds. It is 2D: it gets the side view's projection
    (x, z) of the neurons, and its result is measured in that same view.
(d) ink and distortion, straight vs bundled, for a demo-like stack
    (flatten 128 -> 64 -> 10) and a CIFAR-like one (flatten 8192 -> 256 -> 10),
    seen from the stage camera's direction and from the side.

Weights do not enter the bundling (every weight is an edge), so random
weights are not needed: the edges are all pairs of each dense layer.
datashader, dask and scikit-image (requirements.txt) are used only here.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blender_cnn.core.bundling import bundle_edges, default_points_per_edge, lateral_offsets, straight_points  # noqa: E402
from blender_cnn.core.drawing_metrics import distortion, drawing_bounds, ink  # noqa: E402
from blender_cnn.core.layout import neuron_positions, suggested_spacing  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import BENCHMARKS, cpu_model, update_benchmarks  # noqa: E402

SECTION = "Edge bundling"
NN_VIS = (784, 81, 49, 10)
DEMO = (256, 32, 10)  # the digits demo's flatten -> dense 32 -> output
CIFAR = (8192, 256, 10)
VIEWS = {"stage (1, 1, -0.4)": (1.0, 1.0, -0.4), "side (0, 1, 0)": (0.0, 1.0, 0.0)}
SIDE = (0.0, 1.0, 0.0)
RESOLUTIONS = (1024, 512)  # pixels along the longer side of the frame
GOALS = {"ink": 0.6, "distortion": 1.3, "large_seconds": 30.0, "large_bytes": 4e9, "nn_vis_seconds": 3.0}


def spacing(sizes):
    """The Layer Spacing the scene would choose for these layers (suggested_spacing)."""
    return float(suggested_spacing([(size,) for size in sizes]))


def dense_stack(sizes):
    """(source_xyz, target_xyz, source index, target index) of all weights of a dense stack."""
    gap = spacing(sizes)
    positions = [neuron_positions(size, index * gap) for index, size in enumerate(sizes)]
    offsets = np.cumsum((0,) + sizes[:-1])
    parts = []
    for index, (inputs, outputs) in enumerate(zip(sizes, sizes[1:])):
        source, target = np.meshgrid(np.arange(inputs), np.arange(outputs), indexing="ij")
        parts.append((positions[index][source.ravel()], positions[index + 1][target.ravel()],
                      offsets[index] + source.ravel(), offsets[index + 1] + target.ravel()))
    return tuple(np.concatenate(column) for column in zip(*parts)), np.concatenate(positions)


def best_time(action, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def child(mode, *args, limit=None):
    """Run this script in ``mode`` in a child Python; (result dict or None if killed at ``limit``, seconds, peak bytes)."""
    with tempfile.TemporaryFile("w+") as stdout:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, __file__, mode, *args], stdout=stdout, text=True)
        # wait4 gives this child's own peak memory (RUSAGE_CHILDREN would be the largest of all so far).
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if limit is not None and time.perf_counter() - start > limit:
                process.kill()
                os.wait4(process.pid, 0)
                return None, time.perf_counter() - start, None
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status):
            raise RuntimeError(f"{mode} failed with exit code {os.waitstatus_to_exitcode(status)}")
        stdout.seek(0)
        output = stdout.read()
    return json.loads(output.strip().splitlines()[-1]), seconds, usage.ru_maxrss * 1024


def large_pair_child():
    """(b): straight points, bundling and offsets of 8192 -> 256, as the scene would need them."""
    (source, target, _, _), _ = dense_stack(CIFAR[:2])
    start = time.perf_counter()
    points = default_points_per_edge(len(source))
    straight = straight_points(source, target, points)
    bundled = bundle_edges(source, target, points, straight=straight)
    offsets = lateral_offsets(bundled, straight)
    seconds = time.perf_counter() - start
    del bundled, straight
    # Then Blender's hair curves, as the scene writes them: one curve per edge, the offsets per point
    # (the node tree places the points from the neurons and the keyframable bundling strength).
    import bpy  # noqa: F401 (Blender as a module; imported here so the timing above excludes it)

    from blender_cnn.scene.geometry_data import hair_curves

    start = time.perf_counter()
    count = len(source)
    curve_arrays = {"source_cell": np.arange(count, dtype=np.int32) % 8192,
                    "target_cell": 8192 + np.arange(count, dtype=np.int32) // 8192,
                    "weight": np.zeros(count, np.float32), "weight_max": np.ones(count, np.float32)}
    curves = hair_curves("bench connections", count, points, curve_arrays, {"bundle_offset": offsets.reshape(-1, 3)})
    curve_seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "curve_seconds": curve_seconds, "edges": count, "points": points,
                      "curve_points": len(curves.points), "bytes": offsets.nbytes}))


SCENES = {"digits demo CNN (16x16x1)": "digits", "CIFAR-10 greyscale CNN (32x32x1)": "cifar"}
SCENE_WIDTHS = (1280, 640)  # render widths of the 16:9 frame


def scene_child(kind, work):
    """(e): a synthetic network built as the scene builds it (default edge selection), its evaluated curves
    straight and bundled, seen from the stage camera."""
    from bench_scene import cifar_greyscale_layers, write_synthetic_bundle

    import bpy

    from blender_cnn.scene.drawn import drawn_curves
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import camera_projection, configure_render, set_up_stage

    layers = {"digits": ((16, 16, 1), [("Conv2D", 8), ("MaxPooling2D", None), ("Conv2D", 16), ("MaxPooling2D", None),
                                       ("Flatten", None), ("Dense", 32), ("Dense", 10)]),
              "cifar": ((32, 32, 1), cifar_greyscale_layers())}[kind]
    path = write_synthetic_bundle(Path(work) / f"{kind}.bcnn.npz", kind, *layers)
    bpy.ops.wm.read_homefile(app_template="")
    network = build_network(path)
    camera = set_up_stage(network)
    configure_render(bpy.context.scene, width=1280, height=720)
    drawn = {}
    for strength in (0.0, 1.0):
        set_network_input(network, "Bundling Strength", strength)
        drawn[strength] = drawn_curves(network)
    projection = np.array(camera_projection(camera))
    # The camera's whole frame, at the render's pixels (camera_projection makes them square).
    frame = (-1.0, -720 / 1280, 1.0, 720 / 1280)
    result = {"edges": len(drawn[1.0]), "total": sum(entry["total"] for entry in network["blender_cnn_connections"]),
              "distortion": distortion(drawn[1.0])}
    for width in SCENE_WIDTHS:
        plain, bundled = (ink(drawn[strength], projection, width, frame) for strength in (0.0, 1.0))
        result[f"ink_{width}"] = [plain, bundled]
    print(json.dumps(result))


def hammer_child(sizes_text):
    """(c): datashader's hammer_bundle on the side view's projection of a dense stack."""
    import pandas as pd
    from datashader.bundling import hammer_bundle

    sizes = tuple(int(size) for size in sizes_text.split(","))
    (source_xyz, target_xyz, source, target), positions = dense_stack(sizes)
    nodes = pd.DataFrame({"x": positions[:, 0].astype(np.float64), "y": positions[:, 2].astype(np.float64)})
    edges = pd.DataFrame({"source": source, "target": target})
    start = time.perf_counter()
    paths = hammer_bundle(nodes, edges)
    seconds = time.perf_counter() - start
    polylines = hammer_polylines(paths[["x", "y"]].to_numpy())
    straight = straight_points(source_xyz, target_xyz, 2)
    frame = drawing_bounds(straight, SIDE)
    print(json.dumps({"seconds": seconds, "distortion": distortion(polylines),
                      **{f"ink_{res}": ink(polylines, SIDE, res, frame) / ink(straight, SIDE, res, frame)
                         for res in RESOLUTIONS}}))


def hammer_polylines(xy):
    """hammer_bundle's NaN-separated paths as (E, P, 3) points in the x-z plane, padded with their last point.

    A repeated last point adds neither ink nor length.
    """
    breaks = np.flatnonzero(np.isnan(xy[:, 0]))
    starts = np.r_[0, breaks + 1][:len(breaks)]
    lengths = breaks - starts
    longest = int(lengths.max())
    index = starts[:, None] + np.minimum(np.arange(longest)[None, :], lengths[:, None] - 1)
    polylines = np.zeros((len(starts), longest, 3), dtype=np.float32)
    polylines[..., 0], polylines[..., 2] = xy[index, 0], xy[index, 1]
    return polylines


def side_view_clutter(sizes, resolution=RESOLUTIONS[0]):
    """Our bundled ink / straight ink in the side view, and our distortion: to set beside hammer_bundle's."""
    (source, target, _, _), _ = dense_stack(sizes)
    straight = straight_points(source, target, default_points_per_edge(len(source)))
    bundled = bundle_edges(source, target, straight.shape[1], straight=straight)
    frame = drawing_bounds(straight, SIDE)
    return ink(bundled, SIDE, resolution, frame) / ink(straight, SIDE, resolution, frame), distortion(bundled)


def clutter(sizes):
    """(d): {(view, resolution): (straight ink, bundled ink)} and the two distortions of a dense stack."""
    (source, target, _, _), _ = dense_stack(sizes)
    points = default_points_per_edge(len(source))
    straight = straight_points(source, target, points)
    bundled = bundle_edges(source, target, points, straight=straight)
    inks = {}
    for view_name, view in VIEWS.items():
        frame = drawing_bounds(straight, view)
        for res in RESOLUTIONS:
            inks[view_name, res] = (ink(straight, view, res, frame), ink(bundled, view, res, frame))
    return {"edges": len(source), "points": points, "inks": inks,
            "distortion": (distortion(straight), distortion(bundled))}


def met(ok):
    return "**met**" if ok else "**NOT met**"


def report(nn_vis_seconds, large, hammer, stacks, scenes):
    lines = [f"## {SECTION}", "",
             f"Measured {date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}, numpy {np.__version__}; `scripts/bench_bundling.py`.",
             "Algorithm and parameters: docs/bundling.md (defaults throughout). Layer Spacing as the scene",
             "suggests it (`suggested_spacing`): " + ", ".join(
                 f"{'-'.join(map(str, sizes))}: {spacing(sizes):g}" for sizes in (NN_VIS, DEMO, CIFAR)) + ".",
             "", "### Time and memory", "",
             "| case | edges | points per edge | time | peak memory | goal |", "|---|---:|---:|---:|---:|---|"]
    nn_edges = sum(a * b for a, b in zip(NN_VIS, NN_VIS[1:]))
    lines.append(f"| nn_vis dense 784-81-49-10, all 3 pairs (straight + bundled, best of 3) | {nn_edges:,} | "
                 f"{default_points_per_edge(nn_edges)} | {nn_vis_seconds:.2f} s | | under "
                 f"{GOALS['nn_vis_seconds']:g} s: {met(nn_vis_seconds < GOALS['nn_vis_seconds'])} |")
    result, _, peak = large
    total = result["seconds"] + result["curve_seconds"]
    lines.append(f"| 8192 grid -> 256 grid: straight + bundled + offsets {result['seconds']:.2f} s, then Blender hair "
                 f"curves with the offsets {result['curve_seconds']:.2f} s (child process) | {result['edges']:,} | "
                 f"{result['points']} | {total:.2f} s | {peak / 1e9:.2f} GB | under 30 s: "
                 f"{met(total < GOALS['large_seconds'])}; under 4 GB: {met(peak < GOALS['large_bytes'])} |")
    lines += ["", "Peak memory is the child's maximum resident set (ru_maxrss), Python, numpy and bpy included.", "",
              "### datashader hammer_bundle, same edges", "",
              "hammer_bundle (datashader 0.19.1, default parameters) is 2D: it bundles the side view's projection",
              "(x, z) of the neurons, and its ink is measured in that view against the straight drawing.", "",
              f"| case | edges | hammer_bundle time | ours | time ratio (hammer / ours) | ink / straight, side view, "
              f"{RESOLUTIONS[0]} px: hammer / ours | distortion: hammer / ours |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, edges, ours, (outcome, _, _), limit, (our_ink, our_distortion) in hammer:
        if outcome is None:
            lines.append(f"| {name} | {edges:,} | did not finish in {limit:g} s (killed) | {ours:.2f} s | "
                         f"over {limit / ours:.0f}x | - / {our_ink:.2f} | - / {our_distortion:.3f} |")
        else:
            lines.append(f"| {name} | {edges:,} | {outcome['seconds']:.2f} s | {ours:.2f} s | "
                         f"{outcome['seconds'] / ours:.0f}x | {outcome[f'ink_{RESOLUTIONS[0]}']:.2f} / {our_ink:.2f} | "
                         f"{outcome['distortion']:.3f} / {our_distortion:.3f} |")
    lines += ["", "### Clutter: ink and distortion", "",
              "Ink: share of the frame's pixels covered when every edge is drawn one pixel wide, orthographic",
              "view; the frame is the straight drawing's bounding box, pixels square, the resolution the",
              "frame's longer side. Goal at full strength: bundled ink at most 60% of straight, mean",
              "distortion (path length / straight length) under 1.3.", "",
              "| stack | edges | view | resolution | straight ink | bundled ink | ratio | distortion | goal |",
              "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for name, numbers in stacks:
        bent = numbers["distortion"][1]
        for (view, res), (plain, bundled) in numbers["inks"].items():
            ratio = bundled / plain
            lines.append(f"| {name} | {numbers['edges']:,} | {view} | {res} | {plain:.3f} | {bundled:.3f} | "
                         f"{ratio:.2f} | {bent:.3f} | {met(ratio <= GOALS['ink'] and bent < GOALS['distortion'])} |")
    lines += ["", "### The scenes as built", "",
              "The goal's own terms: each network built by `build_network` with its default edge selection (every",
              "weight of a layer up to 20,000, else the strongest per neuron within that many), its evaluated",
              "curves at Bundling Strength 0 and 1, drawn through the stage camera's perspective projection",
              "into its whole 16:9 frame at the render's pixels. Synthetic bundles (random weights) of the real shapes.",
              "", "| network | curves drawn (of weights) | render | straight ink | bundled ink | ratio | distortion | goal |",
              "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, numbers in scenes:
        for width in SCENE_WIDTHS:
            plain, bundled = numbers[f"ink_{width}"]
            ratio = bundled / plain
            lines.append(f"| {name} | {numbers['edges']:,} ({numbers['total']:,}) | {width}x{width * 9 // 16} | "
                         f"{plain:.3f} | "
                         f"{bundled:.3f} | {ratio:.2f} | {numbers['distortion']:.3f} | "
                         f"{met(ratio <= GOALS['ink'] and numbers['distortion'] < GOALS['distortion'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hammer-limit", type=float, default=300.0, help="seconds before hammer_bundle is killed")
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/BENCHMARKS.md alone")
    args = parser.parse_args(argv)

    # (b) first, so that the children's peak memory is this child's.
    large = child("--child-large")
    print(f"8192 -> 256: {large[0]['seconds']:.2f} s, peak {large[2] / 1e9:.2f} GB", flush=True)

    (source, target, _, _), _ = dense_stack(NN_VIS)
    points = default_points_per_edge(len(source))
    nn_vis_seconds = best_time(lambda: bundle_edges(source, target, points,
                                                    straight=straight_points(source, target, points)))
    print(f"nn_vis 784-81-49-10: {nn_vis_seconds:.2f} s", flush=True)

    hammer = []
    for name, sizes, ours in (("nn_vis dense 784-81-49-10", NN_VIS, nn_vis_seconds),
                              ("8192 grid -> 256 grid", CIFAR[:2], large[0]["seconds"])):
        edges = sum(a * b for a, b in zip(sizes, sizes[1:]))
        outcome = child("--child-hammer", ",".join(map(str, sizes)), limit=args.hammer_limit)
        hammer.append((name, edges, ours, outcome, args.hammer_limit, side_view_clutter(sizes)))
        print(f"hammer_bundle {name}: {outcome[0] if outcome[0] else 'did not finish'}", flush=True)

    stacks = []
    for name, sizes in (("digits demo 256 -> 32 -> 10", DEMO), ("CIFAR-like 8192 -> 256 -> 10", CIFAR)):
        stacks.append((name, clutter(sizes)))
        print(name, stacks[-1][1], flush=True)

    scenes = []
    with tempfile.TemporaryDirectory() as work:
        for name, kind in SCENES.items():
            scenes.append((name, child("--child-scene", kind, work)[0]))
            print(name, scenes[-1][1], flush=True)

    text = report(nn_vis_seconds, large, hammer, stacks, scenes)
    print(text)
    if not args.no_write:
        update_benchmarks(SECTION, text)
        print(f"written to {BENCHMARKS.relative_to(REPO)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child-large":
        large_pair_child()
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-hammer":
        hammer_child(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-scene":
        scene_child(sys.argv[2], sys.argv[3])
    else:
        main()
