"""The main job on the embedded demo: train, extract, build, render, save.

    .venv/bin/python scripts/demo.py [--output-dir out/demo] [--sample 3] [--samples 64]

Training and extraction run in their own processes (they are the only steps
that need TensorFlow, and each reuses its output when it is already there);
the scene is built and rendered here with the bpy module.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PRESET = REPO / "presets" / "digits_cnn.json"
RUN_DIR = REPO / "runs" / "digits_cnn"
BUNDLE = RUN_DIR / "digits_cnn.bcnn.npz"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "out" / "demo")
    parser.add_argument("--epoch", type=int, default=-1, help="epoch to show (-1: the last)")
    parser.add_argument("--sample", type=int, default=3, help="input sample to show (the demo's sample 3 is a '3')")
    parser.add_argument("--samples", type=int, default=32, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    return parser.parse_args(argv)


def run_step(*command):
    """Run a TensorFlow step in its own Python; its output reuses what is already there."""
    result = subprocess.run([sys.executable, *map(str, command)], cwd=REPO)
    if result.returncode != 0:
        sys.exit(result.returncode)


def main(argv=None):
    args = parse_args(argv)
    timings = []

    def timed(label, action):
        start = time.perf_counter()
        value = action()
        timings.append((label, time.perf_counter() - start))
        return value

    timed(
        "train (checkpoint per epoch)",
        lambda: run_step(REPO / "scripts" / "train.py", "--preset", PRESET, "--run-dir", RUN_DIR),
    )
    timed("extract bundle", lambda: run_step("-m", "blender_cnn.extract", RUN_DIR, "--out", BUNDLE))

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import_start = time.perf_counter()
    import bpy

    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.saving import save_without_backup
    from blender_cnn.scene.stage import render_still, set_up_stage

    timings.append(("import bpy", time.perf_counter() - import_start))

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    try:
        network = timed("build scene", lambda: build_network(BUNDLE, epoch=args.epoch, sample=args.sample))
    except BlenderCNNError as error:
        sys.exit(f"error: {error}")
    timed("camera, light, world", lambda: set_up_stage(network))

    args.output_dir.mkdir(parents=True, exist_ok=True)
    image = args.output_dir / "digits_cnn.png"
    blend = args.output_dir / "digits_cnn.blend"
    timed(
        f"render Cycles {args.width}x{args.height}, {args.samples} samples",
        lambda: render_still(image, engine="CYCLES", width=args.width, height=args.height, samples=args.samples),
    )
    timed("save .blend", lambda: save_without_backup(blend))

    print("\nblender_cnn demo")
    for label, seconds in timings:
        print(f"  {label:<42} {seconds:7.2f} s")
    print(f"  {'total':<42} {sum(s for _, s in timings):7.2f} s")
    print(f"\n  bundle: {BUNDLE.relative_to(REPO)}\n  render: {image}\n  scene:  {blend}")


if __name__ == "__main__":
    main()
