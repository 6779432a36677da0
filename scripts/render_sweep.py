"""Render the demo's first convolution sweeping across a digit, as a short MP4 and three stills for the docs.

    .venv/bin/python scripts/render_sweep.py [--bundle runs/digits_cnn/digits_cnn.bcnn.npz]
        [--output-dir docs/sweep] [--frames 48] [--fps 12] [--samples 8] [--width 854] [--height 480]

The scene is what a first lesson on convolution shows: the input digit, the
window moving over it in reading order with each input value, kernel weight
and product written on its cells, the kernel's weights floating on the lines,
and conv1's map filling in pixel by pixel, with the window's arithmetic above
it. Only conv1's swept map is shown, the later layers are folded and the
connections hidden, so the frame holds the two maps. Train and extract the
demo first (``make demo``).
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# Where in the sweep the stills are taken (share of the frames).
STILLS = (0.1, 0.45, 0.8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "runs" / "digits_cnn" / "digits_cnn.bcnn.npz")
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "sweep")
    parser.add_argument("--layer", default="conv1")
    parser.add_argument("--channel", type=int, default=0, help="the map swept (the maps before it are shown too)")
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--fps", type=int, default=12)
    parser.add_argument("--samples", type=int, default=8, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args(argv)

    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy
    from mathutils import Vector

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.nodes.annotations import ANNOTATION_SWEEP_EQUATION
    from blender_cnn.scene import stage
    from blender_cnn.scene.animation import animate_sweep
    from blender_cnn.scene.drawn import drawn_points, drawn_quads
    from blender_cnn.scene.focus import cell_centres
    from blender_cnn.scene.materials import ANNOTATION_MATERIAL, CELL_MATERIAL
    from blender_cnn.scene.network import build_network, set_every_layer_input, set_network_input
    from blender_cnn.scene.rendering import encode_video, render_animation

    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    bundle = load_bundle(args.bundle)
    layer = bundle.layer(args.layer)
    channel = args.channel
    network = build_network(bundle, sample=args.sample)
    set_network_input(network, "Sample", float(args.sample))
    for name, value in (
        ("Show Pooling", False),
        ("Show Flatten", False),
        ("Show Connections", False),
        ("Show Probabilities", False),
        ("Label Size", 2.0),
        ("Number Size", 2.6),
        ("Show Legend", False),
        # The numbers on the input's cells are too small to read in a frame that holds both maps: the panel
        # above the map writes them all.
        ("Sweep Numbers", False),
    ):
        set_network_input(network, name, value)
    # Only the swept map of the layer; the layers after it folded into one summary map each, out of the way.
    set_every_layer_input(network, "Fold", 1.0)
    for name in (bundle.layers[layer.index - 1].name, layer.name):
        set_network_input(network, f"{name}/Fold", 0.0)
    set_network_input(network, f"{layer.name}/Channels Shown", channel + 1)
    first, last = animate_sweep(network, layer.name, channel=channel, start_frame=1, frames=args.frames)

    # Frame the input map, the swept map and the arithmetic above it, half way through the sweep.
    scene = bpy.context.scene
    stage.VIEW_DIRECTION = Vector((1.0, 0.7, -0.2)).normalized()
    camera = stage.set_up_stage(network)
    scene.frame_set((first + last) // 2)
    centres, indices = cell_centres(network)
    # The input, the swept map and the (folded) layer after it, which would otherwise stand cut at the border.
    cells, _cells_geometry = drawn_quads(network, CELL_MATERIAL)  # with the folded layer's summary map
    maps = [
        centres[indices[:, 0] == layer.index - 1],
        centres[(indices[:, 0] == layer.index) & (indices[:, 1] == channel)],
        cells.centres()[cells.attribute("layer") == layer.index + 1],
    ]
    glyphs, _geometry = drawn_quads(network, ANNOTATION_MATERIAL)  # the panel's glyphs and plates
    panel = glyphs.centres()[glyphs.attribute("annotation") == ANNOTATION_SWEEP_EQUATION]
    points = np.concatenate([*maps, panel, *(_drawn_under(drawn_points(network), cells) for cells in maps)])
    stage.frame_camera(camera, network, scene, margin=1.06, points=points)
    scene.render.fps = args.fps

    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="blender_cnn_sweep_") as work:
        started = time.perf_counter()
        frames = render_animation(
            work, scene, "CYCLES", args.width, args.height, args.samples, frame_start=first, frame_end=last
        )
        rendered = time.perf_counter() - started
        video = encode_video(frames, str(out / f"{layer.name}_sweep.mp4"), scene, fps=args.fps)
        stills = []
        for share in STILLS:
            frame = frames[min(int(share * len(frames)), len(frames) - 1)]
            still = out / f"{layer.name}_sweep_{int(share * 100):02d}.png"
            shutil.copyfile(frame, still)
            stills.append(still)
    print(f"{len(frames)} frames in {rendered:.0f} s; {video} ({os.path.getsize(video) / 1e6:.2f} MB)")
    for still in stills:
        print(still)


# What stands under a map: the squares of the pixels a sweep has not reached and the layer's label (its name
# and shape), as far as this below the lowest cell drawn (world units: a map's height and a label's), and as far
# as this beside its cells ("MaxPooling2D 8x8x8" at Label Size 2 is more than twice as wide as its 8 cells).
UNDER_DEPTH, UNDER_OVERHANG = 24.0, 12.0
# Layers stand this far apart along the network (the x axis) at least: nothing further belongs to a map.
ALONG_NETWORK = 10.0


def _drawn_under(drawn, cells):
    """What is drawn under ``cells`` (one map), so that the framing leaves it whole."""
    low, high = cells.min(axis=0), cells.max(axis=0)
    beside = (np.abs(drawn[:, 0] - cells[:, 0].mean()) < ALONG_NETWORK) & (
        (drawn[:, 1] > low[1] - UNDER_OVERHANG) & (drawn[:, 1] < high[1] + UNDER_OVERHANG)
    )
    below = (drawn[:, 2] < low[2]) & (drawn[:, 2] > low[2] - UNDER_DEPTH)
    return drawn[beside & below]


if __name__ == "__main__":
    main()
