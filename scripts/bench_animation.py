"""Benchmark the epoch animation: the cost of a frame change, memory per stored epoch, render time per frame.

    .venv/bin/python scripts/bench_animation.py [--no-renders] [--no-write]

Writes the section "## Epoch animation" of docs/BENCHMARKS.md. Each case runs
in its own process on a synthetic bundle (weights and activations drifting
from epoch to epoch, the real layer shapes): the digits demo network with 20
epochs and the CIFAR-10 greyscale CNN with 10 epochs, one sample each, trained
over the timeline by ``animate_training``. A *frame change* is what scrubbing
costs: ``scene.frame_set`` plus the evaluation of the network's nodes, timed
over frames on and between epochs (the median). *Per epoch* is what one more
epoch adds to the stored data: the per-epoch attributes of cells, curves and
kernel points. Renders: the demo scene at 1280x720 mid-animation, Cycles on
the CPU and Eevee (in its own process; it needs EGL).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import REPO, cpu_model, format_bytes, format_seconds, measured_subprocess, update_benchmarks  # noqa: E402
from bench_scene import cifar_greyscale_layers, write_synthetic_bundle  # noqa: E402

SECTION = "Epoch animation"
DIGITS_LAYERS = [("Conv2D", 8), ("MaxPooling2D", None), ("Conv2D", 16), ("MaxPooling2D", None), ("Flatten", None),
                 ("Dense", 32), ("Dense", 10)]
CASES = {"digits demo CNN, 16x16x1, 20 epochs": ("digits", (16, 16, 1), DIGITS_LAYERS, 20, 0.050),
         "CIFAR-10 greyscale CNN, 32x32x1, 10 epochs": ("cifar", (32, 32, 1), cifar_greyscale_layers(), 10, 0.250)}
FRAMES_PER_EPOCH, HOLD = 12, 4
RENDER_SAMPLES = {"CYCLES": 32, "EEVEE": 16}


def _scene(bundle_path):
    import bpy

    from blender_cnn.scene.animation import animate_training
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import set_up_stage

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    network = build_network(bundle_path)
    set_network_input(network, "Show Training Overlay", True)
    set_up_stage(network)
    first, last = animate_training(network, FRAMES_PER_EPOCH, HOLD)
    return bpy, network, first, last


def child_scrub(bundle_path):
    """Median cost of a frame change over the animation, and the bytes each stored epoch takes."""
    bpy, network, first, last = _scene(bundle_path)
    from blender_cnn.scene.network import get_network_input

    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    network.evaluated_get(depsgraph).evaluated_geometry()
    frames = list(range(first, last + 1, 3))
    times = []
    for frame in frames:
        start = time.perf_counter()
        scene.frame_set(frame)
        geometry = network.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
        times.append(time.perf_counter() - start)
        del geometry
    per_epoch = 0
    for data in (get_network_input(network, "Cells").data, network.data, get_network_input(network, "Kernels").data):
        per_epoch += sum(attribute.data_type in {"FLOAT", "INT"} and len(attribute.data) * 4
                         for attribute in data.attributes
                         if attribute.name.startswith(("activation_e", "winner_cell_e", "weight_e"))
                         and attribute.name.split("_e")[-1].split("_")[0] == "0")
    print(json.dumps({"median": statistics.median(times), "max": max(times), "frames": len(frames),
                      "per_epoch": per_epoch, "epochs": len(get_network_input(network, "History").data.vertices),
                      "last_epoch": get_network_input(network, "Epoch")}))


def child_render(bundle_path, engine, output):
    """Time one 1280x720 frame mid-animation (the second render of it: the first compiles shaders)."""
    bpy, _network, first, last = _scene(bundle_path)
    from blender_cnn.scene.stage import render_still

    bpy.context.scene.frame_set((first + last) // 2)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        render_still(output, engine=engine, width=1280, height=720, samples=RENDER_SAMPLES[engine])
        times.append(time.perf_counter() - start)
    print(json.dumps({"first": times[0], "second": times[1]}))


def run_child(*args):
    seconds, peak, printed = measured_subprocess(Path(__file__).resolve(), *args)
    return {**json.loads(printed.strip().splitlines()[-1]), "process_seconds": seconds, "peak": peak}


def report(scrubbing, renders):
    lines = [f"## {SECTION}", "",
             f"Measured {date.today().isoformat()} on {cpu_model()}, 2 cores, Python {platform.python_version()}, "
             "bpy 5.2.3, with `scripts/bench_animation.py`.", "",
             "Synthetic bundles of the real shapes, one sample, weights and activations drifting each epoch; ",
             f"`animate_training` with {FRAMES_PER_EPOCH} frames per epoch and a hold of {HOLD}; the training overlay on.",
             "*Frame change*: `scene.frame_set` plus evaluating the network's nodes, over every third frame of the",
             "animation (median and worst). *Per epoch*: the stored per-epoch attributes (cells' activations and",
             "pooling winners, curves' and kernel points' weights) of one epoch. *Peak*: the process's maximum",
             "resident set (bpy alone: about 0.3 GB).", "",
             "| network | frame change (median) | worst | goal | per epoch | peak |", "|---|---:|---:|---|---:|---:|"]
    for name, result in scrubbing.items():
        goal = CASES[name][4]
        lines.append(f"| {name} | {format_seconds(result['median'])} | {format_seconds(result['max'])} | under "
                     f"{format_seconds(goal)}: {'**met**' if result['median'] < goal else '**NOT met**'} | "
                     f"{format_bytes(result['per_epoch'])} | {format_bytes(result['peak'])} |")
    if renders:
        lines += ["", "Render time per frame, the digits demo mid-animation at 1280x720 (the second render of the "
                      "frame; the first includes Eevee's shader compilation):", "",
                  "| engine | samples | first frame | a frame |", "|---|---:|---:|---:|"]
        for engine, result in renders.items():
            lines.append(f"| {engine.title()} | {RENDER_SAMPLES[engine]} | {format_seconds(result['first'])} | "
                         f"{format_seconds(result['second'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-renders", action="store_true", help="skip the 1280x720 render timings")
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)
    scrubbing, renders = {}, {}
    with tempfile.TemporaryDirectory(prefix="blender_cnn_bench_") as work:
        bundles = {}
        for name, (key, shape, layers, epochs, _goal) in CASES.items():
            bundles[key] = write_synthetic_bundle(Path(work) / f"{key}.bcnn.npz", key, shape, layers, epochs=epochs)
            scrubbing[name] = run_child("--child-scrub", bundles[key])
            print(name, scrubbing[name], flush=True)
        if not args.no_renders:
            for engine in RENDER_SAMPLES:
                try:
                    renders[engine] = run_child("--child-render", bundles["digits"], engine, Path(work) / "frame.png")
                except RuntimeError as error:  # Eevee without EGL aborts its process
                    print(f"{engine}: {error}".splitlines()[0], flush=True)
                print(engine, renders.get(engine), flush=True)
    text = report(scrubbing, renders)
    print(text)
    if not args.no_write:
        update_benchmarks(SECTION, text)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        # Keep the user's own add-ons and settings out of the measured processes.
        os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    if len(sys.argv) > 1 and sys.argv[1] == "--child-scrub":
        sys.path.insert(0, str(REPO))
        child_scrub(sys.argv[2])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-render":
        sys.path.insert(0, str(REPO))
        child_render(*sys.argv[2:5])
    else:
        main()
