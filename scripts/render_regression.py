"""Render a fixed set of small scenes, and compare two such sets pixel by pixel: a check that a refactor
changes nothing a user sees.

    .venv/bin/python scripts/render_regression.py --output /tmp/render_after
    PYTHONPATH=/tmp/baseline .venv/bin/python scripts/render_regression.py --output /tmp/render_before
    .venv/bin/python scripts/render_regression.py --compare /tmp/render_before /tmp/render_after

The scenes: the demo bundle (``runs/digits_cnn``, made by ``make demo``) as built and with many of its
inputs moved off their defaults (epoch blend, layouts, folds, importance, focus, All Calculations), a
tiny ResNet-like Keras graph with blocks (random weights, seed 0; needs TensorFlow) with a block half
open, and a designed LeNet-5 (numpy only). Cycles on the CPU, 320x180, 8 samples, a fixed seed.

``PYTHONPATH`` picks which checkout of ``blender_cnn`` renders (a ``git worktree`` of an older commit,
say); the script itself never puts its own checkout before it. ``--compare`` prints each image's
maximum and mean absolute difference (0-255 per channel) and exits 1 when any image differs.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO_BUNDLE = REPO / "runs" / "digits_cnn" / "digits_cnn.bcnn.npz"
LENET = REPO / "presets" / "lenet5.json"
WIDTH, HEIGHT, SAMPLES, SEED = 320, 180, 8, 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--output", type=Path, help="folder the PNGs are written to")
    action.add_argument(
        "--compare", type=Path, nargs=2, metavar=("DIR_A", "DIR_B"), help="compare the PNGs of two --output folders"
    )
    parser.add_argument("--only", nargs="*", help="render only these scenes (names without .png)")
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    render_all(args.output, set(args.only or ()))
    return 0


# ---------------------------------------------------------------- rendering


def render_all(output, only):
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    try:
        import blender_cnn
    except ImportError:
        sys.path.append(str(REPO))
        import blender_cnn
    print(f"rendering with {Path(blender_cnn.__file__).parent}", flush=True)
    output.mkdir(parents=True, exist_ok=True)
    scenes = {
        "demo_default": _demo_default,
        "demo_variant": _demo_variant,
        "demo_importance": _demo_importance,
        "graph_resnet": _graph_resnet,
        "graph_resnet_half_open": _graph_resnet_half_open,
        "designed_lenet5": _designed_lenet5,
    }
    with tempfile.TemporaryDirectory() as work:
        for name, make in scenes.items():
            if only and name not in only:
                continue
            network = make(Path(work))
            _render(network, output / f"{name}.png")


def _fresh_file():
    import bpy

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)


def _build(bundle, **options):
    from blender_cnn.scene.network import build_network

    _fresh_file()
    return build_network(bundle, **options)


def _render(network, path):
    import bpy

    from blender_cnn.scene.stage import configure_render, render_still, set_up_stage

    scene = bpy.context.scene
    configure_render(scene, "CYCLES", WIDTH, HEIGHT, SAMPLES)
    set_up_stage(network, scene)
    scene.cycles.seed = SEED
    scene.cycles.use_animated_seed = False
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 1
    scene.frame_set(1)
    print(render_still(path, scene, "CYCLES", WIDTH, HEIGHT, SAMPLES), flush=True)


def _demo_default(_work):
    return _build(DEMO_BUNDLE)


def _demo_variant(_work):
    from blender_cnn.scene.network import set_every_layer_input, set_network_input, space_layers

    network = _build(DEMO_BUNDLE, epoch=0, sample=1)
    set_every_layer_input(network, "Map Layout", 1.0)
    set_every_layer_input(network, "Fold", 0.4)
    set_every_layer_input(network, "Map Fold", 0.3)
    space_layers(network, layout=1.0)
    for name, value in (
        ("Epoch", 2.5),
        ("Sample", 0.5),
        ("Show Training Overlay", True),
        ("Line Direction", 0.5),
        ("Fold to Max", True),
        ("Bundling Strength", 0.4),
        ("Highlight Neuron", 3),
        ("Normalize Across Network", True),
        ("Focus Layer", 2),
        ("Focus Row", 3),
        ("Focus Column", 2),
        ("All Calculations", True),
        ("All Channels", True),
        ("Kernel Position", 0.7),
    ):
        set_network_input(network, name, value)
    return network


def _demo_importance(_work):
    from blender_cnn.scene.network import set_network_input

    network = _build(DEMO_BUNDLE)
    set_network_input(network, "Show Importance", 1.0)
    set_network_input(network, "Importance Class", 3)
    set_network_input(network, "Show Receptive Field", False)
    return network


def _resnet_bundle(work):
    """A tiny ResNet-like graph: a stem, three residual blocks (the last one with a projection), a head."""
    path = work / "tiny_resnet.bcnn.npz"
    if path.exists():
        return path
    import keras
    import numpy as np

    from blender_cnn.extract.keras_bundle import extract

    keras.utils.set_random_seed(SEED)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", name="stem_conv")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for block, (filters, stride) in enumerate(((8, 1), (8, 1), (16, 2)), start=1):
        shortcut = x
        y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", name=f"block{block}_conv1")(x)
        y = keras.layers.BatchNormalization(name=f"block{block}_bn1")(y)
        y = keras.layers.ReLU(name=f"block{block}_relu1")(y)
        y = keras.layers.Conv2D(filters, 3, padding="same", name=f"block{block}_conv2")(y)
        y = keras.layers.BatchNormalization(name=f"block{block}_bn2")(y)
        if stride != 1 or filters != x.shape[-1]:
            shortcut = keras.layers.Conv2D(filters, 1, strides=stride, name=f"block{block}_project")(x)
        x = keras.layers.Add(name=f"block{block}_add")([y, shortcut])
        x = keras.layers.ReLU(name=f"block{block}_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="tiny_resnet")
    model.save(work / "tiny_resnet.keras")
    samples = np.random.default_rng(SEED).random((2, 16, 16, 3), dtype=np.float32)
    np.savez(work / "samples.npz", inputs=samples, labels=np.array([1, 2], np.int32))
    return extract(work / "tiny_resnet.keras", path, samples=work / "samples.npz", log=lambda *_: None)


def _graph_resnet(work):
    return _build(_resnet_bundle(work), detailed=False)


def _graph_resnet_half_open(work):
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.graph import plan_graph
    from blender_cnn.scene.network import set_network_input

    bundle = load_bundle(_resnet_bundle(work))
    network = _build(bundle, detailed=False)
    blocks = plan_graph(bundle.layers, detailed=False).blocks
    for number, block in enumerate(blocks):
        set_network_input(network, f"Blocks/{block.name}", (0.0, 0.5, 1.0)[number % 3])
    set_network_input(network, "Row Length", 6)
    return network


def _designed_lenet5(work):
    from blender_cnn.core.design import design_bundle, synthetic_inputs
    from blender_cnn.core.presets import load_design

    design = load_design(LENET)
    inputs = synthetic_inputs(design["input_shape"])[:1]
    return _build(design_bundle(design, work / "lenet5.bcnn.npz", seed=SEED, inputs=inputs))


# ---------------------------------------------------------------- comparing


def _read_png(path):
    """RGBA pixels of a PNG as an (H, W, 4) uint8 array, through Blender's image loader."""
    import bpy
    import numpy as np

    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        width, height = image.size
        pixels = np.empty(width * height * image.channels, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return np.round(pixels.reshape(height, width, -1) * 255.0).astype(np.int16)


def compare(folder_a, folder_b):
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    names = sorted({path.name for path in folder_a.glob("*.png")} | {path.name for path in folder_b.glob("*.png")})
    differing = 0
    for name in names:
        a, b = folder_a / name, folder_b / name
        if not (a.exists() and b.exists()):
            print(f"{name}: only in {a.parent if a.exists() else b.parent}")
            differing += 1
            continue
        pixels_a, pixels_b = _read_png(a), _read_png(b)
        if pixels_a.shape != pixels_b.shape:
            print(f"{name}: sizes differ, {pixels_a.shape} and {pixels_b.shape}")
            differing += 1
            continue
        difference = abs(pixels_a - pixels_b)
        changed = (difference.max(axis=-1) > 0).mean()
        print(f"{name}: max {difference.max()}, mean {difference.mean():.4f}, pixels changed {changed:.2%}")
        differing += bool(difference.max())
    print(f"{differing} of {len(names)} images differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
