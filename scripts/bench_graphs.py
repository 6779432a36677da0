"""Published architectures at 224x224: extraction and scene build time and peak memory.

    .venv/bin/python scripts/bench_graphs.py [--no-write] [--bundles DIR] [--timeout 600] [--benchmarks FILE]
    .venv/bin/python scripts/bench_graphs.py --smoke [--bundles DIR] [--benchmarks FILE]

For each of ``keras.applications`` ResNet50, MobileNetV2 (alpha 1.0),
EfficientNetB0 and DenseNet121 at the real input 224x224x3 (``weights=None``,
so nothing is downloaded; 1000 classes, Keras' default), with one sample
(an 8x8 scikit-learn digit upscaled to 224x224 and repeated over R, G, B,
values 0..255), each step in its own Python so its peak memory is its own
(``measured_subprocess`` from ``bench.py``: ``ru_maxrss`` from ``wait4``):

1. the model is made and saved as ``.keras`` (not reported);
2. ``python -m blender_cnn.extract MODEL.keras --out X.bcnn.npz --samples S.npz
   --no-importance``: extraction time and peak memory, importance off (it is
   on by default);
3. reading the bundle, ``build_network(bundle)`` at the default memory budget
   and the first evaluation of the network's nodes (as ``bench_scene.py``
   forces it), with the cells built and the layers whose maps were capped.

Every child is stopped (SIGALRM) after ``--timeout`` seconds and reported as
not finished. Writes the section "Published architectures at 224x224" of
docs/BENCHMARKS.md, keeping the others. ``--smoke`` runs the same path at
32x32 for one architecture and writes into a temporary folder.

``--bundles DIR`` keeps the ``.keras`` models, the samples and the bundles in
DIR (``scripts/render_gallery.py`` renders them); otherwise they go to a
temporary folder that is removed (about 0.6 GB at 224).
"""

import argparse
import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import numpy as np
from bench import (
    SCRIPTS,
    add_output_arguments,
    benchmarks_file,
    format_bytes,
    format_seconds,
    measured_line,
    measured_subprocess,
    note_load,
    write_section,
)
from bench_scene import GROUP_WAYS, timed_build, use_groups

from blender_cnn.core.budget import DEFAULT_BUDGET_GB

SIDE = 224
SECTION = f"Published architectures at {SIDE}x{SIDE}"
SMOKE_SIDE = 32
# (keras.applications name, its options): the architectures benchmarked, in order.
ARCHITECTURES = (
    ("ResNet50", {}),
    ("MobileNetV2", {"alpha": 1.0}),
    ("EfficientNetB0", {}),
    ("DenseNet121", {}),
)
SMOKE_ARCHITECTURE = "MobileNetV2"
BUILD_GOAL_SECONDS = 15.0
BUILD_GOAL_BYTES = 8e9
# The architecture whose scene must stay within the default memory budget.
BUDGET_ARCHITECTURE = "DenseNet121"
DEFAULT_TIMEOUT = 600

# ``python -m blender_cnn.extract ARGS`` with an alarm that stops it after the timeout (its first argument).
EXTRACT_WITH_ALARM = (
    "import runpy, signal, sys; signal.alarm(int(sys.argv[1])); "
    "sys.argv = ['blender_cnn.extract', *sys.argv[2:]]; "
    "runpy.run_module('blender_cnn.extract', run_name='__main__', alter_sys=True)"
)


def model_path(folder, name, side):
    return Path(folder) / f"{name}_{side}.keras"


def bundle_path(folder, name, side):
    return Path(folder) / f"{name}_{side}.bcnn.npz"


def samples_path(folder, side):
    return Path(folder) / f"samples_{side}.npz"


def write_digit_sample(path, side):
    """One scikit-learn digit (8x8, values 0..16) upscaled to side x side x 3, values 0..255, and its label."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    image = Image.fromarray((digits.images[0] * (255.0 / 16.0)).astype(np.float32), mode="F")
    grey = np.asarray(image.resize((side, side), Image.BILINEAR), dtype=np.float32).clip(0, 255)
    inputs = np.repeat(grey[None, :, :, None], 3, axis=3)
    np.savez(path, inputs=inputs, labels=np.asarray(digits.target[:1], dtype=np.int32))
    return path


# --- what runs in each child process -------------------------------------------------------------------


def child_model(name, side, folder):
    """Save ``keras.applications.<name>`` with random weights at side x side x 3; print its size."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    options = dict(ARCHITECTURES)[name]
    model = getattr(keras.applications, name)(weights=None, input_shape=(side, side, 3), **options)
    model.save(model_path(folder, name, side))
    print(json.dumps({"layers": len(model.layers), "params": int(model.count_params())}))


def child_build(path, blend=None, groups="asset", asset=None):
    """Time reading the bundle, ``build_network`` at the default budget and the first evaluation.

    With ``blend``, the scene is then saved there (not timed), so the gallery need not build it again.
    ``groups`` "code" builds the shared node groups from code and the network's tree in one piece, as before both.
    """
    use_groups(groups, asset)
    bpy, bundle, network, counts, times = timed_build(path)
    from blender_cnn.core.graph import plan_graph
    from blender_cnn.scene.network import CAPPED_PROPERTY, ESTIMATE_PROPERTY, get_network_input, shown_channels
    from blender_cnn.scene.saving import save_without_backup

    graph = plan_graph(bundle.layers)
    shown = shown_channels(network) or {}
    by_name = {layer.name: layer for layer in bundle.layers}
    capped = list(network[CAPPED_PROPERTY])
    print(
        json.dumps(
            {
                "times": times,
                **counts,
                "layers": len(bundle.layers),
                "units": len(graph.units),
                "blocks": len(graph.blocks),
                "activations": sum(int(np.prod(layer.output_shape)) for layer in bundle.layers),
                "cells": len(get_network_input(network, "Cells").data.vertices),
                "estimated_gb": float(network[ESTIMATE_PROPERTY]),
                "capped": capped,
                "cap": max((shown[name] for name in capped), default=0),
                "widest": max((int(by_name[name].output_shape[2]) for name in capped), default=0),
            }
        ),
        flush=True,
    )
    if blend:
        save_without_backup(str(blend))


# --- the parent: models, bundles, runs, report ---------------------------------------------------------


class TimedOut(Exception):
    pass


def run(*command, timeout):
    """``measured_subprocess(*command)`` -> (seconds, peak, stdout); TimedOut when its alarm stopped it."""
    note_load()
    start = time.perf_counter()
    try:
        return measured_subprocess(*command)
    except RuntimeError as error:
        if f"failed ({-signal.SIGALRM})" in str(error):
            raise TimedOut(f"stopped after {time.perf_counter() - start:.0f} s") from None
        raise


def run_child(*args, timeout):
    seconds, peak, printed = run(Path(__file__).resolve(), "--child-timeout", timeout, *args, timeout=timeout)
    # The result is the last JSON line (Blender may print after it, e.g. when it saves a file).
    result = json.loads(next(line for line in reversed(printed.splitlines()) if line.startswith("{")))
    result.update(process_seconds=seconds, peak=peak)
    return result


def measure(folder, architectures, side, timeout, keep_blends=False):
    """Every architecture's model and extraction first (so all bundles exist early), then every scene."""
    from build_node_groups import build as build_node_groups

    samples = write_digit_sample(samples_path(folder, side), side)
    # The shared node groups as the extension build prebuilds them (bench_scene.py compares the two ways).
    asset = build_node_groups(folder / "node_groups.blend")
    baseline = run(SCRIPTS / "bench_scene.py", "--child-baseline", folder, timeout=timeout)[1]
    results = {"baseline_peak": baseline, "side": side, "rows": []}
    for name in architectures:
        row = {"name": name}
        results["rows"].append(row)
        row["model"] = run_child("--child-model", name, side, folder, timeout=timeout)
        keras_file, out = model_path(folder, name, side), bundle_path(folder, name, side)
        row["checkpoint"] = keras_file.stat().st_size
        try:
            seconds, peak, _ = run(
                "-c",
                EXTRACT_WITH_ALARM,
                timeout,
                keras_file,
                "--out",
                out,
                "--samples",
                samples,
                "--no-importance",
                timeout=timeout,
            )
            row["extract"] = {"seconds": seconds, "peak": peak, "bundle": out.stat().st_size}
        except TimedOut as stopped:
            row["extract"] = {"timed_out": str(stopped)}
        print(name, json.dumps(row), flush=True)
    for row in results["rows"]:
        if "timed_out" in row["extract"]:
            continue
        out = bundle_path(folder, row["name"], side)
        blend = ("--blend", out.with_suffix("").with_suffix(".blend")) if keep_blends else ()
        try:
            row["scene"] = run_child("--child-build", out, *blend, "--asset", asset, timeout=timeout)
        except TimedOut as stopped:
            row["scene"] = {"timed_out": str(stopped)}
        print(row["name"], json.dumps(row["scene"]), flush=True)
    return results


def total_seconds(scene):
    times = scene["times"]
    return times["load"] + times["build"] + times["evaluate"]


def report(results, timeout):
    side = results["side"]
    extraction = [
        "| architecture | layers | weights | `.keras` | extraction | extraction peak | bundle |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    scenes = [
        "| architecture | units / blocks | activations | cells built | capped layers (maps shown) "
        "| estimated | read bundle | build | first evaluation | total | peak memory |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    verdicts = []
    for row in results["rows"]:
        name, model, extract, scene = row["name"], row["model"], row["extract"], row.get("scene")
        if "timed_out" in extract:
            extraction.append(
                f"| {name} | {model['layers']} | {model['params'] / 1e6:.2f} M "
                f"| {format_bytes(row['checkpoint'])} | did not finish: {extract['timed_out']} | | |"
            )
        else:
            extraction.append(
                f"| {name} | {model['layers']} | {model['params'] / 1e6:.2f} M "
                f"| {format_bytes(row['checkpoint'])} | {format_seconds(extract['seconds'])} "
                f"| {format_bytes(extract['peak'])} | {format_bytes(extract['bundle'])} |"
            )
        if scene is None or "timed_out" in scene:
            why = "not run (no bundle)" if scene is None else f"did not finish: {scene['timed_out']}"
            scenes.append(f"| {name} | | | | | | {why} | | | | |")
            verdicts.append(
                f"- {name}: built in under {BUILD_GOAL_SECONDS:.0f} s and {BUILD_GOAL_BYTES / 1e9:.0f} GB: "
                f"**NOT met** ({why})."
            )
            if name == BUDGET_ARCHITECTURE:
                verdicts.append(
                    f"- {name} within the default memory budget ({DEFAULT_BUDGET_GB:g} GB): **not measured** ({why})."
                )
            continue
        times = scene["times"]
        capped = (
            f"{len(scene['capped'])} of {scene['units']} (first {scene['cap']} of up to {scene['widest']})"
            if scene["capped"]
            else "none"
        )
        total = total_seconds(scene)
        scenes.append(
            f"| {name} | {scene['units']} / {scene['blocks']} | {scene['activations']:,} "
            f"| {scene['cells']:,} | {capped} | {scene['estimated_gb']:.2f} GB "
            f"| {format_seconds(times['load'])} | {format_seconds(times['build'])} "
            f"| {format_seconds(times['evaluate'])} | **{format_seconds(total)}** "
            f"| {format_bytes(scene['peak'])} |"
        )
        verdicts.append(
            f"- {name}: read + build + first evaluation under {BUILD_GOAL_SECONDS:.0f} s: "
            f"**{'met' if total < BUILD_GOAL_SECONDS else 'NOT met'}** ({format_seconds(total)}); "
            f"under {BUILD_GOAL_BYTES / 1e9:.0f} GB peak: "
            f"**{'met' if scene['peak'] < BUILD_GOAL_BYTES else 'NOT met'}** ({format_bytes(scene['peak'])})."
        )
        if name == BUDGET_ARCHITECTURE:
            budget = DEFAULT_BUDGET_GB
            verdicts.append(
                f"- {name} within the default memory budget ({budget:.0f} GB): the process's peak "
                f"{format_bytes(scene['peak'])}: **{'met' if scene['peak'] <= budget * 1e9 else 'NOT met'}**; "
                f"the scene's own estimate {scene['estimated_gb']:.2f} GB "
                f"({'within' if scene['estimated_gb'] <= budget else 'over'} the budget)."
            )
    named = [
        name + (" (alpha 1.0)" if name == "MobileNetV2" else "") for name in (row["name"] for row in results["rows"])
    ]
    names = " and ".join([", ".join(named[:-1]), named[-1]] if len(named) > 1 else named)
    return "\n".join(
        [
            f"## {SECTION}",
            "",
            *measured_line("bench_graphs.py", ("numpy", "bpy", "tensorflow", "keras")),
            f"`keras.applications` {names} at {side}x{side}x3,",
            "`weights=None` (random weights, nothing downloaded) and Keras' default 1000 classes; one epoch",
            f"(the saved model) and one sample: the first scikit-learn digit (8x8) upscaled to {side}x{side}, the",
            "same in R, G and B, values 0..255. Every step runs in its own Python; *peak* is the process's",
            "maximum resident set (`ru_maxrss` from `wait4`), Python with bpy imported and an empty file alone",
            f"peaking at {format_bytes(results['baseline_peak'])}. Each child is stopped after {timeout} s.",
            "",
            "*extraction* is the whole `python -m blender_cnn.extract MODEL.keras --out X.bcnn.npz --samples S.npz",
            "--no-importance` process (Python and TensorFlow start-up included). **Importance is off here**",
            "(`--no-importance`); by default the extractor also computes it, with extra backward passes.",
            "*layers* are Keras' layers (the input included).",
            "",
            *extraction,
            "",
            "*read bundle* is `load_bundle` (the manifest and the arrays' headers), *build* `build_network(bundle)`",
            "(the arrays read from the file as it needs them; the extraction had just written it, so it is in the",
            f"system's file cache) at the default memory budget ({DEFAULT_BUDGET_GB:g} GB),",
            "*first evaluation* the first evaluation of the network's Geometry Nodes (depsgraph update",
            "and `evaluated_geometry()`); *total* is the three together (importing bpy not included).",
            "*units / blocks*: the scene's units (a layer with its plumbing) and collapsible blocks",
            "(`core/graph.py`); every block starts collapsed. *activations* are all layers' outputs;",
            "*cells built* the points the scene holds (one per activation of the units' outputs, plus two",
            "summary maps per feature-map layer). *capped layers*: layers showing only their first maps",
            'because the whole scene would exceed the budget (`network["blender_cnn_capped_layers"]`);',
            '*estimated* the scene\'s own memory estimate (`network["blender_cnn_estimated_gb"]`).',
            "",
            *scenes,
            "",
            *verdicts,
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser)
    parser.add_argument("--bundles", metavar="DIR", help="keep the models, samples and bundles in DIR")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        help="stop any one step after this many seconds (default %(default)s)",
    )
    # Some architectures only: printed, never written (the section would lose the others' rows).
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in ARCHITECTURES], help=argparse.SUPPRESS)
    parser.add_argument("--child-timeout", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-model", nargs=3, metavar=("NAME", "SIDE", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--child-build", help=argparse.SUPPRESS)
    parser.add_argument("--blend", help=argparse.SUPPRESS)
    parser.add_argument("--groups", choices=GROUP_WAYS, default="asset", help=argparse.SUPPRESS)
    parser.add_argument("--asset", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_timeout:
        signal.alarm(args.child_timeout)
    if args.child_model:
        name, side, folder = args.child_model
        return child_model(name, int(side), folder)
    if args.child_build:
        return child_build(args.child_build, args.blend, args.groups, args.asset)

    side = SMOKE_SIDE if args.smoke else SIDE
    architectures = [SMOKE_ARCHITECTURE] if args.smoke else (args.only or [name for name, _ in ARCHITECTURES])
    folder = Path(args.bundles) if args.bundles else Path(tempfile.mkdtemp(prefix="blender_cnn_bench_graphs_"))
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        results = measure(folder, architectures, side, args.timeout, keep_blends=bool(args.bundles))
    finally:
        if not args.bundles:
            shutil.rmtree(folder, ignore_errors=True)
    args.no_write = args.no_write or bool(args.only)
    with benchmarks_file(args) as path:
        write_section(path, SECTION, report(results, args.timeout))
    print(f"whole run: {format_seconds(time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
