"""Render a network in each map layout (line, circle, grid) and folded, for the docs.

    .venv/bin/python scripts/render_layouts.py [--bundle runs/cifar10_grey/cifar10_grey.bcnn.npz]
        [--output-dir docs/layouts] [--samples 16]

Train and extract the CIFAR-10-greyscale preset first:
    .venv/bin/python scripts/train.py --preset presets/cifar10_grey.json --run-dir runs/cifar10_grey
    .venv/bin/python -m blender_cnn.extract runs/cifar10_grey
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# (file name, per-layer Map Layout, per-layer Fold)
VIEWS = (("line", 0.0, 0.0), ("circle", 1.0, 0.0), ("grid", 2.0, 0.0), ("folded", 2.0, 1.0), ("between", 1.5, 0.0))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "runs" / "cifar10_grey" / "cifar10_grey.bcnn.npz")
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "layouts")
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--channels", type=int, default=16, help="channels shown per layer (0: all)")
    parser.add_argument("--samples", type=int, default=16, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy

    from blender_cnn.scene.network import build_network, set_every_layer_input, set_network_input, space_layers
    from blender_cnn.scene.stage import render_still, set_up_stage

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    network = build_network(args.bundle, sample=args.sample)
    # The layouts are the subject: the first channels of each wide layer, without the
    # two million dense connections and the focus overlays.
    set_every_layer_input(network, "Channels Shown", args.channels)
    for name in ("Show Connections", "Show Receptive Field", "Show Pooling", "Show Flatten"):
        set_network_input(network, name, False)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for name, layout, fold in VIEWS:
        set_every_layer_input(network, "Map Layout", layout)
        set_every_layer_input(network, "Fold", fold)
        # A folded layer is one map wide: as a line of one.
        space_layers(network, layout=layout if fold < 1 else 0.0, channels_shown=args.channels if fold < 1 else 1)
        set_up_stage(network)
        started = time.perf_counter()
        path = render_still(
            args.output_dir / f"{network.name}_{name}.png", width=args.width, height=args.height, samples=args.samples
        )
        print(f"{name}: {path} ({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
