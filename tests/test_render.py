"""Rendering: the built network shows up in a Cycles still, the saved .blend renders the
same in a fresh Blender without the add-on or the bundle, and Eevee renders it too.

Renders are tiny, with few samples, on the CPU. Eevee aborts the whole process where
no EGL is present, so it only ever runs in a subprocess.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from scene_readers import background_color, content_mask, read_png

pytestmark = [pytest.mark.tf, pytest.mark.bpy, pytest.mark.render]
CYCLES_SIZE = (160, 90)
CYCLES_SAMPLES = 8
EEVEE_SIZE = (64, 36)
EEVEE_SAMPLES = 1
# Eevee on software OpenGL compiles its shaders on the first frame; allow a slow CI machine.
EEVEE_TIMEOUT = 600
RESULT_MARKER = "RENDER_RESULT:"


# --- reading PNGs -------------------------------------------------------------


def hues(rgb):
    """Hue in degrees and chroma of each pixel."""
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    chroma = high - low
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(high == r, ((g - b) / safe) % 6, np.where(high == g, (b - r) / safe + 2, (r - g) / safe + 4))
    return hue * 60.0, chroma


# --- building and saving a scene ------------------------------------------------


def build_staged(bundle):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    network = build_network(bundle)
    set_up_stage(network)
    return network


# Runs in a fresh Python with bpy only: argv = blend, png. Anything that tries to
# import blender_cnn fails and is recorded, so the render cannot lean on the add-on.
_RENDER_SCRIPT = (
    r"""
import importlib.abc, json, os, sys

attempts = []

class BlockBlenderCNN(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "blender_cnn" or name.startswith("blender_cnn.") or ".blender_cnn" in name:
            attempts.append(name)
            raise ImportError(f"blender_cnn is blocked in this process: {name}")
        return None

sys.meta_path.insert(0, BlockBlenderCNN())

import bpy

blend, png = sys.argv[1], sys.argv[2]
bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
scene = bpy.context.scene
if len(sys.argv) > 3:
    scene.frame_set(int(sys.argv[3]))
scene.render.image_settings.file_format = "PNG"
scene.render.filepath = png
bpy.ops.render.render(write_still=True, scene=scene.name)

bundles = [obj["blender_cnn_bundle"] for obj in bpy.data.objects if "blender_cnn_bundle" in obj]
result = {
    "engine": scene.render.engine,
    "size": [scene.render.resolution_x, scene.render.resolution_y],
    "cycles": [scene.cycles.samples, scene.cycles.seed, scene.cycles.use_animated_seed, scene.cycles.device],
    # The add-on's modules; not setuptools' finder of an editable install (__editable___blender_cnn_*_finder).
    "modules": sorted(m for m in sys.modules if m == "blender_cnn" or m.startswith("blender_cnn.") or ".blender_cnn" in m),
    "addons": sorted(a for a in bpy.context.preferences.addons.keys() if "blender_cnn" in a),
    "import_attempts": attempts,
    "missing_files": [p for p in bpy.utils.blend_paths(absolute=True) if not os.path.exists(p)],
    "bundles": bundles,
    "bundles_exist": [os.path.exists(b) for b in bundles],
    "png_written": os.path.exists(png),
}
print("""
    + repr(RESULT_MARKER)
    + r""" + json.dumps(result), flush=True)
"""
)


def render_in_fresh_blender(blend, png, timeout, frame=None):
    """Open ``blend`` in a new Python with bpy alone and render its scene (at ``frame``, if given) to ``png``.

    The process gets an empty Blender user folder, no PYTHONPATH and a working
    directory of its own, so neither the add-on nor the repository is in reach.
    """
    elsewhere = tempfile.mkdtemp(prefix="blender_cnn_elsewhere_")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender_cnn_fresh_user_")
    try:
        process = subprocess.run(
            [sys.executable, "-c", _RENDER_SCRIPT, str(blend), str(png), *([] if frame is None else [str(frame)])],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(elsewhere, ignore_errors=True)
        shutil.rmtree(env["BLENDER_USER_RESOURCES"], ignore_errors=True)
    tail = f"\n--- stdout ---\n{process.stdout[-3000:]}\n--- stderr ---\n{process.stderr[-3000:]}"
    assert process.returncode == 0, f"render process exited with {process.returncode}{tail}"
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert lines, f"render process reported nothing{tail}"
    return json.loads(lines[-1][len(RESULT_MARKER) :])


def assert_rendered_without_the_addon(result):
    assert result["modules"] == [], result
    assert result["addons"] == [], result
    assert result["import_attempts"] == [], result
    assert result["missing_files"] == [], result
    assert result["png_written"], result


# --- tests -----------------------------------------------------------------------


def test_cycles_still_shows_the_network(blender, demo_bundle, tmp_path):
    from blender_cnn.scene.stage import render_still

    build_staged(demo_bundle)
    width, height = CYCLES_SIZE
    png = render_still(tmp_path / "network.png", engine="CYCLES", width=width, height=height, samples=CYCLES_SAMPLES)
    rgb = read_png(png)
    assert rgb.shape == (height, width, 3)

    # The world is the stage's dark background, and most of the frame is background.
    background = background_color()
    for corner in (rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]):
        np.testing.assert_allclose(corner, background, atol=3 / 255)
    assert (np.abs(rgb - background).max(axis=-1) < 3 / 255).mean() > 0.4

    # A fair share of the frame is the network, on both sides, from edge to edge.
    content = content_mask(rgb)
    assert content.mean() > 0.10, content.mean()
    assert content[:, : width // 2].mean() > 0.05
    assert content[:, width // 2 :].mean() > 0.05
    columns = np.nonzero(content.any(axis=0))[0]
    rows = np.nonzero(content.any(axis=1))[0]
    assert columns.min() < 0.15 * width and columns.max() > 0.85 * width, (columns.min(), columns.max())
    assert rows.min() < 0.3 * height and rows.max() > 0.7 * height, (rows.min(), rows.max())

    # The cells show the viridis colormap: purples and blue-greens, not one flat color.
    hue, chroma = hues(rgb)
    colored = hue[content & (chroma > 0.15)]
    assert colored.size > 0.03 * width * height, colored.size
    share = np.histogram(colored, bins=12, range=(0, 360))[0] / colored.size
    assert (share > 0.01).sum() >= 4, share
    purple = ((colored >= 240) & (colored < 300)).mean()
    green_to_teal = ((colored >= 90) & (colored < 210)).mean()
    assert purple > 0.05 and green_to_teal > 0.05, (purple, green_to_teal)


def test_cells_render_the_same_as_instances_or_realized(blender, demo_bundle, tmp_path):
    """The viewport's instanced quads and the realized mesh of final renders show the same colors."""
    from blender_cnn.scene.network import set_network_input
    from blender_cnn.scene.stage import render_still

    network = build_staged(demo_bundle)
    width, height = CYCLES_SIZE
    realized = read_png(
        render_still(tmp_path / "realized.png", engine="CYCLES", width=width, height=height, samples=CYCLES_SAMPLES)
    )
    set_network_input(network, "Realize in Render", False)
    instanced = read_png(
        render_still(tmp_path / "instanced.png", engine="CYCLES", width=width, height=height, samples=CYCLES_SAMPLES)
    )
    assert content_mask(instanced).mean() > 0.10
    difference = np.abs(instanced - realized)
    assert difference.mean() < 2 / 255, difference.mean()


def test_saved_blend_renders_the_same_without_the_addon_or_the_bundle(blender, demo_bundle_path, tmp_path):
    from blender_cnn.scene.stage import configure_render, render_still

    # A copy of the bundle, so it can be taken away without spoiling the session's fixture.
    bundle = tmp_path / "bundle" / "digits.bcnn.npz"
    bundle.parent.mkdir()
    shutil.copy(demo_bundle_path, bundle)
    network = build_staged(bundle)
    assert network["blender_cnn_bundle"] == str(bundle)

    width, height = CYCLES_SIZE
    scene = blender.context.scene
    configure_render(scene, "CYCLES", width, height, CYCLES_SAMPLES)
    blend = tmp_path / "network.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(blend))
    here = read_png(
        render_still(tmp_path / "here.png", engine="CYCLES", width=width, height=height, samples=CYCLES_SAMPLES)
    )

    bundle.rename(bundle.with_name("moved_away.bin"))
    result = render_in_fresh_blender(blend, tmp_path / "there.png", timeout=180)
    assert_rendered_without_the_addon(result)
    assert result["engine"] == "CYCLES" and result["size"] == [width, height]
    assert result["cycles"] == [CYCLES_SAMPLES, scene.cycles.seed, scene.cycles.use_animated_seed, "CPU"]
    assert result["bundles"] == [str(bundle)] and result["bundles_exist"] == [False]

    there = read_png(tmp_path / "there.png")
    assert there.shape == here.shape
    assert content_mask(there).mean() > 0.10
    difference = np.abs(there - here)
    assert difference.mean() < 1 / 255, difference.mean()
    assert difference.max() < 0.1, difference.max()


@pytest.mark.slow
def test_saved_training_animation_renders_without_the_addon_or_the_bundle(blender, demo_bundle_path, tmp_path):
    """Every frame's epoch is picked by the saved node tree alone: a fresh Blender renders the same frames."""
    from blender_cnn.scene.animation import animate_training
    from blender_cnn.scene.stage import configure_render, render_still

    bundle = tmp_path / "bundle" / "digits.bcnn.npz"
    bundle.parent.mkdir()
    shutil.copy(demo_bundle_path, bundle)
    network = build_staged(bundle)
    first, last = animate_training(network, frames_per_epoch=4, hold_frames=0, easing="LINEAR")
    width, height = CYCLES_SIZE
    scene = blender.context.scene
    configure_render(scene, "CYCLES", width, height, CYCLES_SAMPLES)
    blend = tmp_path / "training.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(blend))
    bundle.rename(bundle.with_name("moved_away.bin"))

    renders = {}
    for frame in (first, first + 2, last):
        scene.frame_set(frame)
        here = read_png(
            render_still(
                tmp_path / f"here_{frame}.png", engine="CYCLES", width=width, height=height, samples=CYCLES_SAMPLES
            )
        )
        result = render_in_fresh_blender(blend, tmp_path / f"there_{frame}.png", timeout=180, frame=frame)
        assert_rendered_without_the_addon(result)
        there = read_png(tmp_path / f"there_{frame}.png")
        assert np.abs(there - here).mean() < 1 / 255, frame
        renders[frame] = there
    # Training shows: the first and last epochs look different.
    assert np.abs(renders[last] - renders[first]).mean() > 2 / 255


@pytest.mark.slow
@pytest.mark.eevee
def test_eevee_renders_the_saved_blend(blender, demo_bundle, tmp_path):
    if ctypes.util.find_library("EGL") is None:
        pytest.skip("no EGL library (install Mesa's libegl1 and libegl-mesa0, see scripts/setup.sh)")
    from blender_cnn.scene.stage import configure_render

    build_staged(demo_bundle)
    width, height = EEVEE_SIZE
    configure_render(blender.context.scene, "EEVEE", width, height, EEVEE_SAMPLES)
    blend = tmp_path / "network.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(blend))

    # With EGL present, an abort (SIGABRT) or a hang is a failure, not a skip.
    result = render_in_fresh_blender(blend, tmp_path / "eevee.png", timeout=EEVEE_TIMEOUT)
    assert_rendered_without_the_addon(result)
    assert result["engine"] == "BLENDER_EEVEE" and result["size"] == [width, height]

    rgb = read_png(tmp_path / "eevee.png")
    assert rgb.shape == (height, width, 3)
    np.testing.assert_allclose(rgb[0, 0], background_color(), atol=3 / 255)
    content = content_mask(rgb)
    assert content.mean() > 0.05, content.mean()
    assert content[:, : width // 2].any() and content[:, width // 2 :].any()
    assert np.ptp(rgb[content], axis=0).max() > 0.2
