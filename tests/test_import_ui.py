"""Importing TensorFlow checkpoints: the extraction job (in another Python and in this one)
and the ``bcnn.import_checkpoint`` operator driven from bpy.

The demo run folder (``demo_bundle_path.parent``) is the source throughout;
this test process' own Python (the venv's, with TensorFlow) plays the
"external Python" a user sets in the preferences.
"""

import os
import re
import shutil
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
from ui_recorder import ESCAPE, modal_context, modal_driver, run_in_fresh_blender, run_modal

from blender_cnn.core import jobs
from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.errors import BlenderCNNError
from blender_cnn.extract import extraction


def leftovers(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_command_is_an_argument_list_with_only_the_options_set(tmp_path):
    command = extraction.extract_arguments("run", tmp_path / "b.bcnn.npz")
    assert command == ["-m", "blender_cnn.extract", "run", "--out", str(tmp_path / "b.bcnn.npz")]
    command = extraction.extract_arguments(
        "m.h5", "b", extraction.ExtractionOptions(architecture="m.json", samples="s.npz", allow_unsafe=True)
    )
    assert command[3:] == ["--out", "b", "--architecture", "m.json", "--samples", "s.npz", "--allow-unsafe"]
    command = extraction.extract_arguments(
        "run",
        "b",
        extraction.ExtractionOptions(images=("a.png", "b.jpg"), samples_per_class=3, float16=True, importance=False),
    )
    assert command[3:] == [
        "--out",
        "b",
        "--images",
        "a.png",
        "b.jpg",
        "--samples-per-class",
        "3",
        "--float16",
        "--no-importance",
    ]
    environment = jobs.child_environment({"PYTHONPATH": "/elsewhere", "PYTHONHOME": "/blender/python"})
    assert environment["PYTHONPATH"] == str(jobs.ADDON_ROOT.parent)
    assert "PYTHONHOME" not in environment


def test_the_progress_total_counts_the_largest_group_of_numbered_checkpoints(tmp_path):
    for name in (
        "epoch_000.keras",
        "epoch_001.keras",
        "epoch_002.keras",
        "best.keras",
        "samples.npz",
        "ckpt-1.index",
        "ckpt-1.data-00000-of-00001",
    ):
        (tmp_path / name).write_bytes(b"")
    assert extraction.expected_epoch_count(tmp_path) == 3
    assert extraction.expected_epoch_count(tmp_path / "best.keras") == 1
    assert extraction.expected_epoch_count(tmp_path / "samples.npz") is None


def test_progress_and_error_lines_are_parsed():
    assert jobs.parse_progress("epoch 12: epoch_012.keras (0.1 s)") == "epoch 12"
    assert jobs.parse_progress("layer block1_conv1: 1/22") == "layer block1_conv1"
    assert jobs.parse_progress("wrote x.bcnn.npz: 8 layers") is None
    assert jobs.one_line("design 'x': has 2 problems:\n  a: no\n  b: no") == "design 'x': has 2 problems: a: no; b: no"
    stderr = ["I0000 oneDNN custom operations are on.", "error: /runs/a/epoch_001.keras: cannot be opened", ""]
    assert jobs.error_message(stderr, 2) == "/runs/a/epoch_001.keras: cannot be opened"
    assert (
        jobs.error_message(["Traceback (most recent call last):", "ZeroDivisionError: boom"], 1)
        == "ZeroDivisionError: boom"
    )
    assert jobs.error_message([], -9) == "exited with code -9 and printed no error"


@pytest.mark.tf
def test_external_python_extracts_the_run_with_progress(demo_run_dir, tmp_path):
    job = extraction.start_extraction(demo_run_dir, tmp_path, python_path=sys.executable, in_process=False)
    assert isinstance(job, jobs.SubprocessJob)
    seen = []
    while job.poll() == jobs.RUNNING:
        seen.append(job.progress_done)
        time.sleep(0.05)
    assert job.state == jobs.FINISHED, job.error
    checkpoints = sorted(demo_run_dir.glob("epoch_*.keras"))
    assert job.progress_total == job.progress_done == len(checkpoints)
    assert job.last_step == f"epoch {len(checkpoints) - 1}"
    assert seen == sorted(seen)
    bundle = load_bundle(job.bundle_path)
    assert bundle.epochs == list(range(len(checkpoints)))
    assert leftovers(tmp_path) == [os.path.basename(job.bundle_path)]


@pytest.mark.tf
def test_a_bad_checkpoint_fails_with_one_line_naming_the_file(demo_run_dir, tmp_path):
    source = tmp_path / "broken_run"
    source.mkdir()
    (source / "epoch_000.keras").write_bytes(b"not a keras file")
    shutil.copy(demo_run_dir / "samples.npz", source / "samples.npz")
    out_dir = tmp_path / "bundles"
    job = extraction.start_extraction(source, out_dir, python_path=sys.executable, in_process=False)
    with pytest.raises(BlenderCNNError) as raised:
        job.wait()
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(str(source / "epoch_000.keras") + ": ")
    assert job.error == message
    assert leftovers(out_dir) == []


@pytest.mark.tf
def test_cancel_stops_the_process_and_leaves_nothing(demo_run_dir, tmp_path):
    job = extraction.start_extraction(demo_run_dir, tmp_path, python_path=sys.executable, in_process=False)
    time.sleep(0.5)  # TensorFlow takes seconds to import: the process is mid-run
    assert job.poll() == jobs.RUNNING
    job.cancel()
    assert job.process.returncode is not None
    assert job.state == jobs.CANCELLED
    assert leftovers(tmp_path) == []
    with pytest.raises(jobs.JobCancelled):
        job.wait()


@pytest.mark.tf
def test_in_process_extraction_and_cancel(demo_run_dir, tmp_path):
    job = extraction.start_extraction(demo_run_dir, tmp_path / "done", in_process=True)
    assert isinstance(job, jobs.ThreadJob)
    path = job.wait()
    assert job.progress_done == job.progress_total
    assert load_bundle(path).epochs == load_bundle(demo_run_dir / "digits_cnn.bcnn.npz").epochs

    cancelled = extraction.start_extraction(demo_run_dir, tmp_path / "cancelled", in_process=True)
    cancelled.cancel()
    cancelled.join(timeout=60)
    assert cancelled.poll() == jobs.CANCELLED
    assert leftovers(tmp_path / "cancelled") == []


@pytest.mark.tf
def test_without_tensorflow_the_message_says_what_to_install_and_where(demo_run_dir, tmp_path):
    with pytest.raises(BlenderCNNError, match=r"Edit > Preferences > Add-ons > Blender CNN.*tensorflow-cpu"):
        extraction.start_extraction(demo_run_dir, tmp_path, python_path="", in_process=False)
    with pytest.raises(BlenderCNNError, match="does not exist"):
        extraction.start_extraction(
            demo_run_dir, tmp_path, python_path=str(tmp_path / "nowhere" / "python"), in_process=False
        )
    assert leftovers(tmp_path) == []


@pytest.mark.tf
@pytest.mark.skipif(sys.platform == "win32", reason="a script with a #! line stands in for a Python")
def test_an_external_python_without_tensorflow_is_named(demo_run_dir, tmp_path):
    # Answers the TensorFlow probe as a Python without TensorFlow would: exit status 1.
    python = tmp_path / "python"
    python.write_text(f"#!{sys.executable}\nimport sys\nsys.exit(1)\n")
    python.chmod(0o755)
    with pytest.raises(BlenderCNNError) as raised:
        extraction.start_extraction(demo_run_dir, tmp_path / "out", python_path=str(python), in_process=False)
    message = str(raised.value)
    assert message.startswith(f"{python}: has no TensorFlow")
    assert f"{python} -m pip install tensorflow-cpu" in message


def scene_state(bpy):
    return sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys()), sorted(bpy.data.node_groups.keys())


@pytest.mark.tf
@pytest.mark.bpy
def test_operator_builds_the_network_of_a_run_folder(blender, demo_run_dir, bundle_folder):
    result = blender.ops.bcnn.import_checkpoint(directory=str(demo_run_dir), epoch=0, sample=2)
    assert result == {"FINISHED"}
    network = blender.context.view_layer.objects.active
    assert network is not None and network.modifiers.get("BlenderCNN") is not None
    assert network["blender_cnn_epoch"] == 0 and network["blender_cnn_sample"] == 2
    bundle = load_bundle(network["blender_cnn_bundle"])
    expected = load_bundle(demo_run_dir / "digits_cnn.bcnn.npz")
    np.testing.assert_array_equal(
        bundle.array(bundle.layers[-1].activations), expected.array(expected.layers[-1].activations)
    )
    assert leftovers(bundle_folder) == [os.path.basename(network["blender_cnn_bundle"])]


def write_png(bpy, path, pixels):
    """Save (h, w, 4) RGBA values 0..1 as a PNG through Blender's own image writer."""
    height, width = pixels.shape[:2]
    image = bpy.data.images.new(path.stem, width, height, alpha=True)
    image.pixels.foreach_set(np.ascontiguousarray(pixels[::-1], dtype=np.float32).ravel())  # Blender is bottom-up
    image.filepath_raw = str(path)
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)


@pytest.mark.tf
@pytest.mark.bpy
def test_operator_records_the_images_of_a_folder_as_samples(blender, demo_run_dir, tmp_path, bundle_folder):
    images = tmp_path / "my digits"
    images.mkdir()
    stroke = np.zeros((32, 32, 4), dtype=np.float32)
    stroke[..., 3] = 1.0
    stroke[4:28, 14:18, :3] = 1.0  # a bright vertical bar, like a "1"
    write_png(blender, images / "one.png", stroke)
    write_png(blender, images / "blank.png", np.dstack([np.zeros((20, 20, 3)), np.ones((20, 20))]))

    result = blender.ops.bcnn.import_checkpoint(
        directory=str(demo_run_dir), image_folder=str(images), float16=True, importance=False
    )
    assert result == {"FINISHED"}
    bundle = load_bundle(blender.context.view_layer.objects.active["blender_cnn_bundle"])
    inputs = bundle.array(bundle.manifest["samples"]["inputs"])
    assert inputs.shape == (2, 16, 16, 1)
    # Sorted by name: blank, then one (its bar, 14..17 of 32 pixels, lands on columns 7 and 8 of 16).
    assert inputs[0].max() == 0.0
    assert inputs[1, 4:12, 7:9].min() > 0.8 and inputs[1, :, :5].max() == 0.0
    assert bundle.manifest["samples"]["preprocessing"]["files"] == ["blank.png", "one.png"]
    assert bundle.array(bundle.layers[-1].activations).dtype == np.float16
    assert bundle.importance_info is None and bundle.version == 2  # importance was switched off


@pytest.mark.tf
@pytest.mark.bpy
def test_operator_refuses_an_image_folder_without_images(blender, demo_run_dir, tmp_path, bundle_folder):
    before = scene_state(blender)
    with pytest.raises(RuntimeError, match="holds no PNG or JPEG images"):
        blender.ops.bcnn.import_checkpoint(directory=str(demo_run_dir), image_folder=str(tmp_path))
    assert scene_state(blender) == before


@pytest.mark.tf
@pytest.mark.bpy
def test_operator_failure_leaves_the_scene_unchanged(blender, demo_run_dir, tmp_path, bundle_folder):
    source = tmp_path / "broken_run"
    source.mkdir()
    (source / "epoch_000.keras").write_bytes(b"not a keras file")
    shutil.copy(demo_run_dir / "samples.npz", source / "samples.npz")
    before = scene_state(blender)
    with pytest.raises(RuntimeError, match=re.escape(str(source / "epoch_000.keras") + ": ")):
        blender.ops.bcnn.import_checkpoint(directory=str(source))
    assert scene_state(blender) == before
    assert leftovers(bundle_folder) == []


@pytest.mark.tf
@pytest.mark.bpy
def test_operator_runs_the_external_python_when_blender_has_no_tensorflow(
    blender, demo_run_dir, monkeypatch, bundle_folder
):
    from blender_cnn.ui import preferences

    monkeypatch.setattr(jobs, "modules_in_this_python", lambda _modules: False)
    monkeypatch.setattr(preferences, "python_with_tensorflow", lambda _context: "")
    missing = "TensorFlow is not importable in Blender's Python. Set 'Python with TensorFlow'"
    with pytest.raises(RuntimeError, match=missing):
        blender.ops.bcnn.import_checkpoint(directory=str(demo_run_dir))
    assert blender.context.view_layer.objects.active is None

    monkeypatch.setattr(preferences, "python_with_tensorflow", lambda _context: sys.executable)
    assert blender.ops.bcnn.import_checkpoint(filepath=str(demo_run_dir), frame_camera=False) == {"FINISHED"}
    assert blender.context.view_layer.objects.active.modifiers.get("BlenderCNN") is not None


def _checkpoint_operator():
    from blender_cnn.ui.operators import BCNN_OT_import_checkpoint

    return BCNN_OT_import_checkpoint


@pytest.mark.tf
@pytest.mark.bpy
def test_the_modal_loop_shows_progress_builds_and_cancels_with_esc(demo_run_dir, tmp_path):
    # bpy first: importing it while an extraction thread imports Keras can deadlock the two imports.
    operator = _checkpoint_operator()

    built = []
    driver = modal_driver(
        operator,
        extraction.start_extraction(demo_run_dir, tmp_path / "done", in_process=True),
        job_finished=lambda _context: built.append(driver._job.bundle_path) or {"FINISHED"},
    )
    context = modal_context()
    assert driver._start_modal(context) == {"RUNNING_MODAL"}
    assert driver.modal(context, SimpleNamespace(type="MOUSEMOVE", value="NOTHING")) == {"PASS_THROUGH"}
    assert run_modal(driver, context) == {"FINISHED"} and os.path.isfile(built[0])
    called = [name for name, _args in context.window_manager.calls]
    assert called[:3] == ["event_timer_add", "progress_begin", "modal_handler_add"]
    assert called[-2:] == ["event_timer_remove", "progress_end"] and "progress_update" in called
    shown = context.workspace.status
    assert shown[-1] is None and any("Esc to cancel" in text for text in shown[:-1])

    job = extraction.start_extraction(demo_run_dir, tmp_path / "cancelled", in_process=True)
    driver = modal_driver(operator, job)
    context = modal_context()
    driver._start_modal(context)
    assert driver.modal(context, ESCAPE) == {"CANCELLED"}
    assert driver.reports[-1] == ({"WARNING"}, "Import Network Checkpoint cancelled; the scene is unchanged")
    job.join(timeout=60)
    assert leftovers(tmp_path / "cancelled") == []


# Runs inside a fresh Blender (bpy) process: argv = zip demo_run_dir. Blender's Python here has TensorFlow,
# so ``core.jobs`` is told it has none, to take the path of a Blender without it.
_INSTALLED_SCRIPT = r"""
import json, sys
import bpy

zip_path, demo_run_dir = sys.argv[1:3]
package = "bl_ext.user_default.blender_cnn"
bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
sys.modules[package + ".core.jobs"].modules_in_this_python = lambda _modules: False
bpy.context.preferences.addons[package].preferences.python_path = sys.executable
result = {"import": sorted(bpy.ops.bcnn.import_checkpoint(directory=demo_run_dir)),
          "bundle": bpy.context.view_layer.objects.active["blender_cnn_bundle"],
          "user_folder": bpy.utils.extension_path_user(package)}
preferences = bpy.context.preferences.addons[package].preferences
preferences.render_engine, preferences.render_samples = "EEVEE", 5
result["render_defaults"] = sys.modules[package + ".ui.render"].preference_defaults(bpy.context)
print("IMPORT_RESULT:" + json.dumps(result))
"""


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.bpy
def test_installed_extension_extracts_in_the_external_python(extension_zip, demo_run_dir, tmp_path):
    from pathlib import Path

    result = run_in_fresh_blender(
        _INSTALLED_SCRIPT, "IMPORT_RESULT:", tmp_path / "user", extension_zip, demo_run_dir, timeout=300
    )
    assert result["import"] == ["FINISHED"]
    # The bundle lands in the extension's user folder, not in the add-on's own folder.
    assert Path(result["bundle"]).parent == Path(result["user_folder"]) / "bundles"
    assert leftovers(Path(result["user_folder"]) / "bundles") == [os.path.basename(result["bundle"])]
    # The render operators start from the engine and samples set in the preferences.
    assert result["render_defaults"] == {"engine": "EEVEE", "samples": 5, "width": 1280, "height": 720}
