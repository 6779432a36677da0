"""Render networks with straight and bundled connections, with their ink, distortion and ambiguity.

    .venv/bin/python scripts/render_bundling.py BUNDLE [BUNDLE ...] [--output-dir docs/bundling] [--samples 16]

For each bundle: the scene built with its default edge selection, the
receptive-field and pooling overlays off, the stage camera framing the
connections of its widest layer pair (the most curves: flatten -> dense,
straight and bundled), rendered at Bundling Strength 0 and 1
(Cycles): ``NAME_straight.png`` and ``NAME_bundled.png`` (the default
bundling), and ``NAME_funnel.png``: the same scene bundled as before rails,
every pair through one funnel (``style="funnel"``), its routes written onto
the curves. The ink of each drawing (the share of the frame's pixels the
curves cover, one pixel wide, through the camera's own projection at the
render's size), its ambiguity (``core/drawing_metrics.py``, same projection,
asked about the connections that stand out by weight) and the curves'
distortion are printed as a markdown table for docs/bundling.md.
"""

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
STRENGTHS = {"straight": 0.0, "bundled": 1.0}


def connection_values(network):
    """{"weight", "source_cell", "target_cell"}: per connection curve as evaluated (``drawn_curves``' order)."""
    from blender_cnn.nodes.graph import GRAPH_LINK
    from blender_cnn.scene.drawn import evaluated_geometry, read_attribute

    geometry = evaluated_geometry(network)  # owns the curves read below
    curves = geometry.curves
    names = ("weight", "source_cell", "target_cell")
    if curves is None:
        return {name: np.zeros(0) for name in names}
    link = read_attribute(curves, GRAPH_LINK) if GRAPH_LINK in curves.attributes else np.zeros(len(curves.curves))
    return {name: read_attribute(curves, name)[link == 0] for name in names}


def draw_routes(network, routes):
    """Store ``routes`` (core/bundling.py's Routes, in the curves' order) on the network's connection curves."""
    from blender_cnn.scene.geometry_data import write_attributes

    write_attributes(network.data, routes.curve_arrays(), "CURVE")
    write_attributes(network.data, routes.point_arrays(), "POINT")
    network.data.update_tag()
    network.update_tag()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", type=Path)
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "bundling")
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--samples", type=int, default=16, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--margin", type=float, default=1.25, help="frame size over the subject's extent")
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy

    from blender_cnn.core.bundling import FUNNEL, route_edges
    from blender_cnn.core.drawing_metrics import ambiguity, distortion, ink
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
        # The widest layer pair's connections are the subject: frame where they run, straight or bundled.
        drawn = {}
        for label, strength in STRENGTHS.items():
            set_network_input(network, "Bundling Strength", strength)
            drawn[label] = drawn_curves(network)
        ends = drawn["straight"]
        pairs = np.unique(np.stack([ends[:, 0, 0], ends[:, -1, 0]], axis=1), axis=0, return_inverse=True)[1].ravel()
        widest = pairs == np.bincount(pairs).argmax()
        subject = np.concatenate([curves[widest] for curves in drawn.values()]).reshape(-1, 3)
        frame_camera(camera, network, margin=args.margin, points=subject[:: max(1, len(subject) // 200_000)])
        projection = np.array(camera_projection(camera))
        frame = (-1.0, -args.height / args.width, 1.0, args.height / args.width)
        values = connection_values(network)
        # Neurons by cell, layer pairs by the x of the curves' ends, and the weights: ambiguity asks about the
        # connections that stand out.
        names = {
            "sources": values["source_cell"],
            "targets": values["target_cell"],
            "pairs": pairs,
            "weights": values["weight"],
        }
        looks = [*STRENGTHS, "funnel"]
        measured = {}
        for label in looks:
            if label == "funnel":
                draw_routes(network, route_edges(ends[:, 0], ends[:, -1], ends.shape[1], style=FUNNEL))
            set_network_input(network, "Bundling Strength", STRENGTHS.get(label, 1.0))
            curves = drawn_curves(network)
            measured[label] = (
                ink(curves, projection, args.width, frame),
                ambiguity(curves, projection, args.width, frame, **names),
                distortion(curves),
            )
            image = render_still(
                args.output_dir / f"{network.name}_{label}.png",
                width=args.width,
                height=args.height,
                samples=args.samples,
            )
            print(f"{network.name} {label}: {image}, ink, ambiguity, distortion {measured[label]}", flush=True)
        entries = network["blender_cnn_connections"]
        for label in looks:
            plain, (bundled, confused, bent) = measured["straight"][0], measured[label]
            rows.append(
                f"| {network.name} | {label} | {sum(entry['drawn'] for entry in entries):,} of "
                f"{sum(entry['total'] for entry in entries):,} | {bundled:.4f} | {bundled / plain:.2f} | "
                f"{confused:.2f} | {bent:.3f} |"
            )
    print(
        "\n| network | drawing | curves drawn | ink | ink / straight | ambiguity | distortion |\n"
        "|---|---|---:|---:|---:|---:|---:|\n" + "\n".join(rows)
    )


if __name__ == "__main__":
    main()
