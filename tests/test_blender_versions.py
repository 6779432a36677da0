"""A file saved in one supported Blender opens and renders in the others (README, "Supported Blender versions").

Each Blender CI tests has an environment of its own: ``.venv`` for requirements.txt's, and
``.venv-blender-VERSION`` for each requirements-blender-VERSION.txt (``make test-other-blenders`` makes them).
The test saves the demo design's staged scene here and has every other environment present open it, render it
and save it again as its own version; this Blender then opens and renders that file. Both run without the
add-on, as a render farm would. Cycles gives the same picture in 5.2 and 5.3 (measured: a mean difference of
0.0002 levels of 255, at most one level).
"""

import sys
from pathlib import Path

import numpy as np
import pytest
from scene_readers import content_mask, read_png
from ui_recorder import run_in_fresh_blender

pytestmark = [pytest.mark.bpy, pytest.mark.render]

REPO = Path(__file__).resolve().parent.parent
SIZE = (160, 90)
SAMPLES = 8
RESULT_MARKER = "VERSIONS_RESULT:"

# argv: the .blend to open, the PNG to render, the .blend to save it again as (or "").
_OPEN_RENDER_SAVE = (
    r"""
import json, sys
import bpy

blend, png, resave = sys.argv[1:4]
bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False)
scene = bpy.context.scene
scene.render.image_settings.file_format = "PNG"
scene.render.filepath = png
bpy.ops.render.render(write_still=True, scene=scene.name)
if resave:
    bpy.ops.wm.save_as_mainfile(filepath=resave)
addons = sorted(a for a in bpy.context.preferences.addons.keys() if "blender_cnn" in a)
modules = sorted(m for m in sys.modules if m == "blender_cnn" or m.startswith("blender_cnn."))
print("""
    + repr(RESULT_MARKER)
    + r""" + json.dumps({"version": bpy.app.version_string, "file_version": list(bpy.data.version),
    "addons": addons, "modules": modules}), flush=True)
"""
)


def _other_environments():
    """The Python of every other Blender environment of this checkout that exists, by its folder's name."""
    here = Path(sys.prefix).resolve()
    candidates = [REPO / ".venv", *sorted(REPO.glob(".venv-blender-*"))]
    return {
        folder.name.lstrip("."): folder / "bin" / "python"
        for folder in candidates
        if folder.resolve() != here and (folder / "bin" / "python").exists()
    }


def _open_render_save(python, blend, png, resave, user_folder):
    result = run_in_fresh_blender(
        _OPEN_RENDER_SAVE, RESULT_MARKER, user_folder, blend, png, resave or "", timeout=300, python=python
    )
    assert result["addons"] == [] and result["modules"] == [], result
    return result


def _same_picture(here, there):
    assert there.shape == here.shape
    assert content_mask(there).mean() > 0.10, "the network is in the frame"
    difference = np.abs(there - here)
    # A missing layer or a lost color would move the mean by far more than a level.
    assert difference.mean() < 1 / 255, difference.mean()


def test_a_file_saved_in_one_supported_blender_renders_in_the_others(blender, digits_design_bundle, tmp_path):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import configure_render, set_up_stage

    others = _other_environments()
    if not others:
        pytest.skip("no other Blender environment in this checkout (make test-other-blenders makes them)")
    set_up_stage(build_network(digits_design_bundle))
    configure_render(blender.context.scene, "CYCLES", *SIZE, SAMPLES)
    ours = tmp_path / "saved_here.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(ours))
    this_python = sys.executable
    rendered_here = _open_render_save(this_python, ours, tmp_path / "here.png", None, tmp_path / "user_here")
    here = read_png(tmp_path / "here.png")

    for name, python in others.items():
        theirs = tmp_path / f"saved_in_{name}.blend"
        there = _open_render_save(python, ours, tmp_path / f"{name}.png", theirs, tmp_path / f"user_{name}")
        assert there["version"] != rendered_here["version"], (name, there["version"])
        _same_picture(here, read_png(tmp_path / f"{name}.png"))
        # Their save, opened back here.
        back = _open_render_save(this_python, theirs, tmp_path / f"back_from_{name}.png", None, tmp_path / "user_back")
        assert back["version"] == rendered_here["version"]
        _same_picture(here, read_png(tmp_path / f"back_from_{name}.png"))
