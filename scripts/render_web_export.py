"""Export a network for the web and screenshot its page in headless Chromium: docs/web_export.png.

Builds the network from a bundle as the demo shows it (the stage's camera view, sample 3), runs
Export for Web with and without the epoch slider, prints what each weighs against what the other
ways of carrying epochs in glTF would (morph targets of the colors, a copy of the scene per epoch),
and screenshots the page as a student opening it sees it.

Usage:  .venv/bin/python scripts/render_web_export.py [--bundle runs/digits_cnn/digits_cnn.bcnn.npz]
        [--sample 3] [--folder out/web] [--output docs/web_export.png]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _web_browser():
    spec = importlib.util.spec_from_file_location("web_browser", REPO_ROOT / "scripts" / "web_browser.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=REPO_ROOT / "runs" / "digits_cnn" / "digits_cnn.bcnn.npz")
    parser.add_argument("--sample", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=REPO_ROOT / "out" / "web")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "web_export.png")
    args = parser.parse_args(argv)

    import bpy

    import blender_cnn
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage
    from blender_cnn.scene.web_export import export_for_web, read_glb

    blender_cnn.register()
    bpy.ops.wm.read_homefile(app_template="")
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    network = build_network(args.bundle, sample=args.sample)
    set_up_stage(network)

    started = time.perf_counter()
    written = export_for_web(network, args.folder)
    seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        plain = export_for_web(network, folder, epochs=False)
    document, binary = read_glb(written.glb)
    animated = 0
    for mesh in document["meshes"]:
        for primitive in mesh["primitives"]:
            if "_BCNN_ELEMENT" in primitive["attributes"]:
                animated += document["accessors"][primitive["attributes"]["POSITION"]]["count"]
    epochs = len(written.epochs)
    print(f"network: {network.name}, {written.vertices:,} vertices, {epochs} epochs; export took {seconds:.1f} s")
    print(f".glb with the epoch slider: {written.glb_bytes:,} bytes (epoch table {written.epoch_table_bytes:,})")
    print(f".glb without it:            {plain.glb_bytes:,} bytes")
    print(f"page (.glb and viewer inline): {written.html_bytes:,} bytes")
    if epochs:
        # Per animated vertex and epoch, a float RGBA morph target; per epoch, a copy of the whole scene.
        print(f"colors as morph targets would add about {animated * epochs * 16:,} bytes")
        print(f"a copy of the scene per epoch would weigh about {plain.glb_bytes * epochs:,} bytes")

    browser = _web_browser()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with browser.Chromium(width=1280, height=720) as chromium:
        chromium.open(written.html)
        chromium.wait_for_viewer()
        chromium.settle()
        chromium.screenshot(args.output)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
