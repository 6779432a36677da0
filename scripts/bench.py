"""Time the stages of the demo path and write the figures to docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench.py [--repeats 5] [--no-write]

Training and extraction are timed from scratch in a temporary folder (each in
its own Python, as the demo runs them); the Blender stages are timed in this
process, each the median of several repeats on a fresh file.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRESET = REPO / "presets" / "digits_cnn.json"
BENCHMARKS = REPO / "docs" / "BENCHMARKS.md"
BUILD_GOAL_SECONDS = 2.0


def timed_subprocess(*command):
    start = time.perf_counter()
    subprocess.run([sys.executable, *map(str, command)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def format_seconds(seconds):
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_time(action, repeats, prepare=None):
    times = []
    for _ in range(repeats):
        if prepare:
            prepare()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_"))
    run_dir, bundle_path = work / "run", work / "run" / "digits_cnn.bcnn.npz"
    rows = [
        ("train demo network (8 epochs + epoch 0), own process", timed_subprocess(
            REPO / "scripts" / "train.py", "--preset", PRESET, "--run-dir", run_dir)),
        ("extract bundle (9 epochs x 10 samples), own process", timed_subprocess(
            "-m", "blender_cnn.extract", run_dir, "--out", bundle_path)),
    ]

    os.environ.setdefault("BLENDER_USER_RESOURCES", str(work / "blender_user"))
    sys.path.insert(0, str(REPO))
    start = time.perf_counter()
    import bpy
    rows.append(("import bpy", time.perf_counter() - start))

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.cells import cell_arrays, dense_connections
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import render_still, set_up_stage

    def fresh_file():
        bpy.ops.wm.read_homefile(app_template="")
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)

    bundle = load_bundle(bundle_path)
    rows.append(("load + validate bundle", median_time(lambda: load_bundle(bundle_path), args.repeats)))
    rows.append(("cell and edge arrays (numpy)", median_time(
        lambda: dense_connections(bundle, cell_arrays(bundle)[0]), args.repeats)))
    built = {}

    def build_and_evaluate():
        built["network"] = build_network(bundle, sample=3)
        bpy.context.evaluated_depsgraph_get().update()
        built["network"].evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()

    build_seconds = median_time(build_and_evaluate, args.repeats, prepare=fresh_file)
    rows.append(("build demo scene + first evaluation of its nodes", build_seconds))
    network = built["network"]

    spacing = iter(range(41, 41 + args.repeats))

    def relayout():
        set_network_input(network, "Layer Spacing", float(next(spacing)))
        network.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()

    rows.append(("change Layer Spacing and re-evaluate", median_time(relayout, args.repeats)))
    rows.append(("camera, light, world", median_time(lambda: set_up_stage(network), args.repeats)))
    geometry = network.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
    counts = (f"{len(geometry.mesh.polygons):,} faces, {len(geometry.curves.curves):,} curves")
    for width, height, samples in ((320, 180, 8), (1280, 720, 32)):
        rows.append((f"Cycles CPU render {width}x{height}, {samples} samples", median_time(
            lambda: render_still(work / "bench.png", width=width, height=height, samples=samples), 1)))

    table = ["| stage | time |", "|---|---:|"] + [f"| {label} | {format_seconds(seconds)} |" for label, seconds in rows]
    verdict = "met" if build_seconds < BUILD_GOAL_SECONDS else "NOT met"
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, no GPU in use, Python {platform.python_version()}, "
               f"bpy {bpy.app.version_string}")
    report = "\n".join([
        "# Benchmarks",
        "",
        "Written by `scripts/bench.py` (run it with `make bench`); wall-clock times,",
        f"the median of {args.repeats} runs for the Blender stages, one run for training, extraction and renders.",
        "",
        "## Demo path (digits CNN, 16x16x1 input, 8 layers)",
        "",
        f"Measured {date.today().isoformat()} on {machine}. Scene: {counts}.",
        "",
        *table,
        "",
        f"Goal: building the demo scene takes under {BUILD_GOAL_SECONDS:.0f} s: **{verdict}** "
        f"({format_seconds(build_seconds)}).",
        "",
    ])
    print(report)
    if not args.no_write:
        BENCHMARKS.write_text(report)
        print(f"written to {BENCHMARKS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
