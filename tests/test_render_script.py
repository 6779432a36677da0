"""scripts/render.py and the render operators: stills, PNG sequences in Cycles and Eevee, an MP4
through Blender's own FFmpeg, and one-line errors with exit code 2.

The script runs in its own process (as a user runs it), at 64x36 with a sample
or two; Eevee only ever runs in a subprocess (it aborts where there is no EGL).
"""

import ctypes.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from scene_readers import content_mask, read_png

pytestmark = [pytest.mark.tf, pytest.mark.bpy]
REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "render.py"
TINY = ["--width", "64", "--height", "36"]
SCRIPT_TIMEOUT = 300
EEVEE_TIMEOUT = 600


def run_script(*arguments, timeout=SCRIPT_TIMEOUT):
    """Run the script in a fresh Python, from a folder of its own, with an empty Blender user folder."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender_cnn_script_user_")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, arguments)],
        cwd=tempfile.gettempdir(),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def check_ran(process):
    tail = f"\n--- stdout ---\n{process.stdout[-3000:]}\n--- stderr ---\n{process.stderr[-3000:]}"
    assert process.returncode == 0, f"render.py exited with {process.returncode}{tail}"
    return process


def assert_network_visible(png, size=(64, 36)):
    rgb = read_png(png)
    assert rgb.shape == (size[1], size[0], 3)
    assert content_mask(rgb).mean() > 0.03, content_mask(rgb).mean()
    return rgb


def assert_one_line_error(process, *words):
    assert process.returncode == 2, (process.returncode, process.stdout[-2000:], process.stderr[-2000:])
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("render.py: error: "), lines
    assert "Traceback" not in process.stdout + process.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# --- the script -----------------------------------------------------------------


@pytest.mark.render
def test_still_in_cycles(demo_bundle_path, tmp_path):
    png = tmp_path / "still.png"
    process = check_ran(run_script("--bundle", demo_bundle_path, *TINY, "--samples", 2, "--output", png))
    assert f"wrote {png}" in process.stdout
    assert_network_visible(png)


@pytest.mark.render
def test_animation_in_cycles_with_epochs_and_an_orbit(demo_bundle_path, tmp_path):
    process = check_ran(
        run_script(
            "--bundle",
            demo_bundle_path,
            *TINY,
            "--samples",
            1,
            "--layout",
            "grid",
            "--animate-epochs",
            "--frames-per-epoch",
            2,
            "--hold",
            1,
            "--camera",
            "orbit",
            "--frames",
            1,
            3,
            "--animation",
            "--output",
            tmp_path / "frames" / "net_",
        )
    )
    pngs = [tmp_path / "frames" / f"net_{frame:04d}.png" for frame in (1, 2, 3)]
    frames = [assert_network_visible(png) for png in pngs]
    assert sorted((tmp_path / "frames").iterdir()) == pngs
    # The camera moved between frames.
    assert np.abs(frames[0] - frames[1]).mean() > 1 / 255
    # Progress per frame, with the time left.
    progress = [line for line in process.stdout.splitlines() if line.startswith("render.py: frame")]
    assert len(progress) == 3 and all("left" in line for line in progress), progress
    assert "(3/3)" in progress[-1]


@pytest.mark.render
def test_saved_blend_with_a_push_in(blender, demo_bundle, tmp_path):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    set_up_stage(build_network(demo_bundle))
    blend = tmp_path / "scene.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(blend))
    check_ran(
        run_script(
            "--blend",
            blend,
            *TINY,
            "--samples",
            1,
            "--layout",
            "circle",
            "--camera",
            "push-in",
            "--push-in-layer",
            "pool1",
            "--frames",
            1,
            2,
            "--animation",
            "--output",
            tmp_path / "push_",
        )
    )
    start, end = (assert_network_visible(tmp_path / f"push_{frame:04d}.png") for frame in (1, 2))
    # Close up, the layer's cells fill far more of the frame.
    assert content_mask(end).mean() > 2 * content_mask(start).mean()


@pytest.mark.slow
@pytest.mark.render
@pytest.mark.eevee
def test_animation_in_eevee(demo_bundle_path, tmp_path):
    if ctypes.util.find_library("EGL") is None:
        pytest.skip("no EGL library (install Mesa's libegl1 and libegl-mesa0, see scripts/setup.sh)")
    process = check_ran(
        run_script(
            "--bundle",
            demo_bundle_path,
            *TINY,
            "--samples",
            1,
            "--engine",
            "eevee",
            "--camera",
            "push-in",
            "--push-in-layer",
            "conv1",
            "--frames",
            1,
            3,
            "--animation",
            "--output",
            f"{tmp_path}/",
            timeout=EEVEE_TIMEOUT,
        )
    )
    pngs = sorted(tmp_path.glob("frame_*.png"))
    assert [png.name for png in pngs] == ["frame_0001.png", "frame_0002.png", "frame_0003.png"], process.stdout
    for png in pngs:
        assert_network_visible(png)


@pytest.mark.render
def test_video_through_blenders_ffmpeg(blender, demo_bundle_path, tmp_path):
    video = tmp_path / "net.mp4"
    check_ran(
        run_script(
            "--bundle",
            demo_bundle_path,
            *TINY,
            "--samples",
            1,
            "--camera",
            "orbit",
            "--frames",
            1,
            3,
            "--video",
            "--output",
            video,
        )
    )
    assert video.stat().st_size > 0
    assert video.read_bytes()[4:8] == b"ftyp"
    assert list(tmp_path.iterdir()) == [video]  # the frames were temporary
    # Blender reads it back: three frames of the rendered size.
    clip = blender.data.movieclips.load(str(video))
    try:
        assert clip.frame_duration == 3
        assert tuple(clip.size) == (64, 36)
    finally:
        blender.data.movieclips.remove(clip)


@pytest.mark.parametrize(
    "arguments, words",
    [
        ((), ["--output"]),
        (("--bundle", "missing.bcnn.npz", "--output", "x.png"), ["missing.bcnn.npz", "no such file"]),
        (("--bundle", "BUNDLE", "--camera", "push-in", "--output", "x.png"), ["--push-in-layer"]),
        (("--bundle", "BUNDLE", "--frames", "5", "2", "--output", "x.png"), ["--frames"]),
        (("--bundle", "BUNDLE", "--still", "--video", "--output", "x.mp4"), ["--video"]),
        (("--bundle", "BUNDLE", "--engine", "workbench", "--output", "x.png"), ["--engine"]),
        (("--blend", str(SCRIPT), "--output", "x.png"), [str(SCRIPT), "not a .blend"]),
        (("--bundle", str(SCRIPT), "--output", "x.png"), [str(SCRIPT), "not a network bundle"]),
        (("--blend", str(SCRIPT), "--epoch", "1", "--output", "x.png"), ["--epoch"]),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(demo_bundle_path, tmp_path, arguments, words):
    arguments = [str(demo_bundle_path) if a == "BUNDLE" else a for a in arguments]
    arguments = [str(tmp_path / a) if a.startswith("x.") else a for a in arguments]
    assert_one_line_error(run_script(*arguments), *words)
    assert list(tmp_path.iterdir()) == []


def test_unknown_push_in_layer_names_the_bundle_and_the_layer(demo_bundle_path, tmp_path):
    process = run_script(
        "--bundle",
        demo_bundle_path,
        *TINY,
        "--camera",
        "push-in",
        "--push-in-layer",
        "conv9",
        "--animation",
        "--frames",
        1,
        3,
        "--output",
        f"{tmp_path}/",
    )
    assert_one_line_error(process, str(demo_bundle_path), "conv9")
    assert list(tmp_path.iterdir()) == []


# --- the library function -----------------------------------------------------------


@pytest.mark.render
def test_render_animation_reports_progress_and_can_be_cancelled(blender, demo_bundle, tmp_path):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.rendering import render_animation
    from blender_cnn.scene.stage import set_up_stage

    set_up_stage(build_network(demo_bundle))
    scene = blender.context.scene
    scene.frame_current = 7
    reports = []

    def stop_after_two(report):
        reports.append(report)
        return report.done < 2

    written = render_animation(
        tmp_path, engine="CYCLES", width=64, height=36, samples=1, frame_start=1, frame_end=5, progress=stop_after_two
    )
    assert written == [str(tmp_path / "frame_0001.png"), str(tmp_path / "frame_0002.png")]
    assert [(r.frame, r.done, r.total) for r in reports] == [(1, 1, 5), (2, 2, 5)]
    assert reports[-1].remaining > 0 and reports[-1].elapsed > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame_0001.png", "frame_0002.png"]
    assert scene.frame_current == 7 and scene.render.image_settings.file_format == "PNG"


# --- the operators ----------------------------------------------------------------


@pytest.mark.render
def test_render_operators(blender, demo_bundle, tmp_path):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    bpy = blender
    set_up_stage(build_network(demo_bundle))
    still = tmp_path / "still.png"
    assert bpy.ops.bcnn.render_still(filepath=str(still), width=64, height=36, samples=2) == {"FINISHED"}
    assert_network_visible(still)

    def render_two_frames(filepath, **options):
        return bpy.ops.bcnn.render_animation(
            "EXEC_DEFAULT",
            filepath=filepath,
            width=64,
            height=36,
            samples=1,
            use_scene_range=False,
            frame_start=1,
            frame_end=2,
            **options,
        )

    frames = tmp_path / "frames"
    assert render_two_frames(f"{frames}/") == {"FINISHED"}
    assert sorted(p.name for p in frames.iterdir()) == ["frame_0001.png", "frame_0002.png"]
    video = tmp_path / "clip.mp4"
    assert render_two_frames(str(video), video=True) == {"FINISHED"}
    assert video.read_bytes()[4:8] == b"ftyp"

    with pytest.raises(RuntimeError, match="comes before the first"):
        bpy.ops.bcnn.render_animation(
            "EXEC_DEFAULT", filepath=f"{frames}/", use_scene_range=False, frame_start=5, frame_end=2
        )
    with pytest.raises(RuntimeError, match="even width and height"):
        bpy.ops.bcnn.render_animation("EXEC_DEFAULT", filepath=str(video), video=True, width=63, height=36)

    bpy.context.scene.camera = None
    assert not bpy.ops.bcnn.render_still.poll()
    assert not bpy.ops.bcnn.render_animation.poll()
