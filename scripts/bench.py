"""Run every benchmark and write docs/BENCHMARKS.md; also time the demo path and the extractor.

    .venv/bin/python scripts/bench.py                    # `make bench`: every section, the file rewritten whole
    .venv/bin/python scripts/bench.py --only demo scene  # these sections only, the others kept
    .venv/bin/python scripts/bench.py --smoke            # every section on tiny inputs, nothing written to docs/
    .venv/bin/python scripts/bench.py --no-write         # print the figures only

Each section of docs/BENCHMARKS.md comes from one script, run in its own
Python, in this order (``SECTIONS``):

- ``demo``: the demo path (this script, ``--section demo``): training and
  extraction from scratch in a temporary folder, each in its own Python as the
  demo runs them, then the Blender stages in this process, each the median of
  ``--repeats`` runs on a fresh file;
- ``extraction``: the extractor's time and peak memory by model size, up to
  VGG16 at 224x224 (this script, ``--section extraction``; random weights, no
  download; about 3 GB of free disk for the VGG16 checkpoints);
- ``scene``, ``bundling``, ``animation``, ``graphs``, ``onnx``: ``scripts/bench_scene.py``,
  ``bench_bundling.py``, ``bench_animation.py``, ``bench_graphs.py``, ``bench_onnx.py``
  (see their docstrings); each also runs on its own.

Without ``--only`` the file is started afresh, so a section no script wrote
any more cannot stay behind; with it, the named sections are replaced and the
others kept. Every section says when, on what machine and at which commit it
was measured. ``--smoke`` runs each script's ``--smoke`` mode: the whole path
on tiny inputs in seconds, its report written to a temporary folder (or to
``--benchmarks FILE``), for CI to catch a broken benchmark; its times mean nothing.
"""

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import date
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPTS = REPO / "scripts"
PRESET = REPO / "presets" / "digits_cnn.json"
BENCHMARKS = REPO / "docs" / "BENCHMARKS.md"
BUILD_GOAL_SECONDS = 2.0

# (key, script, its arguments): every section of BENCHMARKS.md, in the file's order.
SECTIONS = (
    ("demo", "bench.py", ("--section", "demo")),
    ("extraction", "bench.py", ("--section", "extraction")),
    ("scene", "bench_scene.py", ()),
    ("bundling", "bench_bundling.py", ()),
    ("animation", "bench_animation.py", ()),
    ("graphs", "bench_graphs.py", ()),
    ("onnx", "bench_onnx.py", ()),
    ("cluster", "bench_cluster.py", ()),
)

# (name, description, checkpoint epochs, samples): the networks of the extraction benchmark.
EXTRACTION_MODELS = (
    ("demo", "demo digits CNN, 16x16x1", None, None),
    ("cifar_like", "CIFAR-like CNN, 32x32x1", 4, 10),
    ("vgg16", "VGG16, 224x224x3", 3, 4),
)
EXTRACTION_FLAGS = ((), ("--float16",), ("--no-importance",))
EXTRACTION_CLASSES = 10  # every extraction model has 10 classes; samples are labelled 0, 1, 2...
# --smoke: the demo trained for one epoch; the CIFAR-like CNN, one checkpoint and two samples, default flags only.
SMOKE_EPOCHS = 1
SMOKE_EXTRACTION_MODELS = (("cifar_like", "CIFAR-like CNN, 32x32x1", 1, 2),)
SMOKE_RENDERS = ((64, 36, 1), (128, 72, 2))
RENDERS = ((320, 180, 8), (1280, 720, 32))
EXTRACTION_SECTION = "Extraction: time and peak memory by model size"


def demo_section_title():
    """The demo section's title, from the preset: "Demo path (digits CNN, 16x16x1 input, 8 layers)"."""
    preset = json.loads(PRESET.read_text())
    shape = "x".join(map(str, preset["input_shape"]))
    return f"Demo path (digits CNN, {shape} input, {len(preset['layers']) + 1} layers)"


DEMO_SECTION = demo_section_title()


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
    return [
        f"Other processes shared the machine (1-minute load average up to {busy:.1f} before a run on "
        f"{os.cpu_count()} cores), so the times are upper bounds."
    ]


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


def memory_total():
    """The machine's memory in bytes (MemTotal), or None where /proc/meminfo is missing."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def package_version(name):
    """The installed version of the package imported as ``name`` (tensorflow's distribution is tensorflow-cpu)."""
    for distribution in metadata.packages_distributions().get(name, [name]):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(distribution)
    return "not installed"


def plural(count, word):
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def commit():
    """The checked-out commit, with "+ uncommitted changes" when tracked files differ from it.

    The files the benchmarks themselves write (BENCHMARKS.md and its plot) do not count.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!docs/BENCHMARKS.md",
                ":!docs/scene_scaling.png",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown commit"
    return f"commit {head}" + (" + uncommitted changes" if changed else "")


def machine(packages=("numpy",)):
    """The CPU, cores, memory, Python and ``packages``' versions, as measured now."""
    memory = memory_total()
    parts = [cpu_model(), f"{os.cpu_count()} cores"] + ([format_bytes(memory) + " RAM"] if memory else [])
    parts.append(f"Python {platform.python_version()}")
    parts += [f"{name} {package_version(name)}" for name in packages]
    return ", ".join(parts)


def measured_line(script, packages=("numpy",)):
    """The first line of a section: when, on what, at which commit and with which script; then the load note."""
    return [
        f"Measured {date.today().isoformat()} on {machine(packages)}, {commit()}, with `scripts/{script}`.",
        *load_note(),
    ]


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
        process = subprocess.Popen(
            [sys.executable, *map(str, command)], cwd=REPO, stdout=stdout, stderr=stderr, text=True
        )
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


def measured_child(script, *args):
    """Run ``script`` with ``args`` in its own Python (``measured_subprocess``, the machine's load noted first);
    the last JSON line it printed (Blender may print after it), with its ``process_seconds`` and ``peak``."""
    note_load()
    seconds, peak, printed = measured_subprocess(script, *args)
    result = json.loads(next(line for line in reversed(printed.splitlines()) if line.startswith("{")))
    result.update(process_seconds=seconds, peak=peak)
    return result


def make_checkpoints(kind, run_dir, epochs, samples):
    """Save ``epochs`` checkpoints of a random-weight model, weights perturbed a little each epoch, and samples.

    Runs in its own Python (``--make-checkpoints``) so this process never holds TensorFlow.
    """
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    if kind == "vgg16":
        model = keras.applications.VGG16(weights=None, input_shape=(224, 224, 3), classes=EXTRACTION_CLASSES)
    elif kind == "cifar_like":
        # The CIFAR-10 greyscale CNN of bench_scene.py, as Keras layers.
        from bench_scene import CLASS_COUNT, cifar_greyscale_layers

        assert CLASS_COUNT == EXTRACTION_CLASSES
        layers, stack = keras.layers, cifar_greyscale_layers()
        make = {
            "Conv2D": lambda filters, _last: layers.Conv2D(filters, 3, padding="same", activation="relu"),
            "MaxPooling2D": lambda _setting, _last: layers.MaxPooling2D(),
            "Flatten": lambda _setting, _last: layers.Flatten(),
            "Dense": lambda units, last: layers.Dense(units, activation="softmax" if last else "relu"),
        }
        model = keras.Sequential(
            [keras.Input((32, 32, 1))]
            + [make[kind](setting, index == len(stack) - 1) for index, (kind, setting) in enumerate(stack)]
        )
    else:
        raise ValueError(f"unknown benchmark model {kind!r}")
    os.makedirs(run_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        if epoch:
            for variable in model.weights:
                value = variable.numpy()
                variable.assign(
                    value + rng.normal(0, 0.01 * (float(value.std()) or 1.0), value.shape).astype(value.dtype)
                )
        model.save(os.path.join(run_dir, f"epoch_{epoch:03d}.keras"))
    input_shape = tuple(model.inputs[0].shape[1:])
    np.savez(
        os.path.join(run_dir, "samples.npz"),
        inputs=rng.random((samples, *input_shape), dtype=np.float32),
        labels=np.arange(samples, dtype=np.int32) % EXTRACTION_CLASSES,
    )
    print(model.count_params())


def format_bytes(count):
    if count >= 1e9:
        return f"{count / 1e9:.2f} GB"
    return f"{count / 1e6:.0f} MB" if count >= 1e6 else f"{count / 1e3:.0f} kB"


def extraction_rows(work, models=EXTRACTION_MODELS, flag_sets=EXTRACTION_FLAGS):
    """``[row]`` of the extraction table, one per model and flags; the temp folders are removed."""
    rows = []
    for name, description, epochs, samples in models:
        run_dir = work / name
        try:
            if name == "demo":
                subprocess.run(
                    [sys.executable, str(SCRIPTS / "train.py"), "--preset", str(PRESET), "--run-dir", str(run_dir)],
                    cwd=REPO,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
                params = None
            else:
                note_load()
                _, _, printed = measured_subprocess(
                    Path(__file__).resolve(), "--make-checkpoints", name, run_dir, str(epochs), str(samples)
                )
                params = int(printed.split()[-1])
            checkpoints = sorted(run_dir.glob("epoch_*.keras"))
            checkpoint_bytes = sum(path.stat().st_size for path in checkpoints) / len(checkpoints)
            for flags in flag_sets:
                out = run_dir / f"{name}{''.join(flags)}.bcnn.npz"
                note_load()
                seconds, peak, printed = measured_subprocess("-m", "blender_cnn.extract", run_dir, "--out", out, *flags)
                epoch_seconds = [
                    float(found) for found in re.findall(r"^epoch \d+: .*\(([\d.]+) s\)", printed, re.MULTILINE)
                ]
                summary = bundle_summary(out)
                rows.append(
                    {
                        "model": description,
                        "params": params if params is not None else summary["params"],
                        "epochs": len(checkpoints),
                        "samples": summary["samples"],
                        "checkpoint": checkpoint_bytes,
                        "dtype": "float16" if "--float16" in flags else "float32",
                        "bundle": out.stat().st_size,
                        "weights_bytes": summary["weights_bytes"],
                        "activations_bytes": summary["activations_bytes"],
                        "importance": "--no-importance" not in flags,
                        "seconds": seconds,
                        "per_epoch": statistics.median(epoch_seconds) if epoch_seconds else seconds / len(checkpoints),
                        "peak": peak,
                    }
                )
                print(rows[-1], flush=True)
                out.unlink()
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    return rows


def bundle_summary(path):
    """Total weights, sample count, and the bytes of the weight and activation arrays of a bundle file."""
    from blender_cnn.core.bundle import load_bundle

    bundle = load_bundle(path)
    with zipfile.ZipFile(path) as archive:
        sizes = [(info.filename, info.file_size) for info in archive.infolist()]
    return {
        "params": sum(layer.params for layer in bundle.layers),
        "samples": bundle.sample_count,
        **{
            f"{kind}_bytes": sum(size for member, size in sizes if member.startswith(f"{kind}/"))
            for kind in ("weights", "activations")
        },
    }


def extraction_report(rows, script="bench.py --section extraction"):
    from bench_scene import cifar_greyscale_layers, describe_layers

    table = [
        "| model | weights | epochs x samples | checkpoint | activations | importance | bundle | extraction "
        "| per epoch | peak memory |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        table.append(
            f"| {row['model']} | {row['params'] / 1e6:.2f} M | {row['epochs']} x {row['samples']} "
            f"| {format_bytes(row['checkpoint'])} | {row['dtype']} "
            f"| {'yes' if row['importance'] else 'no'} | {format_bytes(row['bundle'])} "
            f"| {format_seconds(row['seconds'])} | {row['per_epoch']:.1f} s "
            f"| {format_bytes(row['peak'])} |"
        )
    unlabelled = sorted(
        {(row["model"].split(",")[0], row["samples"]) for row in rows if row["samples"] < EXTRACTION_CLASSES}
    )
    classes_note = "; ".join(
        f"{model}'s {plural(samples, 'sample')} leave {EXTRACTION_CLASSES - samples} of its "
        f"{EXTRACTION_CLASSES} classes without one"
        for model, samples in unlabelled
    )
    classes_note = f" (here {classes_note})" if classes_note else ""
    # What float16 saves, on the largest bundle measured with and without it.
    pairs = {}
    for row in rows:
        if row["importance"]:
            pairs.setdefault(row["model"], {})[row["dtype"]] = row
    float16_note = []
    both = [pair for pair in pairs.values() if len(pair) == 2]
    if both:
        pair = max(both, key=lambda pair: pair["float32"]["bundle"])
        full, half = pair["float32"], pair["float16"]
        float16_note = [
            f"float16 halves the activation arrays only: {full['model']}'s float32 bundle holds "
            f"{format_bytes(full['weights_bytes'])} of weights ({full['epochs']} epochs) and "
            f"{format_bytes(full['activations_bytes'])} of activations, so float16 makes it "
            f"{1 - half['bundle'] / full['bundle']:.0%} smaller ({format_bytes(full['bundle'])} -> "
            f"{format_bytes(half['bundle'])}).",
        ]
    return "\n".join(
        [
            f"## {EXTRACTION_SECTION}",
            "",
            *measured_line(script, ("numpy", "tensorflow", "keras")),
            "`python -m blender_cnn.extract` in its own process, from `.keras` checkpoints to the bundle;",
            "*extraction* is the whole process (Python and TensorFlow start-up included), *per epoch* the",
            "median time the extractor logs per checkpoint (load, forward pass, weights and activations written),",
            "*peak memory* the process's maximum resident set (`ru_maxrss` from `wait4`). The demo network is",
            "trained as `make demo` trains it; the CIFAR-like and VGG16 checkpoints hold random weights,",
            "perturbed a little per epoch (the figures do not depend on training); *checkpoint* is the size of one",
            f"`.keras` file. The CIFAR-like CNN: {describe_layers(cifar_greyscale_layers())}; VGG16 is",
            f"`keras.applications.VGG16` with `weights=None` and {EXTRACTION_CLASSES} classes.",
            "*importance*: the gradient x activation importance of every layer and class (`docs/importance.md`),",
            "on by default, off with `--no-importance`. It runs the network eagerly with backward passes: one for",
            f"the samples' own classes and one for each class no sample is labelled with{classes_note}.",
            "",
            *table,
            "",
            "Memory is bounded by one loaded checkpoint plus one batch of layer outputs, not by epochs x",
            "layers: the extractor streams each epoch's arrays into temporary `.npy` files and then into the",
            "bundle.",
            *float16_note,
            "",
        ]
    )


INTRO = """# Benchmarks

Written by `scripts/bench.py` and the scripts it runs, never by hand. `make bench` reruns every section
below on the current code and rewrites this file whole; `scripts/bench.py --only SECTION...` reruns
some of them ({keys}). Wall-clock times; each section says when, on what machine and at which commit
it was measured.
"""


def update_benchmarks(section_title, section_text, path=None, full_run=None):
    """Replace the ``## section_title`` section of ``path`` (BENCHMARKS.md) or add it at the end, keeping the others.

    The introduction is written anew each time; ``full_run`` (a line) says the sections come from one run.
    """
    path = Path(path or BENCHMARKS)
    sections = {}
    if path.exists():
        for part in re.split(r"^(?=## )", path.read_text(), flags=re.MULTILINE)[1:]:
            sections[part.splitlines()[0][3:].strip()] = part.rstrip() + "\n"
    if section_title is not None:
        sections[section_title] = section_text.rstrip() + "\n"
    intro = INTRO.format(keys=", ".join(f"`{key}`" for key, _, _ in SECTIONS))
    if full_run:
        intro += "\n" + full_run.rstrip() + "\n"
    path.write_text(intro + "".join("\n" + text for text in sections.values()))


def add_output_arguments(parser):
    """The options every bench script takes: --no-write, --smoke and --benchmarks FILE."""
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the whole path on tiny inputs, in seconds, to check the benchmark runs (its times mean "
        "nothing); the report goes to a temporary folder unless --benchmarks names a file",
    )
    parser.add_argument(
        "--benchmarks", type=Path, metavar="FILE", help="write the section into FILE instead of docs/BENCHMARKS.md"
    )


@contextlib.contextmanager
def benchmarks_file(args):
    """The file this run writes its section to: None with --no-write, else --benchmarks, else a temporary
    folder's BENCHMARKS.md for --smoke, else docs/BENCHMARKS.md. A smoke run never writes into docs/."""
    if args.no_write:
        yield None
    elif args.benchmarks:
        if args.smoke and args.benchmarks.resolve().is_relative_to(BENCHMARKS.parent):
            raise SystemExit(f"--smoke writes nothing into {BENCHMARKS.parent}: give --benchmarks another folder")
        yield args.benchmarks
    elif args.smoke:
        with tempfile.TemporaryDirectory(prefix="blender_cnn_bench_smoke_") as folder:
            yield Path(folder) / BENCHMARKS.name
    else:
        yield BENCHMARKS


def write_section(path, title, text):
    """Print the section; write it into ``path`` unless it is None (--no-write)."""
    print(text)
    if path is not None:
        update_benchmarks(title, text, path)
        print(f"written to {path}")


def extraction_section(args, path):
    work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_extract_"))  # set TMPDIR to put it elsewhere
    try:
        if args.smoke:
            rows = extraction_rows(work, SMOKE_EXTRACTION_MODELS, ((),))
        else:
            rows = extraction_rows(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(path, EXTRACTION_SECTION, extraction_report(rows))


def demo_section(args, path):
    repeats = 1 if args.smoke else args.repeats
    epochs = SMOKE_EPOCHS if args.smoke else json.loads(PRESET.read_text())["training"]["epochs"]
    work = Path(tempfile.mkdtemp(prefix="blender_cnn_bench_"))
    try:
        report = demo_report(work, epochs, repeats, SMOKE_RENDERS if args.smoke else RENDERS)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_section(path, DEMO_SECTION, report)


def demo_report(work, epochs, repeats, renders):
    run_dir, bundle_path = work / "run", work / "run" / "digits_cnn.bcnn.npz"
    note_load()
    rows = [
        (
            f"train demo network ({plural(epochs, 'epoch')} + epoch 0), own process",
            timed_subprocess(SCRIPTS / "train.py", "--preset", PRESET, "--run-dir", run_dir, "--epochs", epochs),
        )
    ]
    note_load()
    extract_seconds = timed_subprocess("-m", "blender_cnn.extract", run_dir, "--out", bundle_path)

    os.environ.setdefault("BLENDER_USER_RESOURCES", str(work / "blender_user"))
    start = time.perf_counter()
    import bpy

    import_seconds = time.perf_counter() - start

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.cells import cell_arrays
    from blender_cnn.core.connections import dense_connections
    from blender_cnn.scene.drawn import DrawnInstances
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import render_still, set_up_stage

    def fresh_file():
        bpy.ops.wm.read_homefile(app_template="")
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)

    bundle = load_bundle(bundle_path)
    rows.append(
        (
            f"extract bundle ({plural(len(bundle.epochs), 'epoch')} x {plural(bundle.sample_count, 'sample')}), "
            "own process",
            extract_seconds,
        )
    )
    rows.append(("import bpy", import_seconds))
    rows.append(
        ("read + validate bundle (manifest and array headers)", median_time(lambda: load_bundle(bundle_path), repeats))
    )

    def connections():
        # Each repeat reads the bundle anew: its arrays are read on first use and kept by that bundle.
        fresh = load_bundle(bundle_path)
        dense_connections(fresh, cell_arrays(fresh)[0])

    rows.append(("read bundle + cell arrays, edge selection and bundling (numpy)", median_time(connections, repeats)))
    built = {}

    def read_build_and_evaluate():
        built["network"] = build_network(load_bundle(bundle_path), sample=3)
        bpy.context.evaluated_depsgraph_get().update()
        built["network"].evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()

    build_seconds = median_time(read_build_and_evaluate, repeats, prepare=fresh_file)
    rows.append(("read bundle + build demo scene + first evaluation of its nodes", build_seconds))
    network = built["network"]

    spacing = iter(range(41, 41 + repeats))

    def relayout():
        set_network_input(network, "Layer Spacing", float(next(spacing)))
        network.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()

    rows.append(("change Layer Spacing and re-evaluate", median_time(relayout, repeats)))
    rows.append(("camera, light, world", median_time(lambda: set_up_stage(network), repeats)))
    geometry = network.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
    counts = (
        f"{len(DrawnInstances(geometry, network.matrix_world)):,} instanced quads (cells and overlays), "
        f"{len(geometry.mesh.polygons) if geometry.mesh else 0:,} mesh faces (text, bars), "
        f"{len(geometry.curves.curves) if geometry.curves else 0:,} curves"
    )
    for width, height, samples in renders:
        start = time.perf_counter()
        render_still(work / "bench.png", width=width, height=height, samples=samples)
        rows.append((f"Cycles CPU render {width}x{height}, {plural(samples, 'sample')}", time.perf_counter() - start))

    table = ["| stage | time |", "|---|---:|"] + [f"| {label} | {format_seconds(seconds)} |" for label, seconds in rows]
    verdict = "met" if build_seconds < BUILD_GOAL_SECONDS else "NOT met"
    return "\n".join(
        [
            f"## {DEMO_SECTION}",
            "",
            *measured_line("bench.py --section demo", ("numpy", "bpy", "tensorflow")),
            f"The median of {plural(repeats, 'run')} for the Blender stages, each build on a fresh file from the bundle file",
            "(in the system's file cache), one run for training, extraction and renders.",
            f"Scene: {counts}.",
            "",
            *table,
            "",
            f"Goal: reading the bundle and building the demo scene takes under {BUILD_GOAL_SECONDS:.0f} s: "
            f"**{verdict}** ({format_seconds(build_seconds)}).",
            "",
        ]
    )


def format_duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def run_sections(keys, args, path):
    """Run each section's script in its own Python; return ``[(key, script, seconds, exit code)]``."""
    forwarded = (["--smoke"] if args.smoke else []) + (["--benchmarks", str(path)] if path else ["--no-write"])
    done = []
    for key, script, arguments in SECTIONS:
        if key not in keys:
            continue
        extra = ["--repeats", str(args.repeats)] if key == "demo" else []
        command = [sys.executable, str(SCRIPTS / script), *arguments, *extra, *forwarded]
        print(f"\n=== {key}: {' '.join(command[1:])}", flush=True)
        start = time.perf_counter()
        code = subprocess.run(command, cwd=REPO).returncode
        done.append((key, " ".join([script, *arguments]), time.perf_counter() - start, code))
    return done


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    keys = [key for key, _, _ in SECTIONS]
    parser.add_argument(
        "--only",
        nargs="+",
        choices=keys,
        metavar="SECTION",
        help=f"run these sections only, keeping the others in the file ({', '.join(keys)})",
    )
    parser.add_argument("--extraction", action="store_true", help="the same as --only extraction")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each Blender stage of the demo path (median)")
    add_output_arguments(parser)
    parser.add_argument("--section", choices=("demo", "extraction"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--make-checkpoints", nargs=4, metavar=("MODEL", "DIR", "EPOCHS", "SAMPLES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.make_checkpoints:
        kind, run_dir, epochs, samples = args.make_checkpoints
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        make_checkpoints(kind, run_dir, int(epochs), int(samples))
        return 0
    if args.section:
        with benchmarks_file(args) as path:
            (demo_section if args.section == "demo" else extraction_section)(args, path)
        return 0

    selected = args.only or (["extraction"] if args.extraction else keys)
    whole = selected == keys
    started, day, measured_at = time.perf_counter(), date.today().isoformat(), commit()
    with benchmarks_file(args) as path:
        if whole and path is not None:
            # Started afresh: a section that no script writes any more cannot stay behind.
            path.write_text("")
            update_benchmarks(None, None, path)
        done = run_sections(selected, args, path)
        total = time.perf_counter() - started
        failed = [key for key, _, _, code in done if code]
        print("\n| section | script | wall time | |", "|---|---|---:|---|", sep="\n")
        for key, script, seconds, code in done:
            print(f"| {key} | `scripts/{script}` | {format_duration(seconds)} | {'failed' if code else 'ok'} |")
        print(f"whole run: {format_duration(total)}" + (", written to " + str(path) if path else ""))
        if whole and path is not None and not failed:
            run = "`scripts/bench.py --smoke` (tiny inputs, times meaningless)" if args.smoke else "`make bench`"
            update_benchmarks(
                None,
                None,
                path,
                full_run=(
                    f"Every section below comes from one run of {run} started {day} at {measured_at}; it took "
                    f"{format_duration(total)} ("
                    + ", ".join(f"{key} {format_duration(seconds)}" for key, _, seconds, _ in done)
                    + ")."
                ),
            )
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
