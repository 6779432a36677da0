"""Render each built-in look (style preset) on the digits demo and on MobileNetV2, for docs/looks.

    .venv/bin/python scripts/render_looks.py [--output-dir docs/looks] [--looks dark light print glow]
        [--networks demo MobileNetV2] [--width 960] [--samples N] [--timeout 900]

The demo is the trained run ``runs/digits_cnn/digits_cnn.bcnn.npz`` when it is
there (``make demo`` makes it), else the demo's design with random weights
(no TensorFlow). MobileNetV2 is ``keras.applications.MobileNetV2`` at 96x96x3
with random weights looking at a scikit-learn digit, made once into
``out/looks/`` with TensorFlow (``python -m blender_cnn.extract``).

Each render runs in its own Python, stopped after ``--timeout`` seconds:
Eevee aborts the whole process where there is no EGL, and a child keeps each
look from leaking into the next. A look renders with the engine it names
(``engine`` in its preset; Cycles otherwise) and its own shape of frame (the
print look's 7 x 4 inches), ``--width`` pixels wide. Writes
``<network>_<look>.png`` and prints one JSON line per render.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOOKS = ("dark", "light", "print", "glow")
NETWORKS = ("demo", "MobileNetV2")
DEMO_BUNDLE = REPO / "runs" / "digits_cnn" / "digits_cnn.bcnn.npz"
DEMO_PRESET = REPO / "presets" / "digits_cnn.json"
# The demo's sample 3 is a "3"; the digit a random-weight MobileNetV2 looks at is a "0".
DEMO_SAMPLE = 3
ARCHITECTURE_SIDE = 96
WORK = REPO / "out" / "looks"
# Samples per engine when --samples is not given: Cycles converges on these emissive scenes quickly;
# Eevee on software OpenGL pays for every sample, and its depth of field needs some.
DEFAULT_SAMPLES = {"CYCLES": 24, "EEVEE": 16}


def architecture_bundle(side=ARCHITECTURE_SIDE, timeout=900):
    """MobileNetV2 at side x side with random weights and one digit, extracted once into out/looks."""
    bundle = WORK / f"MobileNetV2_{side}.bcnn.npz"
    if bundle.exists():
        return bundle
    WORK.mkdir(parents=True, exist_ok=True)
    model, samples = WORK / f"MobileNetV2_{side}.keras", WORK / f"digit_{side}.npz"
    make = (
        "import os, sys; os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2'); import keras, numpy as np; "
        "from PIL import Image; from sklearn.datasets import load_digits; "
        "side = int(sys.argv[1]); keras.utils.set_random_seed(0); "
        "keras.applications.MobileNetV2(weights=None, input_shape=(side, side, 3)).save(sys.argv[2]); "
        "digits = load_digits(); "
        "image = Image.fromarray((digits.images[0] * (255.0 / 16.0)).astype(np.float32), mode='F'); "
        "grey = np.asarray(image.resize((side, side), Image.BILINEAR), dtype=np.float32).clip(0, 255); "
        "np.savez(sys.argv[3], inputs=np.repeat(grey[None, :, :, None], 3, axis=3), "
        "labels=np.asarray(digits.target[:1], dtype=np.int32))"
    )
    subprocess.run([sys.executable, "-c", make, str(side), str(model), str(samples)], check=True, timeout=timeout)
    subprocess.run(
        [sys.executable, "-m", "blender_cnn.extract", str(model), "--out", str(bundle), "--samples", str(samples)]
        + ["--no-importance"],
        check=True,
        cwd=REPO,
        timeout=timeout,
    )
    return bundle


def demo_bundle(folder):
    if DEMO_BUNDLE.exists():
        return DEMO_BUNDLE
    import numpy as np

    from blender_cnn.core.design import design_bundle

    inputs = np.random.default_rng(11).random((5, 16, 16, 1), dtype=np.float32)
    return design_bundle(DEMO_PRESET, Path(folder) / "digits_cnn.bcnn.npz", seed=7, inputs=inputs)


def render_one(network_name, look, bundle, output, width, samples):
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy

    from blender_cnn.scene import looks
    from blender_cnn.scene.network import build_network, network_bundle
    from blender_cnn.scene.stage import fit_texts, render_still, set_up_stage
    from blender_cnn.scene.style import apply_style, style_path

    started = time.perf_counter()
    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    with tempfile.TemporaryDirectory() as work:
        if network_name == "demo":
            network = build_network(demo_bundle(work), sample=DEMO_SAMPLE)
        else:
            network = build_network(bundle)
    scene = bpy.context.scene
    set_up_stage(network, scene)
    style = apply_style(network, style_path(f"builtin:{look}"), scene)
    # What Fix does: the stage leaves the texts of networks as big as MobileNetV2 at 96 as built, to keep
    # imports quick; a picture for the docs is worth the wait.
    fit_texts(network, scene.camera, scene)
    render = scene.render
    width = width or render.resolution_x
    height = round(width * render.resolution_y / render.resolution_x)
    height += height % 2
    engine = style.get("engine", "CYCLES")
    samples = samples or DEFAULT_SAMPLES[engine]
    built = time.perf_counter() - started
    focused = looks.camera_target_layer(network, scene.camera) if style.get("depth_of_field") else None
    started = time.perf_counter()
    render_still(output, scene, engine, width, height, samples)
    print(
        json.dumps(
            {
                "network": network_name,
                "look": look,
                "engine": engine,
                "size": [width, height],
                "samples": samples,
                "dpi": looks.dpi(scene),
                "focused_layer": None if focused is None else network_bundle(network).layers[focused].name,
                "build_seconds": round(built, 1),
                "render_seconds": round(time.perf_counter() - started, 1),
                "output": str(output),
            }
        ),
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "looks")
    parser.add_argument("--looks", nargs="+", choices=LOOKS, default=list(LOOKS))
    parser.add_argument("--networks", nargs="+", choices=NETWORKS, default=list(NETWORKS))
    parser.add_argument("--width", type=int, default=960, help="pixels across (0: the look's own size)")
    parser.add_argument("--samples", type=int, help="render samples (default: 24 in Cycles, 16 in Eevee)")
    parser.add_argument("--timeout", type=int, default=900, help="stop one render after this many seconds")
    parser.add_argument("--child", nargs=2, metavar=("NETWORK", "LOOK"), help=argparse.SUPPRESS)
    parser.add_argument("--bundle", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        signal.alarm(args.timeout)
        network, look = args.child
        output = args.output_dir / f"{network}_{look}.png"
        return render_one(network, look, args.bundle, output, args.width, args.samples)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    bundle = architecture_bundle() if "MobileNetV2" in args.networks else None
    failed = []
    for network in args.networks:
        for look in args.looks:
            command = [sys.executable, str(Path(__file__).resolve()), "--child", network, look]
            command += ["--output-dir", str(args.output_dir), "--width", str(args.width)]
            command += ["--timeout", str(args.timeout), "--bundle", str(bundle)]
            command += ["--samples", str(args.samples)] if args.samples else []
            started = time.perf_counter()
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode or not lines:
                why = "timed out" if done.returncode == -signal.SIGALRM else f"failed ({done.returncode})"
                print(f"{network} {look}: {why} after {time.perf_counter() - started:.0f} s\n{done.stderr[-2000:]}")
                failed.append(f"{network} {look}")
            else:
                print(lines[-1], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
