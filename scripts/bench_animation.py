"""Benchmark the epoch animation: the cost of a frame change, memory per stored epoch, render time per frame.

    .venv/bin/python scripts/bench_animation.py [--no-renders] [--no-write] [--benchmarks FILE]
    .venv/bin/python scripts/bench_animation.py --smoke [--benchmarks FILE]

Writes the section "## Epoch animation" of docs/BENCHMARKS.md. Each case runs
in its own process on a synthetic bundle (weights and activations drifting
from epoch to epoch, the real layer shapes): the digits demo network with 20
epochs and the CIFAR-10 greyscale CNN with 10 epochs, one sample each, trained
over the timeline by ``animate_training``. A *frame change* is what scrubbing
costs: ``scene.frame_set`` plus the evaluation of the network's nodes, timed
over frames on and between epochs (the median). *Per epoch* is what one more
epoch adds to the stored data: the per-epoch attributes of cells, curves and
kernel points. Renders: the demo scene at 1280x720 mid-animation, Cycles on
the CPU and Eevee (in its own process; it needs EGL). ``--smoke``: two epochs
of each network (the CIFAR-10 one at 8x8), a tiny Cycles render and no Eevee,
written into a temporary folder.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    SCRIPTS,
    add_output_arguments,
    benchmarks_file,
    format_bytes,
    format_seconds,
    measured_child,
    measured_line,
    write_section,
)
from bench_scene import cifar_greyscale_layers, digits_demo_layers, write_synthetic_bundle

SECTION = "Epoch animation"
# (key, name, input shape, layers, epochs, goal for the median frame change in seconds)
CASES = (
    ("digits", "digits demo CNN", (16, 16, 1), digits_demo_layers(), 20, 0.050),
    ("cifar", "CIFAR-10 greyscale CNN", (32, 32, 1), cifar_greyscale_layers(), 10, 0.250),
)
SMOKE_CASES = (
    ("digits", "digits demo CNN", (16, 16, 1), digits_demo_layers(), 2, 0.050),
    ("cifar", "CIFAR-10 greyscale CNN", (8, 8, 1), cifar_greyscale_layers(), 2, 0.250),
)
FRAMES_PER_EPOCH, HOLD = 12, 4
# The first case again, with a sweep and Inspect's numbers shown (child_scrub's ``annotated``).
ANNOTATED_KEY = "digits annotated"
ANNOTATED_NOTE = "a conv1 sweep and an inspected conv2 pixel shown"
RENDER_SAMPLES = {"CYCLES": 32, "EEVEE": 16}
RENDER_SIZE = (1280, 720)
SMOKE_RENDER_SAMPLES, SMOKE_RENDER_SIZE = {"CYCLES": 1}, (64, 36)


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


def child_scrub(bundle_path, annotated=False):
    """Median cost of a frame change over the animation, and the bytes each stored epoch takes.

    ``annotated``: also the lesson on convolution the add-on shows: the first convolution's window sweeping
    across its first map over the same frames (its products and their sum written beside it), and a pixel of
    the second convolution inspected (its 72 inputs, weights and products on their cells).
    """
    bpy, network, first, last = _scene(bundle_path)
    from blender_cnn.scene.network import get_network_input

    if annotated:
        _annotate(network, first, last)

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
        per_epoch += sum(
            attribute.data_type in {"FLOAT", "INT"} and len(attribute.data) * 4
            for attribute in data.attributes
            if attribute.name.startswith(("activation_e", "winner_cell_e", "weight_e"))
            and attribute.name.split("_e")[-1].split("_")[0] == "0"
        )
    print(
        json.dumps(
            {
                "median": statistics.median(times),
                "max": max(times),
                "frames": len(frames),
                "per_epoch": per_epoch,
                "epochs": len(get_network_input(network, "History").data.vertices),
                "last_epoch": get_network_input(network, "Epoch"),
            }
        )
    )


def _annotate(network, first, last):
    import bpy

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.scene.animation import animate_sweep
    from blender_cnn.scene.inspection import inspect_network_cell

    scene = bpy.context.scene
    frame_range = scene.frame_start, scene.frame_end
    bundle = load_bundle(network["blender_cnn_bundle"])
    convolutions = [layer for layer in bundle.layers if layer.type == "Conv2D"]
    rows, cols, _channels = convolutions[1].output_shape
    inspect_network_cell(network, convolutions[1].name, (rows // 2, cols // 2, 0))
    animate_sweep(network, convolutions[0].name, start_frame=first, frames=last - first + 1)
    scene.frame_start, scene.frame_end = frame_range


def child_render(bundle_path, engine, output, width, height, samples):
    """Time one frame mid-animation, twice (the first render of it compiles shaders)."""
    bpy, _network, first, last = _scene(bundle_path)
    from blender_cnn.scene.stage import render_still

    bpy.context.scene.frame_set((first + last) // 2)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        render_still(output, engine=engine, width=int(width), height=int(height), samples=int(samples))
        times.append(time.perf_counter() - start)
    print(json.dumps({"first": times[0], "second": times[1]}))


def run_child(*args):
    return measured_child(Path(__file__).resolve(), *args)


def case_name(name, shape, epochs):
    return f"{name}, {'x'.join(map(str, shape))}, {epochs} epochs"


def report(cases, scrubbing, renders, baseline_peak, render_size, render_samples):
    lines = [
        f"## {SECTION}",
        "",
        *measured_line("bench_animation.py", ("numpy", "bpy")),
        "",
        "Synthetic bundles of the real shapes, one sample, weights (kernels too) and activations drifting each epoch;",
        f"`animate_training` with {FRAMES_PER_EPOCH} frames per epoch and a hold of {HOLD}; the training overlay on.",
        f"The last row: the demo with {ANNOTATED_NOTE}: `animate_sweep` over the same frames and `inspect_network_cell`,",
        "every number following the epoch (and the sweep) as it is scrubbed.",
        "*Frame change*: `scene.frame_set` plus evaluating the network's nodes, over every third frame of the",
        "animation (median and worst). *Per epoch*: the stored per-epoch attributes (cells' activations and",
        "pooling winners, curves' and kernel points' weights) of one epoch. *Peak*: the process's maximum",
        f"resident set (Python with bpy imported and an empty file alone: {format_bytes(baseline_peak)}).",
        "",
        "| network | frame change (median) | worst | goal | per epoch | peak |",
        "|---|---:|---:|---|---:|---:|",
    ]
    rows = [(key, case_name(name, shape, epochs), goal) for key, name, shape, _layers, epochs, goal in cases]
    if ANNOTATED_KEY in scrubbing:
        _key, name, shape, _layers, epochs, goal = cases[0]
        rows.append((ANNOTATED_KEY, f"{case_name(name, shape, epochs)}, {ANNOTATED_NOTE}", goal))
    for key, title, goal in rows:
        result = scrubbing[key]
        lines.append(
            f"| {title} | {format_seconds(result['median'])} "
            f"| {format_seconds(result['max'])} | under {format_seconds(goal)}: "
            f"{'**met**' if result['median'] < goal else '**NOT met**'} | "
            f"{format_bytes(result['per_epoch'])} | {format_bytes(result['peak'])} |"
        )
    if renders:
        width, height = render_size
        lines += [
            "",
            f"Render time per frame, the digits demo mid-animation at {width}x{height} (the second "
            "render of the frame; the first includes Eevee's shader compilation):",
            "",
            "| engine | samples | first frame | a frame |",
            "|---|---:|---:|---:|",
        ]
        for engine, result in renders.items():
            if result is None:
                lines.append(f"| {engine.title()} | {render_samples[engine]} | did not run (no EGL?) | |")
            else:
                lines.append(
                    f"| {engine.title()} | {render_samples[engine]} | {format_seconds(result['first'])} | "
                    f"{format_seconds(result['second'])} |"
                )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-renders", action="store_true", help="skip the render timings")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    cases = SMOKE_CASES if args.smoke else CASES
    render_samples = SMOKE_RENDER_SAMPLES if args.smoke else RENDER_SAMPLES
    render_size = SMOKE_RENDER_SIZE if args.smoke else RENDER_SIZE
    scrubbing, renders = {}, {}
    with tempfile.TemporaryDirectory(prefix="blender_cnn_bench_") as work:
        baseline_peak = measured_child(SCRIPTS / "bench_scene.py", "--child-baseline", work)["peak"]
        bundles = {}
        for key, name, shape, layers, epochs, _goal in cases:
            bundles[key] = write_synthetic_bundle(
                Path(work) / f"{key}.bcnn.npz", key, shape, layers, epochs=epochs, conv_kernels=True
            )
            scrubbing[key] = run_child("--child-scrub", bundles[key])
            print(case_name(name, shape, epochs), scrubbing[key], flush=True)
        first_key = cases[0][0]
        scrubbing[ANNOTATED_KEY] = run_child("--child-scrub", bundles[first_key], "annotated")
        print(ANNOTATED_NOTE, scrubbing[ANNOTATED_KEY], flush=True)
        if not args.no_renders:
            for engine, samples in render_samples.items():
                try:
                    renders[engine] = run_child(
                        "--child-render", bundles["digits"], engine, Path(work) / "frame.png", *render_size, samples
                    )
                except RuntimeError as error:  # Eevee without EGL aborts its process
                    print(f"{engine}: {error}".splitlines()[0], flush=True)
                    renders[engine] = None
                print(engine, renders[engine], flush=True)
    with benchmarks_file(args) as path:
        write_section(path, SECTION, report(cases, scrubbing, renders, baseline_peak, render_size, render_samples))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        # Keep the user's own add-ons and settings out of the measured processes.
        os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    if len(sys.argv) > 1 and sys.argv[1] == "--child-scrub":
        child_scrub(sys.argv[2], annotated=sys.argv[3:] == ["annotated"])
    elif len(sys.argv) > 1 and sys.argv[1] == "--child-render":
        child_render(*sys.argv[2:8])
    else:
        main()
