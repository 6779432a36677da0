"""Looks: the glow look's bloom and depth of field, the print look's white page at 300 dpi, and how looks
survive staging again and give way to one another.

Renders are Cycles on the CPU at tiny sizes (the compositor's bloom and the camera's depth of field work the
same after Cycles and Eevee); the one Eevee render runs in a subprocess, as Eevee aborts the whole process
where there is no EGL.
"""

import ctypes.util
import json
import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scene_readers import drawn_cells, read_png

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parent.parent
STYLES = REPO / "presets" / "styles"
RESULT_MARKER = "LOOKS_RESULT:"
EEVEE_TIMEOUT = 600


def _style(name):
    return json.loads((STYLES / f"{name}.json").read_text())


def _png_dpi(path):
    """(x, y) dots per inch from a PNG's pHYs chunk, None without one."""
    data = Path(path).read_bytes()
    position = 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"pHYs":
            x, y, unit = struct.unpack(">IIB", data[position + 8 : position + 17])
            assert unit == 1, "pHYs in metres"
            return x * 0.0254, y * 0.0254
        position += 12 + length
    return None


def _luminance(rgb):
    return rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def _near(mask, pixels):
    """Pixels within ``pixels`` (a square's half side) of a True pixel of ``mask``."""
    grown = mask.copy()
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            grown |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return grown


def _layer_middles(network):
    """(layer indices, world middle of each layer's drawn cells)."""
    from blender_cnn.scene.focus import cell_centres

    centres, indices = cell_centres(network)
    layers = np.unique(indices[:, 0])
    return layers, np.stack([centres[indices[:, 0] == layer].mean(axis=0) for layer in layers])


def _screen(scene, camera, points):
    """Frame coordinates (0..1 across and up) of world points."""
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Vector

    return np.array([tuple(world_to_camera_view(scene, camera, Vector(point)))[:2] for point in points])


def _depth(camera, points):
    import bpy
    from mathutils import Vector

    bpy.context.view_layer.update()  # the camera's matrix as the render will have it

    forward = np.array(camera.matrix_world.to_3x3() @ Vector((0.0, 0.0, -1.0)))
    return (np.asarray(points, dtype=np.float64) - np.array(camera.matrix_world.translation)) @ forward


def _bloom_gains(with_bloom, without, background):
    """How much brighter bloom makes the dark pixels right around bright cells, and those far from anything,
    and how far the frame's corners are from the background."""
    content = np.abs(without - background).max(axis=-1) > 4 / 255
    halo = _near(_luminance(without) > 0.6, 2) & ~content
    far = ~_near(content, 8)
    assert halo.sum() > 20 and far.sum() > 20, (halo.sum(), far.sum())
    gain = _luminance(with_bloom) - _luminance(without)
    corners = np.concatenate([block.reshape(-1, 3) for block in (with_bloom[:3, :3], with_bloom[-3:, -3:])])
    return float(gain[halo].mean()), float(gain[far].mean()), float(np.abs(corners - background).max())


def _blurred(gray, sigma):
    """``gray`` blurred by a Gaussian of ``sigma`` pixels (edges repeated)."""
    radius = int(3 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(gray, radius, mode="edge")
    rows = np.apply_along_axis(lambda row: np.convolve(row, kernel, mode="valid"), 1, padded)
    return np.apply_along_axis(lambda column: np.convolve(column, kernel, mode="valid"), 0, rows)


# ---------------------------------------------------------------- glow


def test_the_glow_look_blooms_and_focuses_on_the_layer_in_the_middle_of_the_frame(staged_designed_network, blender):
    from blender_cnn.scene.style import apply_style

    network, scene = staged_designed_network, blender.context.scene
    glow = _style("glow")
    apply_style(network, STYLES / "glow.json")

    assert scene.render.engine == "BLENDER_EEVEE"
    tree = scene.compositing_node_group
    glares = [node for node in tree.nodes if node.bl_idname == "CompositorNodeGlare"]
    assert len(glares) == 1
    glare = glares[0].inputs
    assert glare["Type"].default_value == "Bloom"
    assert glare["Strength"].default_value == pytest.approx(glow["bloom_strength"])
    assert glare["Threshold"].default_value == pytest.approx(glow["bloom_threshold"])
    assert glare["Size"].default_value == pytest.approx(glow["bloom_size"])
    links = {(link.from_node.bl_idname, link.to_node.bl_idname) for link in tree.links}
    assert {("CompositorNodeRLayers", "CompositorNodeGlare"), ("CompositorNodeGlare", "NodeGroupOutput")} <= links

    # The focus is the layer whose cells are nearest the middle of the frame, as the camera sees them.
    camera = scene.camera
    layers, middles = _layer_middles(network)
    across = _screen(scene, camera, middles) - 0.5
    across[:, 1] *= scene.render.resolution_y / scene.render.resolution_x
    target = middles[int(np.argmin(np.linalg.norm(across, axis=1)))]
    dof = camera.data.dof
    assert dof.use_dof
    assert dof.focus_object is not None
    np.testing.assert_allclose(dof.focus_object.location, target, atol=1e-3)
    assert dof.focus_distance == pytest.approx(_depth(camera, [target])[0], rel=1e-4)
    # Neither the first nor the last layer: the far ends are the ones that blur.
    assert layers[0] < layers[int(np.argmin(np.linalg.norm(across, axis=1)))] < layers[-1]


@pytest.mark.render
def test_bloom_brightens_the_dark_around_bright_cells(staged_designed_network, blender, tmp_path):
    from blender_cnn.scene.stage import render_still
    from blender_cnn.scene.style import apply_style

    network = staged_designed_network
    apply_style(network, STYLES / "glow.json")
    apply_style(network, {"depth_of_field": 0.0})  # only the bloom differs between the two renders
    background = _srgb(_style("glow")["background"][:3])
    size = dict(engine="CYCLES", width=192, height=108, samples=4)
    with_bloom = read_png(render_still(tmp_path / "bloom.png", **size))
    apply_style(network, {"bloom_strength": 0.0})
    assert blender.context.scene.compositing_node_group is None
    without = read_png(render_still(tmp_path / "plain.png", **size))

    near, far, corner = _bloom_gains(with_bloom, without, background)
    # A halo: the dark right around bright cells lights up, far more than the dark far from anything.
    assert near > 3 / 255, near
    assert near > 5 * far, (near, far)
    assert corner < 3 / 255, corner


@pytest.mark.render
def test_depth_of_field_keeps_the_focused_layer_sharp_and_blurs_the_far_ones(
    staged_designed_network, blender, tmp_path
):
    from blender_cnn.scene.looks import camera_target_layer
    from blender_cnn.scene.stage import render_still
    from blender_cnn.scene.style import apply_style

    network, scene = staged_designed_network, blender.context.scene
    size = dict(engine="CYCLES", width=240, height=136, samples=16)
    sharp = _luminance(read_png(render_still(tmp_path / "sharp.png", **size)))
    # A blur of 2% of the frame: about 5 pixels at this size, enough to measure.
    apply_style(network, {"depth_of_field": 0.02})
    soft = _luminance(read_png(render_still(tmp_path / "soft.png", **size)))

    camera = scene.camera
    focused = camera_target_layer(network, camera)
    layers, middles = _layer_middles(network)
    depth = _depth(camera, middles)
    furthest = layers[int(np.argmax(np.abs(depth - camera.data.dof.focus_distance) / depth))]
    blurred = _blurred(sharp, 1.5)

    def likeness(layer):
        """How far the soft render is from the sharp one, and from the sharp one blurred, over a layer."""
        from blender_cnn.scene.focus import cell_centres

        centres, indices = cell_centres(network)
        screen = _screen(scene, camera, centres[indices[:, 0] == layer])
        height, width = sharp.shape
        x = np.clip((screen[:, 0] * width).astype(int), 0, width - 1)
        y = np.clip(((1 - screen[:, 1]) * height).astype(int), 0, height - 1)
        box = (slice(y.min(), y.max() + 1), slice(x.min(), x.max() + 1))
        return float(np.abs(soft - sharp)[box].mean()), float(np.abs(soft - blurred)[box].mean())

    to_sharp, to_blurred = likeness(focused)
    assert to_sharp < 0.7 * to_blurred, (to_sharp, to_blurred)
    to_sharp, to_blurred = likeness(furthest)
    assert to_blurred < 0.8 * to_sharp, (to_sharp, to_blurred)


# Runs in a fresh Python with bpy only: argv = blend, folder. Renders the saved glow look, then without bloom.
_EEVEE_SCRIPT = (
    r"""
import json, os, sys
import bpy

blend, folder = sys.argv[1], sys.argv[2]
bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
scene = bpy.context.scene
scene.render.image_settings.file_format = "PNG"
result = {"engine": scene.render.engine}
for name in ("bloom", "plain"):
    if name == "plain":
        scene.compositing_node_group = None
    scene.render.filepath = os.path.join(folder, name + ".png")
    bpy.ops.render.render(write_still=True, scene=scene.name)
print("""
    + repr(RESULT_MARKER)
    + r""" + json.dumps(result), flush=True)
"""
)


@pytest.mark.render
@pytest.mark.slow
@pytest.mark.eevee
def test_the_glow_look_renders_halos_in_eevee(staged_designed_network, blender, tmp_path):
    if ctypes.util.find_library("EGL") is None:
        pytest.skip("no EGL library, which Eevee needs (install Mesa's libegl1 and libegl-mesa0, see scripts/setup.sh)")
    from blender_cnn.scene.stage import configure_render
    from blender_cnn.scene.style import apply_style

    apply_style(staged_designed_network, STYLES / "glow.json")
    configure_render(blender.context.scene, "EEVEE", 192, 108, 2)
    blend = tmp_path / "glow.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(blend))

    env = dict(os.environ, BLENDER_USER_RESOURCES=tempfile.mkdtemp(prefix="blender_cnn_fresh_user_"))
    env.pop("PYTHONPATH", None)
    process = subprocess.run(
        [sys.executable, "-c", _EEVEE_SCRIPT, str(blend), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=EEVEE_TIMEOUT,
    )
    tail = f"\n--- stdout ---\n{process.stdout[-3000:]}\n--- stderr ---\n{process.stderr[-3000:]}"
    # With EGL present, an abort (SIGABRT) is a failure, not a skip.
    assert process.returncode == 0, f"the Eevee render exited with {process.returncode}{tail}"
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    assert lines, f"the Eevee render reported nothing{tail}"
    assert json.loads(lines[-1][len(RESULT_MARKER) :])["engine"] == "BLENDER_EEVEE"

    background = _srgb(_style("glow")["background"][:3])
    near, far, corner = _bloom_gains(read_png(tmp_path / "bloom.png"), read_png(tmp_path / "plain.png"), background)
    assert near > 2 / 255, near
    assert near > 5 * far, (near, far)
    assert corner < 3 / 255, corner


# ---------------------------------------------------------------- print


@pytest.mark.render
def test_the_print_look_is_the_colormaps_colors_on_white_at_300_dpi(staged_designed_network, blender, tmp_path):
    from blender_cnn.scene.stage import render_still
    from blender_cnn.scene.style import apply_style

    network, scene = staged_designed_network, blender.context.scene
    apply_style(network, STYLES / "print.json")
    assert scene.render.engine == "CYCLES"
    # 7 x 4 inches at 300 dpi.
    assert (scene.render.resolution_x, scene.render.resolution_y) == (2100, 1200)

    png = render_still(tmp_path / "print.png", engine="CYCLES", width=840, height=480, samples=8)
    assert _png_dpi(png) == pytest.approx((300.0, 300.0), abs=0.01)
    rgb = read_png(png)
    for corner in (rgb[0, 0], rgb[0, -1], rgb[-1, 0], rgb[-1, -1]):
        np.testing.assert_array_equal(corner, 1.0)
    assert (rgb == 1.0).all(axis=-1).mean() > 0.4

    # Each cell shows its own color exactly, as the legend has it: no light washes it out, no shading darkens it.
    # (The best of the 3x3 pixels around a cell's centre: cells are 3-4 pixels wide here, neighbours differ.)
    centres, attributes = drawn_cells(network)
    screen = _screen(scene, scene.camera, centres)
    height, width = rgb.shape[:2]
    x = (screen[:, 0] * width).astype(int)
    y = ((1 - screen[:, 1]) * height).astype(int)
    expected = _srgb(attributes["cell_color"][:, :3])
    error = np.full(len(centres), np.inf, dtype=np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            seen = rgb[np.clip(y + dy, 0, height - 1), np.clip(x + dx, 0, width - 1)]
            error = np.minimum(error, np.abs(seen - expected).max(axis=1))
    assert np.median(error) < 2 / 255, np.median(error)
    assert (error < 8 / 255).mean() > 0.8, (error < 8 / 255).mean()

    # Where nothing is drawn there is nothing but white: no shadow, vignette or tint of the world.
    network.hide_render = True
    empty = read_png(render_still(tmp_path / "empty.png", engine="CYCLES", width=84, height=48, samples=2))
    np.testing.assert_array_equal(empty, 1.0)


def test_a_print_size_sets_the_pixels_and_frames_the_network_again(staged_designed_network, blender):
    from blender_cnn.scene.drawn import drawn_points
    from blender_cnn.scene.looks import dpi
    from blender_cnn.scene.style import apply_style, current_style

    network, scene = staged_designed_network, blender.context.scene
    apply_style(network, {"print_size": [3.5, 3.5], "dpi": 600})
    assert (scene.render.resolution_x, scene.render.resolution_y) == (2100, 2100)
    assert dpi(scene) == 600
    assert current_style(network)["resolution"] == [2100, 2100]
    # A square frame: the stage frames the network again so that none of it is cut off.
    screen = _screen(scene, scene.camera, drawn_points(network))
    assert screen.min() > 0.0 and screen.max() < 1.0, (screen.min(axis=0), screen.max(axis=0))


# ---------------------------------------------------------------- looks together


def test_a_screen_look_after_glow_takes_the_bloom_and_the_depth_of_field_away(staged_designed_network, blender):
    from blender_cnn.scene.style import apply_style, current_style

    network, scene = staged_designed_network, blender.context.scene
    apply_style(network, STYLES / "glow.json")
    apply_style(network, STYLES / "dark.json")
    assert scene.compositing_node_group is None
    assert not scene.camera.data.dof.use_dof
    style = current_style(network)
    assert style["bloom_strength"] == 0.0 and style["depth_of_field"] == 0.0


def test_staging_again_keeps_the_look_and_focuses_on_the_new_middle(staged_designed_network, blender):
    from blender_cnn.scene.network import set_network_input
    from blender_cnn.scene.stage import set_up_stage
    from blender_cnn.scene.style import apply_style, current_style

    network, scene = staged_designed_network, blender.context.scene
    apply_style(network, STYLES / "print.json")
    apply_style(network, {"depth_of_field": 0.004})
    before = current_style(network)
    set_network_input(network, "Layer Spacing", 80.0)
    set_up_stage(network, scene)  # as Fit Rows and a rebuild do
    after = current_style(network)
    assert after == before

    camera = scene.camera
    focus = camera.data.dof.focus_object.location
    assert camera.data.dof.focus_distance == pytest.approx(_depth(camera, [focus])[0], rel=1e-4)
    _layers, middles = _layer_middles(network)
    assert np.linalg.norm(middles - np.array(focus), axis=1).min() < 1e-3


def test_bloom_is_refused_over_a_users_own_compositor_nodes(staged_designed_network, blender):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.style import apply_style, current_style

    network, scene = staged_designed_network, blender.context.scene
    own = blender.data.node_groups.new("My Grade", "CompositorNodeTree")
    scene.compositing_node_group = own
    before = current_style(network)
    with pytest.raises(BlenderCNNError, match="My Grade"):
        apply_style(network, STYLES / "glow.json")
    assert current_style(network) == before
    assert scene.compositing_node_group == own
    # A look without bloom leaves the user's nodes alone.
    apply_style(network, STYLES / "print.json")
    assert scene.compositing_node_group == own


def test_the_render_operators_offer_the_looks_engine_and_size(staged_designed_network, blender):
    from blender_cnn.scene.style import look_render_settings

    scene = blender.context.scene
    # Before any look, the operators keep their own defaults (the add-on's preferences).
    assert look_render_settings(scene) == {}
    assert blender.ops.bcnn.apply_style(style="builtin:print") == {"FINISHED"}
    assert look_render_settings(scene) == {"engine": "CYCLES", "width": 2100, "height": 1200, "samples": 32}
    assert blender.ops.bcnn.apply_style(style="builtin:glow") == {"FINISHED"}
    assert look_render_settings(scene) == {"engine": "EEVEE", "width": 1920, "height": 1080, "samples": 32}


def _srgb(linear):
    linear = np.asarray(linear, dtype=np.float64)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055).astype(np.float32)
