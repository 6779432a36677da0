"""Render networks with straight and bundled connections side by side, with their ink and distortion.

    .venv/bin/python scripts/render_bundling.py BUNDLE [BUNDLE ...] [--output-dir docs/bundling] [--samples 16]

For each bundle: the scene built with its default edge selection, the
receptive-field and pooling overlays off, the stage camera framing its
connections (straight and bundled), rendered at Bundling Strength 0 and 1
(Cycles). The ink of each drawing (the share of
the frame's pixels the curves cover, one pixel wide, through the camera's own
projection at the render's size) and the bundled curves' distortion are
printed as a markdown table for docs/bundling.md.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STRENGTHS = {"straight": 0.0, "bundled": 1.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "bundling")
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--samples", type=int, default=16, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy

    from blender_cnn.core.drawing_metrics import distortion, ink
    from blender_cnn.scene.drawn import drawn_curves
    from blender_cnn.scene.network import build_network, set_network_input
    from blender_cnn.scene.stage import camera_projection, configure_render, frame_camera, render_still, set_up_stage

    args.output_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for path in args.bundles:
        bpy.ops.wm.read_homefile(app_template="")
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)
        network = build_network(path, sample=args.sample)
        for name in ("Show Receptive Field", "Show Pooling", "Show Flatten"):
            set_network_input(network, name, False)
        configure_render(bpy.context.scene, "CYCLES", args.width, args.height, args.samples)
        camera = set_up_stage(network)
        # The connections are the subject: frame where they run, straight or bundled.
        ends = []
        for strength in STRENGTHS.values():
            set_network_input(network, "Bundling Strength", strength)
            ends.append(drawn_curves(network).reshape(-1, 3))
        frame_camera(camera, network, margin=1.25, points=np.concatenate(ends)[::7])
        projection = np.array(camera_projection(camera))
        frame = (-1.0, -args.height / args.width, 1.0, args.height / args.width)
        inks, curves = {}, None
        for label, strength in STRENGTHS.items():
            set_network_input(network, "Bundling Strength", strength)
            curves = drawn_curves(network)
            inks[label] = ink(curves, projection, args.width, frame)
            image = render_still(
                args.output_dir / f"{network.name}_{label}.png",
                width=args.width,
                height=args.height,
                samples=args.samples,
            )
            print(f"{network.name} {label}: {image}, ink {inks[label]:.4f}", flush=True)
        drawn = network["blender_cnn_connections"]
        rows.append(
            f"| {network.name} | {sum(entry['drawn'] for entry in drawn):,} of "
            f"{sum(entry['total'] for entry in drawn):,} | {inks['straight']:.4f} | {inks['bundled']:.4f} | "
            f"{inks['bundled'] / inks['straight']:.2f} | {distortion(curves):.3f} |"
        )
    print(
        "\n| network | curves drawn | straight ink | bundled ink | ratio | distortion |\n"
        "|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    main()
