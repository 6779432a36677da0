"""ONNX import: time and peak memory of ``python -m blender_cnn.extract`` on a ResNet50-sized graph.

    .venv/bin/python scripts/bench_onnx.py [--no-write] [--benchmarks FILE]
    .venv/bin/python scripts/bench_onnx.py --smoke [--benchmarks FILE]

The graphs are the ONNX fixtures of the tests (``tests/onnx_models.py``), written
with ``onnx.helper`` as ``torch.onnx.export`` writes them in eval mode: torchvision's
ResNet50 (``resnet50()``: BatchNormalization folded into the convs, 3x224x224,
1000 classes, 25.5 M random weights) and, for scale, ``small_cnn`` (3x16x16).
Each case is one ``python -m blender_cnn.extract SOURCE --out X.bcnn.npz
--samples S.npz`` in its own Python (``measured_subprocess`` from ``bench.py``:
whole-process time, ``ru_maxrss`` from ``wait4``), the samples random 0..1:

- small_cnn, one file, 1 epoch x 4 samples;
- ResNet50, one file, 1 epoch x 1 sample (what the Keras ResNet50 of the
  "Published architectures" section is measured with);
- ResNet50, one file, 1 epoch x 4 samples;
- ResNet50, a run folder of 3 per-epoch files (``epoch_000.onnx``...; the weights
  perturbed a little per epoch), 3 epochs x 4 samples.

Also timed: a Python that only imports what the ONNX extraction imports (start-up).
The ResNet50 figures are compared with the Keras extraction of ``keras.applications``
ResNet50 that docs/BENCHMARKS.md holds, when it holds one. Writes the section
"ONNX import: time and peak memory" of docs/BENCHMARKS.md, keeping the others.
``--smoke`` runs the same cases with ``resnet_block_fused`` (a ResNet stem and one
block at 3x16x16) in place of ResNet50, and writes into a temporary folder.
"""

import argparse
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench import (
    BENCHMARKS,
    REPO,
    add_output_arguments,
    benchmarks_file,
    bundle_summary,
    format_bytes,
    format_seconds,
    measured_line,
    measured_subprocess,
    note_load,
    plural,
    write_section,
)

sys.path.insert(0, str(REPO / "tests"))
import onnx_models  # noqa: E402  (the ONNX fixtures of the tests: numpy and onnx only)

SECTION = "ONNX import: time and peak memory"
KERAS_SECTION = "Published architectures at 224x224"  # bench_graphs.py: Keras ResNet50's extraction
# (key, network builder, description, epochs, samples): the cases, each extracted in its own process.
CASES = (
    ("small_cnn", onnx_models.small_cnn, "small_cnn, 3x16x16", 1, 4),
    ("resnet50", onnx_models.resnet50, "ResNet50, 3x224x224", 1, 1),
    ("resnet50", onnx_models.resnet50, "ResNet50, 3x224x224", 1, 4),
    ("resnet50", onnx_models.resnet50, "ResNet50, 3x224x224", 3, 4),
)
SMOKE_CASES = (
    ("small_cnn", onnx_models.small_cnn, "small_cnn, 3x16x16", 1, 4),
    ("resnet_block_fused", onnx_models.resnet_block_fused, "ResNet block, 3x16x16", 1, 1),
    ("resnet_block_fused", onnx_models.resnet_block_fused, "ResNet block, 3x16x16", 3, 4),
)
RESNET_KEYS = ("resnet50", "resnet_block_fused")
PERTURBATION = 0.01  # each epoch's weights: the previous ones plus this times their std of noise
# What the ONNX extraction imports before it reads a file: its start-up, without any graph.
STARTUP = "import onnx, onnxruntime, blender_cnn.extract.keras_bundle, blender_cnn.extract.onnx_bundle"
EPOCH_LINE = re.compile(r"^epoch \d+: .*\(([\d.]+) s\)", re.MULTILINE)
OUTPUTS_ONLY = re.compile(r"^kept as outputs only .*?: (.*)$", re.MULTILINE)


def write_case(folder, builder, epochs, samples):
    """The case's ONNX file (one epoch) or run folder (several) and samples.npz in ``folder``; return
    ``(source, samples path, file bytes, node count)``."""
    folder.mkdir(parents=True)
    network = builder()
    rng = np.random.default_rng(0)
    paths = []
    for epoch in range(epochs):
        if epoch:
            for layer in network.layers:
                layer.weights = {
                    key: value
                    + rng.normal(0, PERTURBATION * (float(value.std()) or 1.0), value.shape).astype(value.dtype)
                    for key, value in layer.weights.items()
                }
        name = f"epoch_{epoch:03d}.onnx" if epochs > 1 else f"{network.name}.onnx"
        paths.append(onnx_models.save_onnx(network, folder / name))
    c, h, w = network.input_shape
    samples_path = folder / "samples.npz"
    np.savez(
        samples_path,
        inputs=rng.random((samples, h, w, c), dtype=np.float32),
        labels=np.arange(samples, dtype=np.int32) % network.classes,
    )
    import onnx

    nodes = len(onnx.load(str(paths[0]), load_external_data=False).graph.node)
    return (folder if epochs > 1 else paths[0]), samples_path, paths[0].stat().st_size, nodes


def measure(work, cases):
    from blender_cnn.core.bundle import load_bundle

    note_load()
    startup_seconds, startup_peak, _ = measured_subprocess("-c", STARTUP)
    rows = []
    for index, (key, builder, description, epochs, samples) in enumerate(cases):
        folder = work / f"{index}_{key}"
        source, samples_path, file_bytes, nodes = write_case(folder, builder, epochs, samples)
        out = work / f"{index}_{key}.bcnn.npz"
        note_load()
        seconds, peak, printed = measured_subprocess(
            "-m", "blender_cnn.extract", source, "--out", out, "--samples", samples_path
        )
        summary, bundle = bundle_summary(out), load_bundle(out)
        demoted = [name for found in OUTPUTS_ONLY.findall(printed) for name in found.split(", ")]
        rows.append(
            {
                "key": key,
                "model": description,
                "source": "run folder" if epochs > 1 else "file",
                "onnx": file_bytes,
                "nodes": nodes,
                "layers": len(bundle.layers),
                "params": summary["params"],
                "epochs": len(bundle.epochs),
                "samples": summary["samples"],
                "bundle": out.stat().st_size,
                "weights_bytes": summary["weights_bytes"],
                "activations_bytes": summary["activations_bytes"],
                "seconds": seconds,
                "epoch_seconds": [float(found) for found in EPOCH_LINE.findall(printed)],
                "peak": peak,
                "demoted": demoted,
            }
        )
        print(rows[-1], flush=True)
        out.unlink()
        shutil.rmtree(folder, ignore_errors=True)
    return {"startup_seconds": startup_seconds, "startup_peak": startup_peak, "rows": rows}


# --- the Keras figures to compare with -----------------------------------------------------------------

UNITS = {"ms": 1e-3, "s": 1.0, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def _parse(text):
    """``format_seconds`` / ``format_bytes`` text back to a number: "7.06 s" -> 7.06, "976 MB" -> 976e6."""
    number, unit = text.split()
    return float(number.replace(",", "")) * UNITS[unit]


def keras_resnet50(path):
    """``{seconds, peak, bundle, ...}`` of the Keras ResNet50 extraction in ``path``'s KERAS_SECTION, or None."""
    if path is None:
        return None
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    section = re.search(rf"^## {re.escape(KERAS_SECTION)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if not section:
        return None
    measured = re.search(r"^Measured (\S+) .*?, (commit [^,]+), with", section.group(1), re.MULTILINE)
    for line in section.group(1).splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        # | architecture | layers | weights | `.keras` | extraction | extraction peak | bundle |
        if len(cells) == 7 and cells[0] == "ResNet50":
            try:
                return {
                    "layers": int(cells[1]),
                    "params": float(cells[2].split()[0]) * 1e6,
                    "seconds": _parse(cells[4]),
                    "peak": _parse(cells[5]),
                    "bundle": _parse(cells[6]),
                    "measured": f"{measured.group(1)}, {measured.group(2)}" if measured else "date unknown",
                }
            except (ValueError, KeyError, IndexError):
                return None
    return None


def report(results, keras, smoke):
    rows = results["rows"]
    table = [
        "| model | source | ONNX file | nodes | layers | weights | epochs x samples | bundle | extraction "
        "| per epoch (logged) | peak memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        per_epoch = ", ".join(f"{seconds:.1f} s" for seconds in row["epoch_seconds"]) or "not logged"
        table.append(
            f"| {row['model']} | {row['source']} | {format_bytes(row['onnx'])} | {row['nodes']} | {row['layers']} "
            f"| {row['params'] / 1e6:.2f} M | {row['epochs']} x {row['samples']} | {format_bytes(row['bundle'])} "
            f"| {format_seconds(row['seconds'])} | {per_epoch} | {format_bytes(row['peak'])} |"
        )
    resnets = [row for row in rows if row["key"] in RESNET_KEYS]
    single = next((row for row in resnets if row["epochs"] == 1 and row["samples"] == 1), None)
    run = max(resnets, key=lambda row: row["epochs"] * row["samples"], default=None)
    notes = []
    if run is not None and len(run["epoch_seconds"]) > 1:
        first, later = run["epoch_seconds"][0], statistics.median(run["epoch_seconds"][1:])
        logged = sum(run["epoch_seconds"])
        notes.append(
            f"In the {run['epochs']}-epoch run the first epoch takes {first:.1f} s and each later one {later:.1f} s "
            "(the first also runs one sample alone to learn the shapes and checks every layer's numpy forward "
            f"against onnxruntime); the epochs logged add up to {logged:.1f} s of the "
            f"{format_seconds(run['seconds'])} process, the rest being start-up and the bundle's writing "
            f"({format_bytes(run['weights_bytes'])} of weights, {format_bytes(run['activations_bytes'])} of "
            "activations)."
        )
    demoted = sorted({name for row in rows for name in row["demoted"]})
    notes.append(
        "Every layer's translation reproduced onnxruntime's values (none kept as outputs only)."
        if not demoted
        else f"Kept as outputs only (translation disagreeing with onnxruntime): {', '.join(demoted)}."
    )
    if keras is None or single is None:
        goal = [
            "Goal: ONNX import of a ResNet50-sized graph runs within the time and peak memory of the Keras "
            f"extraction of ResNet50: **not compared** (no Keras ResNet50 row in the {KERAS_SECTION} section "
            "of docs/BENCHMARKS.md; the figures are reported only)."
        ]
    else:
        time_met = single["seconds"] <= keras["seconds"]
        memory_met = single["peak"] <= keras["peak"]
        verdict = "met" if time_met and memory_met else "NOT met"
        goal = [
            "Goal: ONNX import of a ResNet50-sized graph runs within the time and peak memory of the Keras "
            f"extraction of `keras.applications` ResNet50 ({KERAS_SECTION}, 1 epoch x 1 sample, measured "
            f"{keras['measured']}: {format_seconds(keras['seconds'])}, {format_bytes(keras['peak'])} peak, "
            f"{format_bytes(keras['bundle'])} bundle): **{verdict}**: 1 epoch x 1 sample here in "
            f"{format_seconds(single['seconds'])} ({'within' if time_met else 'over'}) and "
            f"{format_bytes(single['peak'])} peak ({'within' if memory_met else 'over'})"
            + (" (smoke run: a one-block ResNet at 16x16, the comparison means nothing)." if smoke else ".")
        ]
    return "\n".join(
        [
            f"## {SECTION}",
            "",
            *measured_line("bench_onnx.py", ("numpy", "onnx", "onnxruntime")),
            "`python -m blender_cnn.extract SOURCE --out X.bcnn.npz --samples S.npz` in its own process, from",
            "ONNX files to the bundle, without TensorFlow. The files are the tests' fixtures (`tests/onnx_models.py`),",
            "written with `onnx.helper` as `torch.onnx.export` writes torchvision modules in eval mode",
            "(BatchNormalization folded into the convs, opset 17): ResNet50 is `onnx_models.resnet50()`,",
            "torchvision's ResNet50 (Bottleneck blocks 3, 4, 6, 3) with random He-scaled weights and 1000",
            "classes; small_cnn, for scale, two convs and two dense layers. The run folder holds one file per",
            "epoch (`epoch_000.onnx`...), the weights perturbed a little per epoch; the samples are random 0..1.",
            "*extraction* is the whole process (Python, onnx and onnxruntime start-up included), *per epoch*",
            "the times the extractor logs per file (read and check the file, start onnxruntime, run the samples",
            "with every tensor an output, weights and activations written), *peak memory* the process's maximum",
            "resident set (`ru_maxrss` from `wait4`). *nodes* are the ONNX graph's, *layers* the bundle's (the",
            "input and the ZeroPadding2D layers torch's symmetric stride-2 padding needs included). ONNX files",
            "carry no gradients, so no importance is computed (the add-on shows its activation x weight estimate).",
            f"A Python that only imports onnx, onnxruntime and the extractor takes "
            f"{format_seconds(results['startup_seconds'])} and peaks at {format_bytes(results['startup_peak'])}.",
            "",
            *table,
            "",
            *notes,
            *goal,
            "",
        ]
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_onnx_"))  # set TMPDIR to put it elsewhere
    try:
        results = measure(work, SMOKE_CASES if args.smoke else CASES)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with benchmarks_file(args) as path:
        # The file being written first: in a whole `make bench` run, bench_graphs.py has just written its section.
        keras = keras_resnet50(path) or keras_resnet50(BENCHMARKS)
        write_section(path, SECTION, report(results, keras, args.smoke))
    print(f"whole run: {format_seconds(time.perf_counter() - started)} ({plural(len(results['rows']), 'case')})")


if __name__ == "__main__":
    main()
