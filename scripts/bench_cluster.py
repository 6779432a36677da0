"""Dask cluster: frames and epochs per minute with one process, and with 1 and 2 local workers.

    .venv/bin/python scripts/bench_cluster.py [--no-write] [--benchmarks FILE]
    .venv/bin/python scripts/bench_cluster.py --smoke [--benchmarks FILE]

Each case is one whole command in its own Python, timed from start to finish (start-up,
the cluster's workers and everything the client does included), as a user runs it:

- rendering: ``scripts/render.py --bundle DESIGN --camera orbit --animation`` of the digits
  design (``presets/digits_cnn.json``, random weights, no TensorFlow), 320x180, Cycles at 8
  samples, 12 frames: in one process, then with ``--dask local:1`` and ``--dask local:2``;
- extraction: ``python -m blender_cnn.extract RUN`` of a run of the CIFAR-like CNN (6 checkpoints
  of random weights, 10 samples, importance on): serially, then with ``--dask local:1`` and
  ``--dask local:2``.

Frames (epochs) per minute are the count divided by the whole command's time. docs/scaling.md
explains what stays serial and what N machines would gain. Writes the section "Dask cluster:
frames and epochs per minute" of docs/BENCHMARKS.md, keeping the others. ``--smoke`` renders 3
frames at 64x36 with 1 sample and extracts 2 epochs, into a temporary folder.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import (
    REPO,
    SCRIPTS,
    add_output_arguments,
    benchmarks_file,
    format_seconds,
    measured_line,
    measured_subprocess,
    note_load,
    write_section,
)

SECTION = "Dask cluster: frames and epochs per minute"
SETUPS = ((), ("--dask", "local:1"), ("--dask", "local:2"))
RENDER = {"width": 320, "height": 180, "samples": 8, "frames": 12}
SMOKE_RENDER = {"width": 64, "height": 36, "samples": 1, "frames": 3}
EPOCHS, SAMPLES = 6, 10
SMOKE_EPOCHS, SMOKE_SAMPLES = 2, 2


def design_bundle(folder):
    """The digits design as a bundle (numpy only): what the render cases show."""
    import json

    from blender_cnn.core.design import design_bundle as write_design_bundle

    design = json.loads((REPO / "presets" / "digits_cnn.json").read_text())
    return write_design_bundle(design, folder / "digits_design.bcnn.npz", seed=0)


def render_rows(work, settings):
    bundle = design_bundle(work)
    rows = []
    for setup in SETUPS:
        output = work / f"frames{len(rows)}"
        command = [
            SCRIPTS / "render.py",
            "--bundle",
            bundle,
            "--camera",
            "orbit",
            "--animation",
            "--frames",
            "1",
            str(settings["frames"]),
            "--width",
            str(settings["width"]),
            "--height",
            str(settings["height"]),
            "--samples",
            str(settings["samples"]),
            "--output",
            f"{output}/",
            *setup,
        ]
        note_load()
        seconds, peak, _printed = measured_subprocess(*command)
        rows.append({"setup": _setup_name(setup), "seconds": seconds, "count": settings["frames"], "peak": peak})
        shutil.rmtree(output, ignore_errors=True)
    return rows


def extraction_rows(work, epochs, samples):
    run = work / "run"
    measured_subprocess(SCRIPTS / "bench.py", "--make-checkpoints", "cifar_like", run, str(epochs), str(samples))
    rows = []
    for setup in SETUPS:
        out = work / f"run{len(rows)}.bcnn.npz"
        note_load()
        seconds, peak, _printed = measured_subprocess("-m", "blender_cnn.extract", run, "--out", out, *setup)
        rows.append({"setup": _setup_name(setup), "seconds": seconds, "count": epochs, "peak": peak})
        out.unlink(missing_ok=True)
    return rows


def _setup_name(setup):
    return "one process" if not setup else f"`--dask {setup[1]}`"


def table(rows, unit):
    lines = [f"| setup | {unit} | whole command | {unit} per minute | speed-up |", "|---|---:|---:|---:|---:|"]
    base = rows[0]["seconds"]
    for row in rows:
        rate = row["count"] / row["seconds"] * 60
        lines.append(
            f"| {row['setup']} | {row['count']} | {format_seconds(row['seconds'])} | {rate:.1f} | "
            f"{base / row['seconds']:.2f}x |"
        )
    return lines


def report(renders, extractions, settings, epochs, samples):
    lines = [
        f"## {SECTION}",
        "",
        *measured_line("bench_cluster.py", packages=("numpy", "bpy", "tensorflow", "distributed")),
        "Whole commands in their own Python, from start to finish: Python's start-up, the local cluster's",
        "worker processes (each imports bpy or TensorFlow once), sending the scene or the samples, and",
        "everything the client does (building the scene, writing frames, writing the bundle) are included.",
        "",
        f"Rendering the digits design, {settings['width']}x{settings['height']}, Cycles at {settings['samples']} "
        f"samples, {settings['frames']} frames of an orbit (`scripts/render.py --animation`):",
        "",
        *table(renders, "frames"),
        "",
        f"Extracting a CIFAR-like run, {epochs} checkpoints x {samples} samples, importance on "
        "(`python -m blender_cnn.extract RUN`):",
        "",
        *table(extractions, "epochs"),
        "",
        "On this 2-core machine the workers share the two cores with each other and with the client, and one",
        "process already renders (or computes an epoch) on both cores, so a local cluster cannot beat it here;",
        "its fixed costs (starting the workers, importing bpy or TensorFlow in each) show instead. The cluster",
        "pays off with machines of their own: docs/scaling.md has the scaling model.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings = SMOKE_RENDER if args.smoke else RENDER
    epochs, samples = (SMOKE_EPOCHS, SMOKE_SAMPLES) if args.smoke else (EPOCHS, SAMPLES)
    work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_cluster_"))  # set TMPDIR to put it elsewhere
    try:
        renders = render_rows(work, settings)
        extractions = extraction_rows(work, epochs, samples)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with benchmarks_file(args) as path:
        write_section(path, SECTION, report(renders, extractions, settings, epochs, samples))
    print(f"whole run: {format_seconds(time.perf_counter() - started)}")


if __name__ == "__main__":
    sys.exit(main())
