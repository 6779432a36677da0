"""Render what Inspect writes on the demo network, for docs/inspection.md and the README.

    .venv/bin/python scripts/render_inspection.py [--bundle runs/digits_cnn/digits_cnn.bcnn.npz]
        [--output-dir docs/inspection] [--samples 16] [--width 1280] [--height 720]

Three images: a conv2 pixel's window in one pool1 map, close up (each cell's
input value, kernel weight and product); the equation above conv2's map; an
output neuron's equation beside its column, and its strongest inputs' products
on dense1. The demo is shown at its last
epoch with sample 3 (a "3"). Train and extract the demo first (``make demo``).
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "runs" / "digits_cnn" / "digits_cnn.bcnn.npz")
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "inspection")
    parser.add_argument("--samples", type=int, default=16, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy
    from mathutils import Vector

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.nodes.annotations import ANNOTATION_INSPECT_CELL, ANNOTATION_INSPECT_EQUATION
    from blender_cnn.scene import stage
    from blender_cnn.scene.drawn import drawn_quads
    from blender_cnn.scene.focus import cell_centres
    from blender_cnn.scene.inspection import inspect_network_cell
    from blender_cnn.scene.materials import ANNOTATION_MATERIAL
    from blender_cnn.scene.network import build_network, set_network_input

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    bundle = load_bundle(args.bundle)
    network = build_network(bundle, sample=3)
    set_network_input(network, "Sample", 3.0)
    camera = stage.set_up_stage(network)
    args.output_dir.mkdir(parents=True, exist_ok=True)

    def numbers_of(kind):
        """World positions of the glyphs (and plates) of one kind of text."""
        glyphs, _geometry = drawn_quads(network, ANNOTATION_MATERIAL)
        return glyphs.centres()[glyphs.attribute("annotation") == kind]

    def render(name, points, view, margin):
        stage.VIEW_DIRECTION = Vector(view).normalized()
        stage.frame_camera(camera, network, bpy.context.scene, margin=margin, points=points)
        path = stage.render_still(args.output_dir / name, width=args.width, height=args.height, samples=args.samples)
        print(path)

    inspect_network_cell(network, "conv2", (3, 4, 5))
    centres, indices = cell_centres(network)
    pool1 = bundle.layer("pool1").index
    window = (
        (indices[:, 0] == pool1) & (indices[:, 1] == 0) & (abs(indices[:, 2] - 3) <= 1) & (abs(indices[:, 3] - 4) <= 1)
    )
    render("conv2_window.png", centres[window], (1.0, 0.35, -0.25), 1.6)
    conv2 = (indices[:, 0] == bundle.layer("conv2").index) & (indices[:, 1] == 5)
    render(
        "conv2_equation.png",
        np.concatenate([centres[conv2], numbers_of(ANNOTATION_INSPECT_EQUATION)]),
        (1.0, 0.4, -0.2),
        1.15,
    )
    inspect_network_cell(network, "output", 3)
    centres, indices = cell_centres(network)
    output = indices[:, 0] == bundle.layer("output").index
    render(
        "output_neuron.png",
        np.concatenate([centres[output], numbers_of(ANNOTATION_INSPECT_EQUATION), numbers_of(ANNOTATION_INSPECT_CELL)]),
        (1.0, 0.4, -0.2),
        1.2,
    )


if __name__ == "__main__":
    main()
