"""Render the scene of a designed (untrained) network, for the docs: no TensorFlow involved.

    .venv/bin/python scripts/render_design.py [--preset presets/lenet5.json] [--output docs/designed_lenet5.png]

The design's random weights (seed 0) and the numpy forward pass on a synthetic
pattern make a one-epoch bundle, which the scene builder shows like any import.
"""

import argparse
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", type=Path, default=REPO / "presets" / "lenet5.json")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "designed_lenet5.png")
    parser.add_argument("--pattern", type=int, default=0, help="synthetic input: 0 square, 1 stripe, 2 checkerboard")
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy

    from blender_cnn.core.design import design_bundle, synthetic_inputs
    from blender_cnn.core.presets import load_design
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import render_still, set_up_stage

    design = load_design(args.preset)
    inputs = synthetic_inputs(design["input_shape"])[args.pattern : args.pattern + 1]
    with tempfile.TemporaryDirectory() as work:
        bundle = design_bundle(design, Path(work) / "design.bcnn.npz", seed=0, inputs=inputs)
        bpy.ops.wm.read_homefile(app_template="")
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)
        network = build_network(bundle)
        set_up_stage(network)
        print(render_still(args.output, width=960, height=540, samples=args.samples))


if __name__ == "__main__":
    main()
