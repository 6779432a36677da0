"""How the network scene scales: build and evaluation time and peak memory by activation count.

    .venv/bin/python scripts/bench_scene.py [--no-write] [--no-plot] [--naive-limit 60]

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
process. Writes its own section of docs/BENCHMARKS.md (the other sections are
kept) and the plot docs/scene_scaling.png. Temporary files go to a folder
under $TMPDIR (about 1.3 GB at most, for VGG16's .blend) that is removed.
"""

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (REPO, cpu_model, format_bytes, format_seconds, load_note, measured_subprocess,  # noqa: E402
                   note_load, update_benchmarks)

SECTION = "Scene: build time and peak memory by network size"
PLOT = REPO / "docs" / "scene_scaling.png"
CLASS_COUNT = 10

CIFAR_BUILD_GOAL_SECONDS = 1.0
VGG16_GOAL_SECONDS = 15.0
VGG16_GOAL_BYTES = 8e9
SERIES_TARGETS = (1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 5e6, 1.5e7)


# Networks as (layer type, settings) after the input; shapes follow Keras ("same" convs, 2x2 pools that floor).
def cifar_greyscale_layers():
    return [("Conv2D", 64), ("Conv2D", 64), ("MaxPooling2D", None), ("Conv2D", 128), ("Conv2D", 128),
            ("MaxPooling2D", None), ("Flatten", None), ("Dense", 256), ("Dense", CLASS_COUNT)]


def vgg16_conv_layers():
    layers = []
    for filters, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        layers += [("Conv2D", filters)] * convs + [("MaxPooling2D", None)]
    return layers


# The scaling series: one shape of network, its input side chosen to reach each activation count.
SERIES_LAYERS = [("Conv2D", 16), ("Conv2D", 16), ("MaxPooling2D", None), ("Conv2D", 32), ("Conv2D", 32),
                 ("MaxPooling2D", None)]
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
    per_pixel = activation_count((64, 64, SERIES_CHANNELS), SERIES_LAYERS) / 64 ** 2
    side = max(4, round(math.sqrt(target / per_pixel)))
    return min(range(side - 3, side + 4),
               key=lambda s: abs(activation_count((s, s, SERIES_CHANNELS), SERIES_LAYERS) - target))


def write_synthetic_bundle(path, name, input_shape, layers, seed=0, epochs=1, samples=1):
    """A valid bundle: random activations and Dense kernels that drift from epoch to epoch, and falling loss."""
    sys.path.insert(0, str(REPO))
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

    arrays = {"samples/inputs": inputs, "samples/labels": np.zeros(samples, np.int32),
              "samples/predictions": np.full((epochs, samples, CLASS_COUNT), 1 / CLASS_COUNT, np.float32),
              "activations/input": np.broadcast_to(inputs, (epochs, *inputs.shape)).copy(),
              "metrics/loss": np.linspace(2.3, 0.3, epochs, dtype=np.float32),
              "metrics/accuracy": np.linspace(0.1, 0.9, epochs, dtype=np.float32)}
    manifest_layers = [{"name": "input", "type": "InputLayer", "inputs": [], "output_shape": list(input_shape),
                        "config": {}, "params": 0, "weights": [], "activations": "activations/input"}]
    for index, ((kind, setting), shape) in enumerate(zip(layers, shapes[1:]), start=1):
        layer_name = f"{kind.lower()}_{index}"
        config, weights = {}, []
        if kind == "Conv2D":
            # Conv kernels never reach the scene, so they are left out; params still says how many there are.
            config = {"filters": setting, "kernel_size": [3, 3], "padding": "same", "activation": "relu"}
            params = (9 * shapes[index - 1][-1] + 1) * setting
        elif kind == "MaxPooling2D":
            config, params = {"pool_size": [2, 2], "strides": [2, 2], "padding": "valid"}, 0
        elif kind == "Dense":
            config = {"units": setting, "activation": "relu"}
            kernel = drifting((shapes[index - 1][0], setting), 0.05)
            arrays[f"weights/{layer_name}/kernel"] = kernel
            arrays[f"weights/{layer_name}/bias"] = np.zeros((epochs, setting), np.float32)
            weights = [{"name": "kernel", "array": f"weights/{layer_name}/kernel", "shape": list(kernel.shape[1:])},
                       {"name": "bias", "array": f"weights/{layer_name}/bias", "shape": [setting]}]
            params = kernel[0].size + setting
        else:
            params = 0
        arrays[f"activations/{layer_name}"] = np.abs(drifting((samples, *shape)))
        manifest_layers.append({"name": layer_name, "type": kind, "inputs": [manifest_layers[-1]["name"]],
                                "output_shape": list(shape), "config": config, "params": params,
                                "weights": weights, "activations": f"activations/{layer_name}"})
    manifest = {"name": name, "input_shape": list(input_shape),
                "class_names": [f"class {i}" for i in range(CLASS_COUNT)], "epochs": list(range(1, epochs + 1)),
                "layers": manifest_layers, "metrics": {"loss": "metrics/loss", "accuracy": "metrics/accuracy"},
                "samples": {"inputs": "samples/inputs", "labels": "samples/labels",
                            "predictions": "samples/predictions"}}
    return write_bundle(path, manifest, arrays)


# --- what runs in each child process -------------------------------------------------------------------


def _import_bpy(work):
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(Path(work) / "blender_user"))
    sys.path.insert(0, str(REPO))
    start = time.perf_counter()
    import bpy

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    return bpy, time.perf_counter() - start


def _evaluated_counts(bpy, obj):
    geometry = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
    mesh, curves = geometry.mesh, geometry.curves
    instances = geometry.instances_pointcloud()
    # Cells and other squares are instances of one quad each; labels and bars are mesh faces.
    return {"faces": (len(mesh.polygons) if mesh else 0) + (len(instances.points) if instances else 0),
            "curves": len(curves.curves) if curves else 0}


def child_build(bundle_path, blend_path=None, again=False):
    """Time load, cell arrays, build and first evaluation of one bundle; optionally save the .blend."""
    bpy, import_seconds = _import_bpy(Path(bundle_path).parent)
    from blender_cnn.core import cells as cell_data
    from blender_cnn.core.connections import dense_connections
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.scene.network import build_network

    times = {"import": import_seconds}
    start = time.perf_counter()
    bundle = load_bundle(bundle_path)
    times["load"] = time.perf_counter() - start
    # The numpy stage on its own (build_network computes it again), to split the build into its parts.
    start = time.perf_counter()
    layers, arrays = cell_data.cell_arrays(bundle)
    edges = dense_connections(bundle, layers)[0]
    times["arrays"] = time.perf_counter() - start
    activations, cells, edge_count = sum(cells.count for cells in layers), len(arrays["layer"]), len(edges["weight"])
    del layers, arrays, edges
    start = time.perf_counter()
    network = build_network(bundle)
    times["build"] = time.perf_counter() - start
    start = time.perf_counter()
    counts = _evaluated_counts(bpy, network)
    times["evaluate"] = time.perf_counter() - start
    result = {"activations": activations, "cells": cells, "edges": edge_count, **counts, "times": times}
    if again:
        # A second network in the same file: the shared node groups exist already.
        start = time.perf_counter()
        _evaluated_counts(bpy, build_network(bundle))
        times["again"] = time.perf_counter() - start
    if blend_path:
        start = time.perf_counter()
        bpy.ops.wm.save_as_mainfile(filepath=str(blend_path))
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
    print(json.dumps({**counts, "times": {"import": import_seconds, "open": open_seconds,
                                          "evaluate": time.perf_counter() - start}}))


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
    from blender_cnn.core.connections import dense_connections
    from blender_cnn.core.bundle import load_bundle

    layers, arrays = cell_data.cell_arrays(load_bundle(bundle_path))
    # One object per activation: any cells the add-on adds after the layers' own (summaries) are left out.
    activations = sum(cells.count for cells in layers)
    columns = {name: arrays[name][:activations].tolist() for name in ("layer", "channel", "row", "col", "map_rows", "map_cols",
                                                         "channels", "activation", "act_low", "act_high")}
    start = time.perf_counter()
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
    print(json.dumps({"activations": activations, "objects": created, "finished": created == activations, "times": {"build": build_seconds,
                                                "evaluate": time.perf_counter() - start}}))


# --- the parent: bundles, runs, report -------------------------------------------------------------------


def run_child(*args):
    # Other work on the machine slows every figure down; the report says how busy it was.
    note_load()
    seconds, peak, printed = measured_subprocess(Path(__file__).resolve(), *args)
    result = json.loads(printed.strip().splitlines()[-1])
    result.update(process_seconds=seconds, peak=peak)
    return result


def measure(work, naive_limit):
    baseline = run_child("--child-baseline", work)["peak"]
    results = {"baseline_peak": baseline}

    cifar = write_synthetic_bundle(work / "cifar.bcnn.npz", "cifar_greyscale", (32, 32, 1), cifar_greyscale_layers())
    results["cifar"] = run_child("--child-build", cifar, "--again")
    print("CIFAR-10 greyscale:", results["cifar"], flush=True)
    Path(cifar).unlink()

    vgg = write_synthetic_bundle(work / "vgg16.bcnn.npz", "vgg16", (224, 224, 3), vgg16_conv_layers())
    blend = work / "vgg16.blend"
    results["vgg16"] = run_child("--child-build", vgg, "--blend", blend)
    print("VGG16:", results["vgg16"], flush=True)
    results["vgg16_reopen"] = run_child("--child-reopen", blend)
    print("VGG16 reopened:", results["vgg16_reopen"], flush=True)
    blend.unlink()
    Path(vgg).unlink()

    results["series"], naive_done = [], False
    for target in SERIES_TARGETS:
        side = series_input_side(target)
        path = write_synthetic_bundle(work / f"series_{side}.bcnn.npz", f"conv_{side}", (side, side, SERIES_CHANNELS),
                                      SERIES_LAYERS)
        row = {"side": side, "ours": run_child("--child-build", path)}
        if not naive_done:
            row["naive"] = run_child("--child-naive", path, "--naive-limit", naive_limit)
            # Its memory grows by about 30 kB per object; stop before the next size could not fit.
            next_peak = row["naive"]["peak"] * 3.5
            naive_done = (not row["naive"]["finished"] or total_seconds(row["naive"]) > naive_limit
                          or next_peak > 0.8 * available_memory())
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
    return result["times"]["build"] + result["times"]["evaluate"]


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = results["series"]
    ours = [(row["ours"]["activations"], total_seconds(row["ours"]), row["ours"]["peak"]) for row in series]
    naive = [(row["naive"]["activations"], total_seconds(row["naive"]), row["naive"]["peak"]) for row in series
             if "naive" in row and row["naive"]["finished"]]
    vgg = results["vgg16"]
    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(12, 5), dpi=110)
    for axis, column, goal, unit in ((time_axis, 1, VGG16_GOAL_SECONDS, "s"), (memory_axis, 2, VGG16_GOAL_BYTES / 1e9,
                                                                                 "GB")):
        scale = 1 if column == 1 else 1e-9
        axis.loglog([p[0] for p in ours], [p[column] * scale for p in ours], "o-", color="tab:blue",
                    label="blender_cnn (one mesh, Geometry Nodes)")
        axis.loglog([p[0] for p in naive], [p[column] * scale for p in naive], "s--", color="tab:red",
                    label="one object per cell (bpy)")
        vgg_value = total_seconds(vgg) if column == 1 else vgg["peak"] * scale
        axis.loglog([vgg["activations"]], [vgg_value], "*", color="black", markersize=14, label="VGG16 224x224 conv+pool")
        axis.axhline(goal, color="grey", linestyle=":", label="VGG16 goal (15 s, 8 GB)")
        axis.set_xlabel("activations in the network")
        axis.grid(True, which="both", alpha=0.3)
    time_axis.set_ylabel("build + first evaluation (s)")
    time_axis.set_title("Time")
    memory_axis.set_ylabel("peak memory of the process (GB)")
    memory_axis.set_title("Peak memory (includes ~%.2f GB for Python + bpy)" % (results["baseline_peak"] / 1e9))
    figure.suptitle(f"Scene scaling, bpy 5.2.3, {cpu_model()}, {os.cpu_count()} cores")
    # One legend under both plots, where it hides no point.
    figure.legend(*time_axis.get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=10)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path)
    plt.close(figure)


def report(results):
    def times(result):
        t = result["times"]
        return (f"{format_seconds(t['build'])} | {format_seconds(t['evaluate'])} | "
                f"**{format_seconds(t['build'] + t['evaluate'])}** | {format_bytes(result['peak'])}")

    cifar, vgg, reopened = results["cifar"], results["vgg16"], results["vgg16_reopen"]
    networks = ["| network | activations | cells | connections drawn | quads and faces | build | first evaluation | total | peak memory |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for label, result in (("CIFAR-10 greyscale CNN, 32x32x1", cifar), ("VGG16 conv + pool, 224x224x3", vgg)):
        networks.append(f"| {label} | {result['activations']:,} | {result['cells']:,} | {result['edges']:,} | {result['faces']:,} "
                        f"| {times(result)} |")

    series = ["| input | activations | ours: build + evaluation | ours: peak | one object per cell: build "
              "+ evaluation | one object per cell: peak | time ratio |", "|---|---:|---:|---:|---:|---:|---:|"]
    for row in results["series"]:
        ours, naive = row["ours"], row.get("naive")
        cells = f"| {row['side']}x{row['side']}x{SERIES_CHANNELS} | {ours['activations']:,} "
        ours_text = f"| {format_seconds(total_seconds(ours))} | {format_bytes(ours['peak'])} "
        if naive is None:
            naive_text = "| not run | | |"
        elif naive["finished"]:
            naive_text = (f"| {format_seconds(total_seconds(naive))} | {format_bytes(naive['peak'])} "
                          f"| {total_seconds(naive) / total_seconds(ours):.2g}x |")
        else:
            naive_text = (f"| did not finish: {naive['objects']:,} objects in {format_seconds(naive['times']['build'])} "
                          f"| | over {naive['times']['build'] / total_seconds(ours):.0f}x |")
        series.append(cells + ours_text + naive_text)

    cifar_total, vgg_total = total_seconds(cifar), total_seconds(vgg)
    cifar_again = cifar["times"]["again"]
    verdicts = [
        f"- CIFAR-10 greyscale scene built (build + first evaluation) in under {CIFAR_BUILD_GOAL_SECONDS:.0f} s: "
        f"as the first network of a new file, which also builds the node groups every network shares, "
        f"**{'met' if cifar_total < CIFAR_BUILD_GOAL_SECONDS else 'NOT met'}** ({format_seconds(cifar_total)}); "
        f"as another network in a file that has them, "
        f"**{'met' if cifar_again < CIFAR_BUILD_GOAL_SECONDS else 'NOT met'}** ({format_seconds(cifar_again)}).",
        f"- VGG16 built and evaluated in under {VGG16_GOAL_SECONDS:.0f} s: "
        f"**{'met' if vgg_total < VGG16_GOAL_SECONDS else 'NOT met'}** ({format_seconds(vgg_total)}); "
        f"under {VGG16_GOAL_BYTES / 1e9:.0f} GB peak memory: "
        f"**{'met' if vgg['peak'] < VGG16_GOAL_BYTES else 'NOT met'}** ({format_bytes(vgg['peak'])}).",
        f"- Showing importance (Show Importance 1, all classes; `docs/importance.md`) re-evaluates the network "
        f"in {format_seconds(cifar['times']['importance'])} (CIFAR-10 greyscale) and "
        f"{format_seconds(vgg['times']['importance'])} (VGG16); while it is 0 the lookup is skipped.",
        f"- VGG16's .blend saves ({format_seconds(vgg['times']['save'])}, {format_bytes(vgg['blend_bytes'])}) and "
        f"reopens in a fresh process (open {format_seconds(reopened['times']['open'])}, the modifier evaluating "
        f"while the file opens; {reopened['faces']:,} quads and faces, peak "
        f"{format_bytes(reopened['peak'])}): **{'met' if reopened['faces'] == vgg['faces'] else 'NOT met'}**.",
    ]
    machine = f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    return "\n".join([
        f"## {SECTION}",
        "",
        f"Measured {date.today().isoformat()} on {machine}, bpy 5.2.3, with `scripts/bench_scene.py`.",
        *load_note(),
        "Each network is a synthetic bundle (1 epoch, 1 sample, random activations of the real shapes, random",
        "Dense kernels; the scene does not depend on training) built in its own process. *build* is",
        "`build_network` (numpy cell arrays, mesh and curve attributes, node tree), *first evaluation* the",
        "first `evaluated_geometry()` of the network object (the Geometry Nodes: layout, one instanced quad",
        "per cell as the viewport draws them, labels, connections), *peak memory* the process's maximum",
        "resident set (`ru_maxrss` from `wait4`);",
        f"Python with bpy imported and an empty file alone peaks at {format_bytes(results['baseline_peak'])}.",
        "*cells* are the points the scene is built from: one per activation plus the summary maps shown",
        "when a layer is folded.",
        "VGG16 is its 13 conv and 5 pool layers at 224x224x3 (about 15 million activations) without the",
        "classifier. The CIFAR-10 greyscale CNN: 2 x conv 3x3 64, max pool, 2 x conv 3x3 128, max pool,",
        "flatten, dense 256, dense 10: its flatten -> dense 256 has 2.1 million weights, of which the default",
        "selection draws the strongest 78 per neuron, bundled.",
        "",
        *networks,
        "",
        *verdicts,
        "",
        "### Cost as activations grow",
        "",
        f"Synthetic conv networks (input NxNx{SERIES_CHANNELS}, 2 x conv 16, max pool, 2 x conv 32, max pool)",
        "with the input side chosen for each activation count. *One object per cell* is what existing Blender",
        "neural-network scripts do: one object per pixel sharing a quad mesh, created with `bpy.data.objects.new`",
        "and linked into a collection, its location computed in Python, its activation stored as a custom",
        "property and the object color; timed (creation + first depsgraph evaluation) on the same bundles until",
        "it first takes more than a minute or the next size would not fit in memory. *time ratio*: its time over",
        "ours.",
        "",
        *series,
        "",
        f"![Build + evaluation time and peak memory by activation count]({PLOT.name})",
        "",
    ])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument("--no-plot", action="store_true", help="do not draw docs/scene_scaling.png")
    parser.add_argument("--naive-limit", type=float, default=60.0,
                        help="stop timing one object per cell after the first size slower than this (s)")
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--blend", help=argparse.SUPPRESS)
    parser.add_argument("--child-reopen", help=argparse.SUPPRESS)
    parser.add_argument("--child-naive", help=argparse.SUPPRESS)
    parser.add_argument("--child-baseline", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_build:
        return child_build(args.child_build, args.blend, args.again)
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
        results = measure(work, args.naive_limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = report(results)
    print(text)
    if not args.no_write:
        if not args.no_plot:
            plot(results, PLOT)
            print(f"plot written to {PLOT.relative_to(REPO)}")
        update_benchmarks(SECTION, text)
        print(f"written to docs/BENCHMARKS.md")


if __name__ == "__main__":
    main()
