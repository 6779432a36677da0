"""How the network scene scales: read, build and evaluation time and peak memory by activation count.

    .venv/bin/python scripts/bench_scene.py [--no-write] [--no-plot] [--naive-limit 60] [--benchmarks FILE]
    .venv/bin/python scripts/bench_scene.py --smoke [--benchmarks FILE]

Needs neither TensorFlow nor trained weights: each network is a synthetic
bundle (1 epoch, 1 sample, random activations of the real shapes, random
Dense kernels) written with ``write_bundle``. Every measurement runs in its
own Python, so its peak memory is its own (``ru_maxrss`` from ``wait4``,
reused from ``bench.py``):

- the CIFAR-10-greyscale CNN and VGG16's conv and pool layers at 224x224;
- a series of synthetic conv networks from 1e3 to 1.5e7 activations;
- the way existing Blender neural-network scripts draw a network (one object
  per cell, made with bpy), on the same bundles, up to the size where it
  first takes longer than ``--naive-limit`` seconds.

VGG16 is also saved to a .blend and reopened and evaluated in a fresh
process. The CIFAR-10 and VGG16 figures are medians of three runs, each run
twice: as now, with the shared node groups taken from the prebuilt asset
(``scripts/build_node_groups.py`` writes it into the temporary folder first, as
the extension build does) and the network's tree built in parts; and as before
both (``--groups code``): the groups built from code, the tree in one piece.
A scene's time starts with reading the bundle file: ``load_bundle`` reads the
manifest, and the arrays are read from the file as the build needs them.
Writes its own section of docs/BENCHMARKS.md (the other sections are kept) and
the plot scene_scaling.png beside it (docs/). Temporary files go to a folder
under $TMPDIR (about 1.3 GB at most, for VGG16's .blend) that is removed. ``--smoke`` runs the same path on tiny networks (VGG16 at 32x32, two
small sizes of the series) and writes into a temporary folder.
"""

import argparse
import collections
import json
import math
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from bench import (
    add_output_arguments,
    benchmarks_file,
    cpu_model,
    format_bytes,
    format_seconds,
    measured_child,
    measured_line,
    package_version,
    write_section,
)

SECTION = "Scene: build time and peak memory by network size"
PLOT_NAME = "scene_scaling.png"  # written beside BENCHMARKS.md
CLASS_COUNT = 10

CIFAR_BUILD_GOAL_SECONDS = 0.4
VGG16_GOAL_SECONDS = 6.0
VGG16_GOAL_BYTES = 4e9
VGG16_REOPEN_GOAL_SECONDS = 3.0
VGG16_SIDE = 224
# Each goal's figure is the median of this many runs, each in its own process.
RUNS = 3
# How a network's node trees are made: as now, the groups every network shares taken from the prebuilt asset the
# extension build writes (nodes/prebuilt.py) and the network's own tree built in parts (nodes/builder.py's
# TreeBuilder.part); or as before both, the groups built from code and the tree in one piece. Both are measured in
# the same run.
GROUP_WAYS = ("asset", "code")
GROUP_WAY_LABELS = {
    "asset": "now: groups prebuilt, tree in parts",
    "code": "before: groups from code, tree in one piece",
}
SERIES_TARGETS = (1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 5e6, 1.5e7)
# --smoke: the same path on networks small enough to take a second or two each.
SMOKE_CIFAR_SIDE = 8
SMOKE_VGG16_SIDE = 32
SMOKE_SERIES_TARGETS = (1e3, 3e3)
SMOKE_NAIVE_LIMIT = 5.0


# Networks as (layer type, settings) after the input; shapes follow Keras ("same" convs, 2x2 pools that floor).
def digits_demo_layers():
    """The digits demo's network (presets/digits_cnn.json) at 16x16."""
    return [
        ("Conv2D", 8),
        ("MaxPooling2D", None),
        ("Conv2D", 16),
        ("MaxPooling2D", None),
        ("Flatten", None),
        ("Dense", 32),
        ("Dense", CLASS_COUNT),
    ]


def cifar_greyscale_layers():
    return [
        ("Conv2D", 64),
        ("Conv2D", 64),
        ("MaxPooling2D", None),
        ("Conv2D", 128),
        ("Conv2D", 128),
        ("MaxPooling2D", None),
        ("Flatten", None),
        ("Dense", 256),
        ("Dense", CLASS_COUNT),
    ]


def vgg16_conv_layers():
    layers = []
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        layers += [("Conv2D", filters)] * convs + [("MaxPooling2D", None)]
    return layers


# The scaling series: one shape of network, its input side chosen to reach each activation count.
SERIES_LAYERS = [
    ("Conv2D", 16),
    ("Conv2D", 16),
    ("MaxPooling2D", None),
    ("Conv2D", 32),
    ("Conv2D", 32),
    ("MaxPooling2D", None),
]
SERIES_CHANNELS = 3


def output_shapes(input_shape, layers):
    shapes, shape = [tuple(input_shape)], tuple(input_shape)
    for kind, setting in layers:
        if kind == "Conv2D":
            shape = (shape[0], shape[1], setting)
        elif kind == "MaxPooling2D":
            shape = (shape[0] // 2, shape[1] // 2, shape[2])
        elif kind == "Flatten":
            shape = (int(np.prod(shape)),)
        elif kind == "Dense":
            shape = (setting,)
        shapes.append(shape)
    return shapes


def activation_count(input_shape, layers):
    return sum(int(np.prod(shape)) for shape in output_shapes(input_shape, layers))


def series_input_side(target):
    """The input side whose series network has the activation count closest to ``target``."""
    per_pixel = activation_count((64, 64, SERIES_CHANNELS), SERIES_LAYERS) / 64**2
    side = max(4, round(math.sqrt(target / per_pixel)))
    return min(
        range(side - 3, side + 4), key=lambda s: abs(activation_count((s, s, SERIES_CHANNELS), SERIES_LAYERS) - target)
    )


def write_synthetic_bundle(path, name, input_shape, layers, seed=0, epochs=1, samples=1, conv_kernels=False):
    """A valid bundle: random activations and Dense kernels that drift from epoch to epoch, and falling loss.

    ``conv_kernels``: the convolutions get drifting kernels and biases too (what a sweep or Inspect reads).
    """
    from blender_cnn.core.bundle import write_bundle

    rng = np.random.default_rng(seed)
    shapes = output_shapes(input_shape, layers)
    inputs = rng.random((samples, *input_shape), dtype=np.float32)

    def drifting(shape, scale=1.0):
        """(epochs, *shape) values that change a little each epoch, as training does."""
        start = rng.normal(0, scale, shape).astype(np.float32)
        steps = rng.normal(0, 0.2 * scale, (epochs, *shape)).astype(np.float32)
        steps[0] = 0
        return start + np.cumsum(steps, axis=0)

    arrays = {
        "samples/inputs": inputs,
        "samples/labels": np.zeros(samples, np.int32),
        "samples/predictions": np.full((epochs, samples, CLASS_COUNT), 1 / CLASS_COUNT, np.float32),
        "activations/input": np.broadcast_to(inputs, (epochs, *inputs.shape)).copy(),
        "metrics/loss": np.linspace(2.3, 0.3, epochs, dtype=np.float32),
        "metrics/accuracy": np.linspace(0.1, 0.9, epochs, dtype=np.float32),
    }
    manifest_layers = [
        {
            "name": "input",
            "type": "InputLayer",
            "inputs": [],
            "output_shape": list(input_shape),
            "config": {},
            "params": 0,
            "weights": [],
            "activations": "activations/input",
        }
    ]
    for index, ((kind, setting), shape) in enumerate(zip(layers, shapes[1:]), start=1):
        layer_name = f"{kind.lower()}_{index}"
        config, weights = {}, []
        if kind == "Conv2D":
            # Without conv_kernels the kernels are left out (only their kernel points would show them); params
            # still says how many there are.
            config = {"filters": setting, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}
            params = (9 * shapes[index - 1][-1] + 1) * setting
            if conv_kernels:
                kernel = drifting((3, 3, shapes[index - 1][-1], setting), 0.2)
                arrays[f"weights/{layer_name}/kernel"] = kernel
                arrays[f"weights/{layer_name}/bias"] = drifting((setting,), 0.05)
                weights = [
                    {"name": "kernel", "array": f"weights/{layer_name}/kernel", "shape": list(kernel.shape[1:])},
                    {"name": "bias", "array": f"weights/{layer_name}/bias", "shape": [setting]},
                ]
        elif kind == "MaxPooling2D":
            config, params = {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}, 0
        elif kind == "Dense":
            config = {"units": setting, "activation": "relu"}
            kernel = drifting((shapes[index - 1][0], setting), 0.05)
            arrays[f"weights/{layer_name}/kernel"] = kernel
            arrays[f"weights/{layer_name}/bias"] = np.zeros((epochs, setting), np.float32)
            weights = [
                {"name": "kernel", "array": f"weights/{layer_name}/kernel", "shape": list(kernel.shape[1:])},
                {"name": "bias", "array": f"weights/{layer_name}/bias", "shape": [setting]},
            ]
            params = kernel[0].size + setting
        else:
            params = 0
        arrays[f"activations/{layer_name}"] = np.abs(drifting((samples, *shape)))
        manifest_layers.append(
            {
                "name": layer_name,
                "type": kind,
                "inputs": [manifest_layers[-1]["name"]],
                "output_shape": list(shape),
                "config": config,
                "params": params,
                "weights": weights,
                "activations": f"activations/{layer_name}",
            }
        )
    manifest = {
        "name": name,
        "input_shape": list(input_shape),
        "class_names": [f"class {i}" for i in range(CLASS_COUNT)],
        "epochs": list(range(1, epochs + 1)),
        "layers": manifest_layers,
        "metrics": {"loss": "metrics/loss", "accuracy": "metrics/accuracy"},
        "samples": {"inputs": "samples/inputs", "labels": "samples/labels", "predictions": "samples/predictions"},
    }
    return write_bundle(path, manifest, arrays)


# --- what runs in each child process -------------------------------------------------------------------


def _import_bpy(work):
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(Path(work) / "blender_user"))
    start = time.perf_counter()
    import bpy

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    return bpy, time.perf_counter() - start


def _evaluated_counts(bpy, obj):
    from blender_cnn.scene.drawn import DrawnInstances

    geometry = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
    mesh, curves = geometry.mesh, geometry.curves
    # Cells and other squares are instances of one quad each (the cells nested in one); labels and bars are mesh faces.
    return {
        "faces": (len(mesh.polygons) if mesh else 0) + len(DrawnInstances(geometry, obj.matrix_world)),
        "curves": len(curves.curves) if curves else 0,
    }


def use_groups(groups, asset):
    """Before anything is built: new files take the shared node groups from the prebuilt ``asset`` and build the
    network's tree in parts (``groups`` "asset"), or build the groups from code and the tree in one piece
    ("code")."""
    from blender_cnn.nodes import builder, network, prebuilt

    prebuilt.enabled = builder.separate_parts = network.nest_cells = groups == "asset"
    if asset:
        prebuilt.ASSET_PATH = Path(asset)


def timed_build(bundle_path):
    """bpy with an empty file, then ``bundle_path`` read, its network built and evaluated, each timed in ``times``
    (import, load, build, evaluate): ``(bpy, bundle, network, evaluated counts, times)``.

    The bundle's arrays are read from the file as ``build_network`` needs them (``load_bundle`` reads
    the manifest only), so *build* includes reading them.
    """
    bpy, import_seconds = _import_bpy(Path(bundle_path).parent)
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.scene.network import build_network

    times = {"import": import_seconds}
    start = time.perf_counter()
    bundle = load_bundle(bundle_path)
    times["load"] = time.perf_counter() - start
    start = time.perf_counter()
    network = build_network(bundle)
    times["build"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = _evaluated_counts(bpy, network)
    times["evaluate"] = time.perf_counter() - start
    return bpy, bundle, network, counts, times


def child_build(bundle_path, blend_path=None, again=False, groups="asset", asset=None):
    """Time reading the bundle, the build and the first evaluation of one bundle (``timed_build``); optionally
    save the .blend."""
    use_groups(groups, asset)
    bpy, bundle, network, counts, times = timed_build(bundle_path)
    # The peak through reading, building and the first evaluation, which the goal is about; saving and showing
    # importance come after and raise the process's own ("process_peak").
    evaluation_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.scene.network import CONNECTIONS_PROPERTY, build_network, get_network_input
    from blender_cnn.scene.saving import save_without_backup

    # Counted from what was built, so that nothing else adds to the process's peak memory.
    activations = sum(int(np.prod(layer.output_shape)) for layer in bundle.layers)
    cells = len(get_network_input(network, "Cells").data.vertices)
    edge_count = sum(entry["drawn"] for entry in network[CONNECTIONS_PROPERTY])
    result = {
        "activations": activations,
        "cells": cells,
        "edges": edge_count,
        **counts,
        "times": times,
        "evaluation_peak": evaluation_peak,
    }
    if again:
        # A second network in the same file, read from the file again: the shared node groups exist already.
        start = time.perf_counter()
        _evaluated_counts(bpy, build_network(load_bundle(bundle_path)))
        times["again"] = time.perf_counter() - start
    if blend_path:
        start = time.perf_counter()
        save_without_backup(str(blend_path))
        times["save"] = time.perf_counter() - start
        result["blend_bytes"] = os.path.getsize(blend_path)
    # Last, as it changes the scene: importance is looked up only while shown, so switching it on re-evaluates.
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, "Show Importance", 1.0)
    start = time.perf_counter()
    _evaluated_counts(bpy, network)
    times["importance"] = time.perf_counter() - start
    print(json.dumps(result))


def child_reopen(blend_path, network_name="vgg16"):
    """Open a saved scene in a fresh process and evaluate the network again."""
    bpy, import_seconds = _import_bpy(Path(blend_path).parent)
    start = time.perf_counter()
    bpy.ops.wm.open_mainfile(filepath=str(blend_path))
    open_seconds = time.perf_counter() - start
    start = time.perf_counter()
    counts = _evaluated_counts(bpy, bpy.data.objects[network_name])
    print(
        json.dumps(
            {
                **counts,
                "times": {"import": import_seconds, "open": open_seconds, "evaluate": time.perf_counter() - start},
            }
        )
    )


def child_naive(bundle_path, time_limit):
    """The approach of existing Blender NN scripts: one object per cell, placed and colored from Python.

    Every cell is an object sharing one quad mesh, linked into a collection,
    with its location set and its activation as a custom property and as the
    object color (which a material reads through Object Info); positions use
    the same wall-of-maps layout as the add-on, computed in Python per cell.
    Object creation slows down as objects pile up, so it stops after
    ``time_limit`` seconds and reports how many objects it made.
    """
    bpy, _ = _import_bpy(Path(bundle_path).parent)
    from blender_cnn.core import cells as cell_data
    from blender_cnn.core.bundle import load_bundle

    # Timed from reading the bundle, as ours is; the cells' values and map shapes come from the add-on's numpy.
    start = time.perf_counter()
    bundle = load_bundle(bundle_path)
    layers, arrays = cell_data.cell_arrays(bundle)
    # Each cell's own copy of its layer's values, as a script without a table would have them.
    per_layer = cell_data.layer_columns(bundle, layers)
    arrays.update({name: per_layer[name][arrays["layer"]] for name in cell_data.LAYER_COLUMNS})
    # One object per activation: any cells the add-on adds after the layers' own (summaries) are left out.
    activations = sum(cells.count for cells in layers)
    columns = {
        name: arrays[name][:activations].tolist()
        for name in (
            "layer",
            "channel",
            "row",
            "col",
            "map_rows",
            "map_cols",
            "channels",
            "activation",
            "act_low",
            "act_high",
        )
    }
    quad = bpy.data.meshes.new("cell quad")
    quad.from_pydata([(0, -0.45, -0.45), (0, 0.45, -0.45), (0, 0.45, 0.45), (0, -0.45, 0.45)], [], [(0, 1, 2, 3)])
    collection = bpy.data.collections.new("cells")
    bpy.context.scene.collection.children.link(collection)
    for cell, (layer, channel, row, col, rows, cols, channels, value, low, high) in enumerate(zip(*columns.values())):
        grid = math.ceil(math.sqrt(channels))
        obj = bpy.data.objects.new(f"cell {cell}", quad)
        obj.location = (layer * 40.0, -((channel % grid) * (cols + 2) + col), -((channel // grid) * (rows + 2) + row))
        level = (value - low) / (high - low)
        obj.color = (level, level, level, 1.0)
        obj["activation"] = value
        collection.objects.link(obj)
        if cell % 1000 == 999 and time.perf_counter() - start > time_limit:
            break
    created = cell + 1
    build_seconds = time.perf_counter() - start
    start = time.perf_counter()
    bpy.context.evaluated_depsgraph_get()
    print(
        json.dumps(
            {
                "activations": activations,
                "objects": created,
                "finished": created == activations,
                "times": {"build": build_seconds, "evaluate": time.perf_counter() - start},
            }
        )
    )


# --- the parent: bundles, runs, report -------------------------------------------------------------------


def run_child(*args):
    return measured_child(Path(__file__).resolve(), *args)


def median_run(runs, seconds=None):
    """The run whose time (``seconds(run)``, by default read + build + first evaluation) is the median."""
    seconds = seconds or total_seconds
    return sorted(runs, key=seconds)[len(runs) // 2]


def reopen_seconds(result):
    """Opening the saved file (its modifier evaluating while it opens) and evaluating the network."""
    return result["times"]["open"] + result["times"]["evaluate"]


def measure(work, naive_limit, smoke=False):
    from build_node_groups import build as build_node_groups

    baseline = run_child("--child-baseline", work)["peak"]
    cifar_side, vgg_side = (SMOKE_CIFAR_SIDE, SMOKE_VGG16_SIDE) if smoke else (32, VGG16_SIDE)
    runs = 1 if smoke else RUNS
    results = {"baseline_peak": baseline, "naive_limit": naive_limit, "cifar_side": cifar_side, "vgg_side": vgg_side}
    start = time.perf_counter()
    asset = build_node_groups(work / "node_groups.blend")
    results["asset_seconds"], results["asset_bytes"] = time.perf_counter() - start, asset.stat().st_size

    def groups(way):
        return ("--groups", way, "--asset", asset)

    cifar = write_synthetic_bundle(
        work / "cifar.bcnn.npz", "cifar_greyscale", (cifar_side, cifar_side, 1), cifar_greyscale_layers()
    )
    # The ways alternate run by run, so that a busy spell of the machine falls on both.
    results["cifar_runs"] = {way: [] for way in GROUP_WAYS}
    for _ in range(runs):
        for way in GROUP_WAYS:
            results["cifar_runs"][way].append(run_child("--child-build", cifar, "--again", *groups(way)))
            print(f"CIFAR-10 greyscale, {way}:", results["cifar_runs"][way][-1], flush=True)
    Path(cifar).unlink()

    vgg = write_synthetic_bundle(work / "vgg16.bcnn.npz", "vgg16", (vgg_side, vgg_side, 3), vgg16_conv_layers())
    results["vgg16_runs"] = {way: [] for way in GROUP_WAYS}
    results["vgg16_reopen_runs"] = {way: [] for way in GROUP_WAYS}
    for _ in range(runs):
        for way in GROUP_WAYS:
            blend = work / f"vgg16_{way}.blend"
            results["vgg16_runs"][way].append(run_child("--child-build", vgg, "--blend", blend, *groups(way)))
            print(f"VGG16, {way}:", results["vgg16_runs"][way][-1], flush=True)
            results["vgg16_reopen_runs"][way].append(run_child("--child-reopen", blend))
            print(f"VGG16 reopened, {way}:", results["vgg16_reopen_runs"][way][-1], flush=True)
            blend.unlink()
    Path(vgg).unlink()
    results["cifar"] = median_run(results["cifar_runs"]["asset"])
    results["vgg16"] = median_run(results["vgg16_runs"]["asset"])
    results["vgg16_reopen"] = median_run(results["vgg16_reopen_runs"]["asset"], reopen_seconds)

    results["series"], naive_done = [], False
    for target in SMOKE_SERIES_TARGETS if smoke else SERIES_TARGETS:
        side = series_input_side(target)
        path = write_synthetic_bundle(
            work / f"series_{side}.bcnn.npz", f"conv_{side}", (side, side, SERIES_CHANNELS), SERIES_LAYERS
        )
        row = {"side": side, "ours": run_child("--child-build", path, *groups("asset"))}
        if not naive_done:
            row["naive"] = run_child("--child-naive", path, "--naive-limit", naive_limit)
            # Its memory grows by about 30 kB per object; stop before the next size could not fit.
            next_peak = row["naive"]["peak"] * 3.5
            naive_done = (
                not row["naive"]["finished"]
                or total_seconds(row["naive"]) > naive_limit
                or next_peak > 0.8 * available_memory()
            )
        results["series"].append(row)
        print("series:", row, flush=True)
        Path(path).unlink()
    return results


def available_memory():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return float("inf")


def total_seconds(result):
    """Reading the bundle, the build and the first evaluation (one object per cell: its build reads the bundle)."""
    times = result["times"]
    return times.get("load", 0.0) + times["build"] + times["evaluate"]


def describe_layers(layers):
    """ "2 x conv 3x3 64, max pool, flatten, dense 10" for ``layers`` as (type, setting)."""
    names = {"Conv2D": "conv 3x3 {}", "MaxPooling2D": "max pool", "Flatten": "flatten", "Dense": "dense {}"}
    runs = []
    for layer in layers:
        if runs and runs[-1][0] == layer:
            runs[-1][1] += 1
        else:
            runs.append([layer, 1])
    return ", ".join(
        ("" if count == 1 else f"{count} x ") + names[kind].format(setting) for (kind, setting), count in runs
    )


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = results["series"]
    ours = [(row["ours"]["activations"], total_seconds(row["ours"]), row["ours"]["evaluation_peak"]) for row in series]
    naive = [
        (row["naive"]["activations"], total_seconds(row["naive"]), row["naive"]["peak"])
        for row in series
        if "naive" in row and row["naive"]["finished"]
    ]
    vgg, side = results["vgg16"], results["vgg_side"]
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(12, 5), dpi=110)
    goal = f"VGG16 goal ({VGG16_GOAL_SECONDS:g} s, {VGG16_GOAL_BYTES / 1e9:g} GB)"
    approaches = (
        (ours, "o-", "tab:blue", "blender_cnn (one mesh, Geometry Nodes)"),
        (naive, "s--", "tab:red", "one object per cell (bpy)"),
    )
    for axis, column, goal_value in ((time_axis, 1, VGG16_GOAL_SECONDS), (memory_axis, 2, VGG16_GOAL_BYTES / 1e9)):
        scale = 1 if column == 1 else 1e-9
        for points, style, color, label in approaches:
            axis.loglog([p[0] for p in points], [p[column] * scale for p in points], style, color=color, label=label)
        vgg_value = total_seconds(vgg) if column == 1 else vgg["evaluation_peak"] * scale
        axis.loglog(
            [vgg["activations"]], [vgg_value], "*", color="black", markersize=14, label=f"VGG16 {side}x{side} conv+pool"
        )
        axis.axhline(goal_value, color="grey", linestyle=":", label=goal)
        axis.set_xlabel("activations in the network")
        axis.grid(True, which="both", alpha=0.3)
    time_axis.set_ylabel("read + build + first evaluation (s)")
    time_axis.set_title("Time")
    memory_axis.set_ylabel("peak memory of the process (GB)")
    memory_axis.set_title("Peak memory (includes ~%.2f GB for Python + bpy)" % (results["baseline_peak"] / 1e9))
    figure.suptitle(f"Scene scaling, bpy {package_version('bpy')}, {cpu_model()}, {os.cpu_count()} cores")
    # One legend under both plots, where it hides no point.
    figure.legend(*time_axis.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path)
    plt.close(figure)


def report(results):
    from blender_cnn.core.connections import AUTO_MAX_EDGES, EdgeSelection

    def times(result):
        t = result["times"]
        return (
            f"{format_seconds(t['load'])} | {format_seconds(t['build'])} | {format_seconds(t['evaluate'])} | "
            f"**{format_seconds(total_seconds(result))}** | {format_bytes(result['evaluation_peak'])}"
        )

    cifar, vgg, reopened = results["cifar"], results["vgg16"], results["vgg16_reopen"]
    cifar_side, vgg_side = results["cifar_side"], results["vgg_side"]
    cifar_label = f"CIFAR-10 greyscale CNN, {cifar_side}x{cifar_side}x1"
    vgg_label = f"VGG16 conv + pool, {vgg_side}x{vgg_side}x3"
    networks = [
        "| network | node trees | activations | cells | connections drawn | quads and faces | read bundle | build "
        "| first evaluation | total (median) | peak memory | totals of the runs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    medians = {}  # (network, way) -> the median run
    for key, label in (("cifar", cifar_label), ("vgg16", vgg_label)):
        for way in GROUP_WAYS:
            runs = results[f"{key}_runs"][way]
            result = medians[key, way] = median_run(runs)
            networks.append(
                f"| {label} | {GROUP_WAY_LABELS[way]} | {result['activations']:,} | {result['cells']:,} "
                f"| {result['edges']:,} | {result['faces']:,} | {times(result)} "
                f"| {', '.join(format_seconds(total_seconds(run)) for run in runs)} |"
            )
    reopens = {way: median_run(results["vgg16_reopen_runs"][way], reopen_seconds) for way in GROUP_WAYS}
    saves = {way: median_run(results["vgg16_runs"][way], lambda run: run["times"]["save"]) for way in GROUP_WAYS}

    def ratio(code_seconds, asset_seconds):
        return f"{code_seconds / asset_seconds:.2f}x" if asset_seconds > 0 else "n/a"

    series = [
        "| input | activations | ours: read + build + evaluation | ours: peak | one object per cell: read + "
        "build + evaluation | one object per cell: peak | time ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["series"]:
        ours, naive = row["ours"], row.get("naive")
        cells = f"| {row['side']}x{row['side']}x{SERIES_CHANNELS} | {ours['activations']:,} "
        ours_text = f"| {format_seconds(total_seconds(ours))} | {format_bytes(ours['evaluation_peak'])} "
        if naive is None:
            naive_text = "| not run | | |"
        elif naive["finished"]:
            naive_text = (
                f"| {format_seconds(total_seconds(naive))} | {format_bytes(naive['peak'])} "
                f"| {total_seconds(naive) / total_seconds(ours):.2g}x |"
            )
        else:
            naive_text = (
                f"| did not finish: {naive['objects']:,} objects in {format_seconds(naive['times']['build'])} "
                f"| | over {naive['times']['build'] / total_seconds(ours):.0f}x |"
            )
        series.append(cells + ours_text + naive_text)

    cifar_total, vgg_total, reopen_total = total_seconds(cifar), total_seconds(vgg), reopen_seconds(reopened)
    cifar_code, vgg_code = total_seconds(medians["cifar", "code"]), total_seconds(medians["vgg16", "code"])
    cifar_again = cifar["times"]["again"]

    def verdict(met):
        return "**met**" if met else "**NOT met**"

    verdicts = [
        f"- CIFAR-10 greyscale as the first network of a new file, read + build + first evaluation, under "
        f"{format_seconds(CIFAR_BUILD_GOAL_SECONDS)}: {verdict(cifar_total < CIFAR_BUILD_GOAL_SECONDS)} "
        f"({format_seconds(cifar_total)} as now, {format_seconds(cifar_code)} as before (groups from code, the tree "
        f"in one piece): {ratio(cifar_code, cifar_total)}); as another network in a file that has the groups "
        f"{format_seconds(cifar_again)}.",
        f"- VGG16 read, built and evaluated in under {VGG16_GOAL_SECONDS:g} s: "
        f"{verdict(vgg_total < VGG16_GOAL_SECONDS)} ({format_seconds(vgg_total)}; {format_seconds(vgg_code)} "
        f"as before: {ratio(vgg_code, vgg_total)}); under {VGG16_GOAL_BYTES / 1e9:g} GB "
        f"peak memory: {verdict(vgg['evaluation_peak'] < VGG16_GOAL_BYTES)} ({format_bytes(vgg['evaluation_peak'])}; "
        f"the process, which then saves the file and shows importance, peaked at {format_bytes(vgg['peak'])}).",
        f"- VGG16's .blend reopened in a fresh process (open, the modifier evaluating while the file opens, then "
        f"evaluate) in under {VGG16_REOPEN_GOAL_SECONDS:g} s: {verdict(reopen_total < VGG16_REOPEN_GOAL_SECONDS)} "
        f"({format_seconds(reopen_total)}; {format_seconds(reopen_seconds(reopens['code']))} for the file built "
        f"as before; {reopened['faces']:,} quads and faces, "
        f"{'as built' if reopened['faces'] == vgg['faces'] else 'NOT as built'}, peak {format_bytes(reopened['peak'])}).",
        f"- VGG16's first save, with relative paths ({format_bytes(vgg['blend_bytes'])}): "
        f"{format_seconds(saves['asset']['times']['save'])} as now, "
        f"{format_seconds(saves['code']['times']['save'])} as before (median runs). Groups appended from a "
        f".blend made that save evaluate the whole network again (11 s); linked and made local they do not "
        f"(`blender_cnn/nodes/prebuilt.py`).",
        f"- The prebuilt groups: `scripts/build_node_groups.py` wrote them ({format_bytes(results['asset_bytes'])}) "
        f"in {format_seconds(results['asset_seconds'])}, once, as the extension build does.",
        f"- Showing importance (Show Importance 1, all classes; `docs/importance.md`) re-evaluates the network "
        f"in {format_seconds(cifar['times']['importance'])} (CIFAR-10 greyscale) and "
        f"{format_seconds(vgg['times']['importance'])} (VGG16); while it is 0 the lookup is skipped.",
    ]
    cifar_layers = cifar_greyscale_layers()
    shapes = output_shapes((cifar_side, cifar_side, 1), cifar_layers)
    flatten, units = shapes[-3][0], cifar_layers[-2][1]
    selection = EdgeSelection().for_kernel(flatten, units)
    drawn = (
        "all of them"
        if selection.per_neuron == 0
        else f"the default selection (above {AUTO_MAX_EDGES:,} weights a layer) draws the strongest "
        f"{selection.per_neuron} per neuron"
    )
    naive_limit = results["naive_limit"]
    vgg_kinds = collections.Counter(kind for kind, _ in vgg16_conv_layers())
    return "\n".join(
        [
            f"## {SECTION}",
            "",
            *measured_line("bench_scene.py", ("numpy", "bpy")),
            "Each network is a synthetic bundle (1 epoch, 1 sample, random activations of the real shapes, random",
            "Dense kernels; the scene does not depend on training) built in its own process. *read bundle* is",
            "`load_bundle` (the manifest and the arrays' headers), *build* `build_network` (the arrays read from",
            "the file as it needs them, the file just written and so in the system's file cache; numpy cell",
            "arrays, mesh and curve attributes, node tree), *first",
            "evaluation* the first `evaluated_geometry()` of the network object (the Geometry Nodes: layout, one",
            "instanced quad per cell as the viewport draws them, labels, connections); *total* is the three",
            "together. *Peak memory* is the process's maximum resident set at the end of the first evaluation",
            "(`ru_maxrss`, read in the process: saving and showing importance come after);",
            f"Python with bpy imported and an empty file alone peaks at {format_bytes(results['baseline_peak'])}.",
            "*cells* are the points the scene is built from: one per activation plus the summary maps shown",
            "when a layer is folded.",
            f"Each row is the median run (by total) of {len(results['cifar_runs']['asset'])}, the runs of the two "
            "ways of making the node trees alternating: *now* takes the groups every network shares from the",
            ".blend the extension build writes (`scripts/build_node_groups.py`) and builds the network's own tree",
            "in parts, each a group of its own built while nothing uses it (`TreeBuilder.part`); *before* builds",
            "the groups in the file and the network's tree in one piece, as before both. Both ways start the",
            "network's tree as a copy of the shared skeleton every network's tree has (its inputs and the nodes",
            "that do not depend on the network: `nodes/network.py`).",
            f"VGG16 is its {vgg_kinds['Conv2D']} conv and {vgg_kinds['MaxPooling2D']} pool layers at "
            f"{vgg_side}x{vgg_side}x3 ({vgg['activations']:,} activations) without the",
            f"classifier. The CIFAR-10 greyscale CNN: {describe_layers(cifar_layers)}: its flatten -> dense {units}",
            f"has {flatten * units:,} weights, of which {drawn}, bundled.",
            "",
            *networks,
            "",
            *verdicts,
            "",
            "### Cost as activations grow",
            "",
            f"Synthetic conv networks (input NxNx{SERIES_CHANNELS}, {describe_layers(SERIES_LAYERS)})",
            "with the input side chosen for each activation count. *One object per cell* is what existing Blender",
            "neural-network scripts do: one object per pixel sharing a quad mesh, created with `bpy.data.objects.new`",
            "and linked into a collection, its location computed in Python, its activation stored as a custom",
            "property and the object color; timed (reading the bundle, creation and first depsgraph evaluation) on",
            f"the same bundles until it first takes more than {format_seconds(naive_limit)} or the next size would not",
            "fit in memory. *time ratio*: its time over ours.",
            "",
            *series,
            "",
            f"![Read + build + evaluation time and peak memory by activation count]({PLOT_NAME})",
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser)
    parser.add_argument("--no-plot", action="store_true", help=f"do not draw {PLOT_NAME}")
    parser.add_argument(
        "--naive-limit",
        type=float,
        help="stop timing one object per cell after the first size slower than this (s; default 60, "
        f"{SMOKE_NAIVE_LIMIT:g} with --smoke)",
    )
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--blend", help=argparse.SUPPRESS)
    parser.add_argument("--groups", choices=GROUP_WAYS, default="asset", help=argparse.SUPPRESS)
    parser.add_argument("--asset", help=argparse.SUPPRESS)
    parser.add_argument("--child-reopen", help=argparse.SUPPRESS)
    parser.add_argument("--child-naive", help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_limit is None:
        args.naive_limit = SMOKE_NAIVE_LIMIT if args.smoke else 60.0
    if args.child_build:
        return child_build(args.child_build, args.blend, args.again, args.groups, args.asset)
    if args.child_reopen:
        return child_reopen(args.child_reopen)
    if args.child_naive:
        return child_naive(args.child_naive, args.naive_limit)
    if args.child_baseline:
        _import_bpy(args.child_baseline)
        print(json.dumps({}))
        return

    work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_scene_"))
    try:
        results = measure(work, args.naive_limit, args.smoke)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with benchmarks_file(args) as path:
        write_section(path, SECTION, report(results))
        if path is not None and not args.no_plot:
            plot(results, path.parent / PLOT_NAME)
            print(f"plot written to {path.parent / PLOT_NAME}")


if __name__ == "__main__":
    main()
