"""Time the stages of the demo path and write the figures to docs/BENCHMARKS.md.

    .venv/bin/python scripts/bench.py [--repeats 5] [--no-write]
    .venv/bin/python scripts/bench.py --extraction [--no-write]

Training and extraction are timed from scratch in a temporary folder (each in
its own Python, as the demo runs them); the Blender stages are timed in this
process, each the median of several repeats on a fresh file.

``--extraction`` instead times the extractor and its peak memory on networks
of three sizes, up to VGG16 at 224x224 (random weights, no download). It
needs about 3 GB of free disk for the VGG16 checkpoints, in a temporary
folder removed afterwards. Each section of docs/BENCHMARKS.md is rewritten
on its own, so the two runs keep each other's figures.
"""

import argparse
import os
import platform
import re
import shutil
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


# (name, description, checkpoint epochs, samples): the networks of the extraction benchmark.
EXTRACTION_MODELS = (
    ("demo", "demo digits CNN, 16x16x1", None, None),
    ("cifar_like", "CIFAR-like CNN, 32x32x1", 4, 10),
    ("vgg16", "VGG16, 224x224x3", 3, 4),
)
# Measured once with the extractor before it streamed (commit c5d70cc), for comparison.
VGG16_BEFORE_STREAMING = "54 s and 8.15 GB peak memory"
EXTRACTION_SECTION = "Extraction: time and peak memory by model size"
DEMO_SECTION = "Demo path (digits CNN, 16x16x1 input, 8 layers)"


def timed_subprocess(*command):
    start = time.perf_counter()
    subprocess.run([sys.executable, *map(str, command)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


# 1-minute load averages seen before each measured run, so a report can say how busy the machine was.
LOAD_AVERAGES = []


def note_load():
    """Remember how busy the machine is right before a measured run."""
    LOAD_AVERAGES.append(os.getloadavg()[0])


def load_note():
    """A line saying other processes shared the machine, when they did: the times are then upper bounds."""
    busy = max(LOAD_AVERAGES, default=0.0)
    if busy <= 0.5 * os.cpu_count():
        return []
    return [f"Other processes shared the machine (1-minute load average up to {busy:.1f} before a run on "
            f"{os.cpu_count()} cores), so the times are upper bounds."]


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


def measured_subprocess(*command):
    """Run Python with ``command``; return (seconds, peak resident memory in bytes, its stdout)."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, *map(str, command)], cwd=REPO, stdout=stdout, stderr=stderr,
                                   text=True)
        # wait4 reports this child's own peak; RUSAGE_CHILDREN would give the largest of all children so far.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        printed, errors = stdout.read(), stderr.read()
    if process.returncode:
        raise RuntimeError(f"{' '.join(map(str, command))} failed ({process.returncode}):\n{errors[-3000:]}")
    peak_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # kB on Linux, bytes on macOS
    return seconds, peak_bytes, printed


def make_checkpoints(kind, run_dir, epochs, samples):
    """Save ``epochs`` checkpoints of a random-weight model, weights perturbed a little each epoch, and samples.

    Runs in its own Python (``--make-checkpoints``) so this process never holds TensorFlow.
    """
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    if kind == "vgg16":
        model = keras.applications.VGG16(weights=None, input_shape=(224, 224, 3), classes=10)
    elif kind == "cifar_like":
        layers = keras.layers
        model = keras.Sequential([
            keras.Input((32, 32, 1)),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.Conv2D(128, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
    else:
        raise ValueError(f"unknown benchmark model {kind!r}")
    os.makedirs(run_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        if epoch:
            for variable in model.weights:
                value = variable.numpy()
                variable.assign(value + rng.normal(0, 0.01 * (float(value.std()) or 1.0), value.shape).astype(
                    value.dtype))
        model.save(os.path.join(run_dir, f"epoch_{epoch:03d}.keras"))
    input_shape = tuple(model.inputs[0].shape[1:])
    np.savez(os.path.join(run_dir, "samples.npz"),
             inputs=rng.random((samples, *input_shape), dtype=np.float32),
             labels=np.arange(samples, dtype=np.int32) % 10)
    print(model.count_params())


def format_bytes(count):
    if count >= 1e9:
        return f"{count / 1e9:.2f} GB"
    return f"{count / 1e6:.0f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def extraction_rows(work):
    """``[row]`` of the extraction table, one per model and bundle dtype; the temp folders are removed."""
    rows = []
    for name, description, epochs, samples in EXTRACTION_MODELS:
        run_dir = work / name
        try:
            if name == "demo":
                subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), "--preset", str(PRESET),
                                "--run-dir", str(run_dir)], cwd=REPO, check=True, stdout=subprocess.DEVNULL)
                params = None
            else:
                _, _, printed = measured_subprocess(Path(__file__).resolve(), "--make-checkpoints", name, run_dir,
                                                    str(epochs), str(samples))
                params = int(printed.split()[-1])
            checkpoints = sorted(run_dir.glob("epoch_*.keras"))
            checkpoint_bytes = sum(path.stat().st_size for path in checkpoints) / len(checkpoints)
            for flags in ((), ("--float16",), ("--no-importance",)):
                out = run_dir / f"{name}{''.join(flags)}.bcnn.npz"
                seconds, peak, printed = measured_subprocess("-m", "blender_cnn.extract", run_dir, "--out", out,
                                                             *flags)
                epoch_seconds = [float(found) for found in re.findall(r"^epoch \d+: .*\(([\d.]+) s\)", printed,
                                                                       re.MULTILINE)]
                shape, sample_count = bundle_summary(out)
                rows.append({
                    "model": description, "params": params if params is not None else shape["params"],
                    "epochs": len(checkpoints), "samples": sample_count, "checkpoint": checkpoint_bytes,
                    "dtype": "float16" if "--float16" in flags else "float32", "bundle": out.stat().st_size,
                    "importance": "--no-importance" not in flags,
                    "seconds": seconds,
                    "per_epoch": statistics.median(epoch_seconds) if epoch_seconds else seconds / len(checkpoints),
                    "peak": peak,
                })
                print(rows[-1], flush=True)
                out.unlink()
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    return rows


def bundle_summary(path):
    """(``{"params": total weights}``, sample count) from a bundle's manifest, without reading its arrays."""
    sys.path.insert(0, str(REPO))
    from blender_cnn.core.bundle import load_bundle

    bundle = load_bundle(path)
    return {"params": sum(layer.params for layer in bundle.layers)}, bundle.sample_count


def extraction_report(rows):
    machine = f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    table = ["| model | weights | epochs x samples | checkpoint | activations | importance | bundle | extraction "
             "| per epoch | peak memory |", "|---|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for row in rows:
        table.append(f"| {row['model']} | {row['params'] / 1e6:.2f} M | {row['epochs']} x {row['samples']} "
                     f"| {format_bytes(row['checkpoint'])} | {row['dtype']} "
                     f"| {'yes' if row['importance'] else 'no'} | {format_bytes(row['bundle'])} "
                     f"| {format_seconds(row['seconds'])} | {row['per_epoch']:.1f} s "
                     f"| {format_bytes(row['peak'])} |")
    return "\n".join([
        f"## {EXTRACTION_SECTION}",
        "",
        f"Measured {date.today().isoformat()} on {machine}, with `scripts/bench.py --extraction`.",
        "`python -m blender_cnn.extract` in its own process, from `.keras` checkpoints to the bundle;",
        "*extraction* is the whole process (Python and TensorFlow start-up included), *per epoch* the",
        "median time the extractor logs per checkpoint (load, forward pass, weights and activations written),",
        "*peak memory* the process's maximum resident set (`ru_maxrss` from `wait4`). The CIFAR-like and",
        "VGG16 checkpoints hold random weights, perturbed a little per epoch (the figures do not depend on",
        "training); *checkpoint* is the size of one `.keras` file. The CIFAR-like CNN: 2 x conv 3x3 64,",
        "max pool, 2 x conv 3x3 128, max pool, dense 256, dense 10; VGG16 is `keras.applications.VGG16`",
        "with `weights=None` and 10 classes. *importance*: the gradient x activation importance of every",
        "layer and class (bundle version 3, `docs/importance.md`), on by default, off with `--no-importance`.",
        "It runs the network eagerly with backward passes: one for the samples' own classes and one for",
        "each class no sample is labelled with (here VGG16's 4 samples leave 6 of its 10 classes without one).",
        "",
        *table,
        "",
        "Memory is bounded by one loaded checkpoint plus one batch of layer outputs, not by epochs x",
        "layers: the extractor streams each epoch's arrays into temporary `.npy` files and then into the",
        "bundle. Keras' loader alone takes about four times a `.keras` file's size while it loads.",
        f"Before streaming, the VGG16 float32 extraction took {VGG16_BEFORE_STREAMING} on this machine.",
        "float16 activations halve the activation arrays; for VGG16 the weights (1.6 GB over 3 epochs)",
        "dominate the bundle, so it shrinks by 15% only.",
        "",
    ])


def update_benchmarks(section_title, section_text):
    """Replace the ``## section_title`` section of BENCHMARKS.md (or add it), keeping the others."""
    sections = {}
    if BENCHMARKS.exists():
        for part in re.split(r"^(?=## )", BENCHMARKS.read_text(), flags=re.MULTILINE)[1:]:
            sections[part.splitlines()[0][3:].strip()] = part.rstrip() + "\n"
    sections[section_title] = section_text.rstrip() + "\n"
    known = [DEMO_SECTION, EXTRACTION_SECTION]
    order = [title for title in known if title in sections] + [title for title in sections if title not in known]
    header = ("# Benchmarks\n\nWritten by `scripts/bench.py` (`make bench`: the demo path; "
              "`scripts/bench.py --extraction`: the\nextractor by model size) and `scripts/bench_scene.py` "
              "(the scene by network size). Wall-clock times.\n")
    BENCHMARKS.write_text(header + "".join("\n" + sections[title] for title in order))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument("--extraction", action="store_true",
                        help="benchmark extraction time and memory by model size instead of the demo path")
    parser.add_argument("--make-checkpoints", nargs=4, metavar=("MODEL", "DIR", "EPOCHS", "SAMPLES"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_checkpoints:
        kind, run_dir, epochs, samples = args.make_checkpoints
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        make_checkpoints(kind, run_dir, int(epochs), int(samples))
        return
    if args.extraction:
        work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_extract_"))  # set TMPDIR to put it elsewhere
        try:
            report = extraction_report(extraction_rows(work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(report)
        if not args.no_write:
            update_benchmarks(EXTRACTION_SECTION, report)
            print(f"written to {BENCHMARKS.relative_to(REPO)}")
        return

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
    from blender_cnn.core.cells import cell_arrays
    from blender_cnn.core.connections import dense_connections
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import render_still, set_up_stage

    def fresh_file():
        bpy.ops.wm.read_homefile(app_template="")
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)

    bundle = load_bundle(bundle_path)
    rows.append(("load + validate bundle", median_time(lambda: load_bundle(bundle_path), args.repeats)))
    rows.append(("cell arrays, edge selection and bundling (numpy)", median_time(
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
    instances = geometry.instances_pointcloud()
    counts = (f"{len(instances.points) if instances else 0:,} instanced quads (cells and overlays), "
              f"{len(geometry.mesh.polygons):,} mesh faces (text, bars), {len(geometry.curves.curves):,} curves")
    for width, height, samples in ((320, 180, 8), (1280, 720, 32)):
        rows.append((f"Cycles CPU render {width}x{height}, {samples} samples", median_time(
            lambda: render_still(work / "bench.png", width=width, height=height, samples=samples), 1)))

    table = ["| stage | time |", "|---|---:|"] + [f"| {label} | {format_seconds(seconds)} |" for label, seconds in rows]
    verdict = "met" if build_seconds < BUILD_GOAL_SECONDS else "NOT met"
    machine = (f"{cpu_model()}, {os.cpu_count()} cores, no GPU in use, Python {platform.python_version()}, "
               f"bpy {bpy.app.version_string}")
    report = "\n".join([
        f"## {DEMO_SECTION}",
        "",
        f"The median of {args.repeats} runs for the Blender stages, one run for training, extraction and renders.",
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
        update_benchmarks(DEMO_SECTION, report)
        print(f"written to {BENCHMARKS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
