"""Render published architectures at 224x224, all blocks collapsed and with one block expanded, for docs/gallery.

    .venv/bin/python scripts/render_gallery.py BUNDLE_DIR [--output-dir docs/gallery] [--samples 16]
        [--width 1280] [--height 720] [--only ResNet50 ...] [--timeout 900]

BUNDLE_DIR is the folder ``scripts/bench_graphs.py --bundles BUNDLE_DIR``
wrote: ``<architecture>_224.bcnn.npz`` for ResNet50, MobileNetV2,
EfficientNetB0 and DenseNet121. When it also holds ``<architecture>_224.blend``
(the benchmark saves the scene it built there), that file is opened instead
of building the scene again. Each architecture renders in its own Python,
stopped after ``--timeout`` seconds, into ``<architecture>_collapsed.png``
(the scene as built: every block collapsed, camera from ``set_up_stage``) and
``<architecture>_expanded.png`` (one block in the middle expanded, the rows
fitted again with ``fit_rows`` and the camera framed again).
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
SIDE = 224
# The block each architecture shows expanded: one in the middle of the network with a branch.
EXPANDED = {
    "ResNet50": "conv3_block1",  # a projection shortcut beside the 1x1-3x3-1x1 path, then Add
    "MobileNetV2": "block_8",  # inverted residual: expand, depthwise, project, Add with the block input
    "EfficientNetB0": "block4b",  # MBConv: squeeze-and-excitation Multiply, then Add with the block input
    "DenseNet121": "conv4_block12",  # dense layer: BN-ReLU-1x1, BN-ReLU-3x3, Concatenate with the block input
}


def render_one(name, folder, output_dir, width, height, samples):
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="blender_cnn_user_"))
    import bpy

    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.graph import plan_graph
    from blender_cnn.scene.network import build_network, fit_rows, is_network, set_network_input
    from blender_cnn.scene.stage import render_still, set_up_stage

    bundle_file = Path(folder) / f"{name}_{SIDE}.bcnn.npz"
    blend_file = bundle_file.with_suffix("").with_suffix(".blend")
    started = time.perf_counter()
    if blend_file.exists():
        bpy.ops.wm.open_mainfile(filepath=str(blend_file))
        network = next(obj for obj in bpy.data.objects if is_network(obj))
        source = f"opened {blend_file.name}"
    else:
        bpy.ops.wm.read_homefile(app_template="")
        for obj in list(bpy.data.objects):
            bpy.data.objects.remove(obj)
        network = build_network(bundle_file)
        source = f"built from {bundle_file.name}"
    ready = time.perf_counter() - started

    block_name = EXPANDED[name]
    blocks = {block.name: block for block in plan_graph(load_bundle(bundle_file).layers).blocks}
    block = blocks[block_name]
    output_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    set_up_stage(network)
    started = time.perf_counter()
    render_still(output_dir / f"{name}_collapsed.png", width=width, height=height, samples=samples)
    timings["collapsed"] = time.perf_counter() - started

    set_network_input(network, f"Blocks/{block_name}", 1.0)
    fit_rows(network)
    set_up_stage(network)
    started = time.perf_counter()
    render_still(output_dir / f"{name}_expanded.png", width=width, height=height, samples=samples)
    timings["expanded"] = time.perf_counter() - started
    print(
        json.dumps(
            {
                "name": name,
                "source": source,
                "ready_seconds": ready,
                "render_seconds": timings,
                "block": block_name,
                "block_units": len(block.units),
                "block_columns": block.columns,
                "block_lanes": block.lanes,
                "blocks": len(blocks),
            }
        ),
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", type=Path, help="the folder of bench_graphs.py --bundles")
    parser.add_argument("--output-dir", type=Path, default=REPO / "docs" / "gallery")
    parser.add_argument("--samples", type=int, default=16, help="Cycles render samples")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--only", nargs="+", choices=list(EXPANDED), default=list(EXPANDED))
    parser.add_argument("--timeout", type=int, default=900, help="stop one architecture after this many seconds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        signal.alarm(args.timeout)
        return render_one(args.child, args.bundles, args.output_dir, args.width, args.height, args.samples)

    failed = []
    for name in args.only:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            str(args.bundles),
            "--child",
            name,
            "--output-dir",
            str(args.output_dir),
            "--samples",
            str(args.samples),
            "--width",
            str(args.width),
            "--height",
            str(args.height),
            "--timeout",
            str(args.timeout),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            why = "timed out" if done.returncode == -signal.SIGALRM else f"failed ({done.returncode})"
            print(f"{name}: {why} after {time.perf_counter() - started:.0f} s\n{done.stderr[-2000:]}", flush=True)
            failed.append(name)
        else:
            print(lines[-1], flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
