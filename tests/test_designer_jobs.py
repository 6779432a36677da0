"""The designer's long work as a user runs it: export to Keras, train for epochs, Build Scene with progress.

The operators are called through ``bpy.ops`` (a script's click: the job runs
and the operator waits for it) and, for the modal loop a click in the UI
starts, through their own methods on a stand-in with a window
(``ui_recorder.modal_driver``). This test process' Python has TensorFlow,
so jobs run in a thread unless a test makes ``core.jobs`` believe otherwise and
names this Python as the external one.
"""

import copy
import os
import time

import numpy as np
import pytest
from bundle_files import tiny_digits_design
from ui_recorder import ESCAPE, TIMER, draw_designer_panel, modal_context, modal_driver, new_tree_from_preset, run_modal

from blender_cnn.core import jobs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EPOCHS = 2
TINY = tiny_digits_design(
    [
        {"type": "Conv2D", "name": "conv", "filters": 3, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 2},
        {"type": "Flatten", "name": "flatten"},
        {"type": "Dense", "name": "output", "units": 10, "activation": "softmax"},
    ],
    epochs=5,
    batch_size=256,
    learning_rate=0.01,
    seed=1,
)


def tiny_tree(bpy):
    from blender_cnn.designer.tree import tree_from_design

    return tree_from_design(copy.deepcopy(TINY))


def break_tree(tree):
    tree.nodes["conv"].arg_kernel_size = (9, 9)
    return "conv: kernel 9x9 is larger than its 8x8 input"


def scene_state(bpy):
    return (
        sorted(bpy.data.objects.keys()),
        sorted(bpy.data.meshes.keys()),
        sorted(group.name for group in bpy.data.node_groups if group.bl_idname != "BCNN_DesignTree"),
    )


def files_under(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


def started_training(bpy, tree, frame_camera):
    """Train Design of ``tree`` started as a click in the UI starts it: ``(the operator on a stand-in, the
    context of its modal loop)``, its job running."""
    from blender_cnn.designer.tensorflow_operators import BCNN_OT_train_design

    driver = modal_driver(
        BCNN_OT_train_design,
        tree_name=tree.name,
        epochs=EPOCHS,
        dataset="DESIGN",
        image_folder="",
        run_folder="",
        seed=0,
        frame_camera=frame_camera,
    )
    context = modal_context(bpy)
    assert driver.execute(context) == {"RUNNING_MODAL"}
    return driver, context


# ---------------------------------------------------------------- export


@pytest.mark.tf
@pytest.mark.bpy
def test_an_exported_design_loads_in_safe_mode_and_computes_what_its_scene_shows(bpy_designer, tmp_path):
    import keras

    from blender_cnn.scene.network import network_bundle

    bpy = bpy_designer
    tree = new_tree_from_preset(bpy, "builtin:lenet5")
    assert bpy.ops.bcnn.build_design_scene(tree_name=tree.name, seed=3, frame_camera=False) == {"FINISHED"}
    bundle = network_bundle(bpy.context.view_layer.objects.active)
    before = scene_state(bpy)

    path = tmp_path / "exported" / "lenet5.keras"
    # No seed given: the export takes the seed the scene was built with.
    assert bpy.ops.bcnn.export_design(tree_name=tree.name, filepath=str(path)) == {"FINISHED"}
    assert files_under(path.parent) == ["lenet5.keras"]
    assert scene_state(bpy) == before
    model = keras.saving.load_model(path, safe_mode=True)
    inputs = bundle.array("samples/inputs")
    np.testing.assert_allclose(model.predict(inputs, verbose=0), bundle.array("samples/predictions")[0], atol=2e-5)
    np.testing.assert_allclose(
        model.predict(inputs, verbose=0), bundle.array(bundle.layers[-1].activations)[0], atol=2e-5
    )


@pytest.mark.tf
@pytest.mark.bpy
def test_export_runs_in_the_external_python_when_blender_has_no_tensorflow(bpy_designer, tmp_path, external_python):
    import keras

    from blender_cnn.core.design import random_weights
    from blender_cnn.designer.convert import design_from_tree

    tree = tiny_tree(bpy_designer)
    path = tmp_path / "out" / "tiny.keras"
    assert bpy_designer.ops.bcnn.export_design(tree_name=tree.name, filepath=str(path), seed=5) == {"FINISHED"}
    model = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(
        model.get_layer("conv").kernel.numpy(), random_weights(design_from_tree(tree), 5)["conv"]["kernel"]
    )
    assert files_under(path.parent) == ["tiny.keras"]


# ---------------------------------------------------------------- training


@pytest.mark.tf
@pytest.mark.bpy
def test_training_a_design_replaces_its_network_with_every_epoch_and_keeps_the_settings(bpy_designer, runs):
    from blender_cnn.designer.operators import DESIGN_PROPERTY
    from blender_cnn.scene.network import get_network_input, network_bundle, set_network_input

    bpy = bpy_designer
    tree = tiny_tree(bpy)
    assert bpy.ops.bcnn.build_design_scene(tree_name=tree.name, seed=2) == {"FINISHED"}
    designed = network_bundle(bpy.context.view_layer.objects.active)
    set_network_input(bpy.context.view_layer.objects.active, "Layer Spacing", 55.0)
    objects = len(bpy.data.objects)

    assert bpy.ops.bcnn.train_design(tree_name=tree.name, epochs=EPOCHS) == {"FINISHED"}
    network = bpy.context.view_layer.objects.active
    bundle = network_bundle(network)
    assert bundle.epochs == [0, 1, 2] and network[DESIGN_PROPERTY] == "tiny"
    assert network.name == "tiny" and len(bpy.data.objects) == objects
    assert get_network_input(network, "Layer Spacing") == pytest.approx(55.0)
    # Training started from the weights the built scene showed (its seed, 2).
    np.testing.assert_array_equal(bundle.weights("conv", 0)["kernel"], designed.weights("conv", 0)["kernel"])
    assert not np.array_equal(bundle.weights("conv", 2)["kernel"], bundle.weights("conv", 0)["kernel"])
    (run_dir,) = runs.iterdir()
    assert run_dir.name.startswith("tiny-") and network["blender_cnn_bundle"] == str(
        run_dir / f"{run_dir.name}.bcnn.npz"
    )
    assert {"epoch_000.keras", "epoch_002.keras", "run.json"} <= set(os.listdir(run_dir))


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.bpy
def test_training_in_the_external_python_shows_progress_of_both_stages(bpy_designer, runs, external_python):
    from blender_cnn.scene.network import network_bundle

    bpy = bpy_designer
    driver, context = started_training(bpy, tiny_tree(bpy), frame_camera=False)
    assert isinstance(driver._job, jobs.SubprocessJob)
    assert run_modal(driver, context) == {"FINISHED"}, driver.reports
    assert network_bundle(bpy.context.view_layer.objects.active).epochs == [0, 1, 2]
    shown = [text for text in context.workspace.status if text]
    assert any(text.startswith("Training: epoch 1, ") for text in shown), shown
    assert any(text.startswith("Extracting: epoch ") for text in shown), shown
    updates = [args[0] for name, args in context.window_manager.calls if name == "progress_update"]
    assert updates == sorted(updates) and updates[-1] <= 2 * (EPOCHS + 1)
    assert ("progress_begin", (0, 2 * (EPOCHS + 1))) in context.window_manager.calls
    assert driver.reports[-1][0] == {"INFO"} and "Trained design tiny for 2 epochs" in driver.reports[-1][1]


@pytest.mark.tf
@pytest.mark.bpy
def test_cancelling_training_leaves_the_scene_and_the_runs_folder_as_they_were(bpy_designer, runs):
    bpy = bpy_designer
    tree = tiny_tree(bpy)
    before = scene_state(bpy)
    driver, context = started_training(bpy, tree, frame_camera=True)
    assert driver.modal(context, TIMER) == {"PASS_THROUGH"}
    assert driver.modal(context, ESCAPE) == {"CANCELLED"}
    assert driver.reports[-1] == ({"WARNING"}, "Train Design cancelled; the scene is unchanged")
    driver._job.join(timeout=120)  # the thread stops at its next epoch line and removes its work folder
    assert files_under(runs) == []
    assert scene_state(bpy) == before


@pytest.mark.tf
@pytest.mark.bpy
def test_an_invalid_design_is_neither_exported_nor_trained(bpy_designer, runs, tmp_path):
    bpy = bpy_designer
    tree = tiny_tree(bpy)
    reason = break_tree(tree)
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=reason):
        bpy.ops.bcnn.export_design(tree_name=tree.name, filepath=str(tmp_path / "out" / "broken.keras"))
    with pytest.raises(RuntimeError, match=reason):
        bpy.ops.bcnn.train_design(tree_name=tree.name, epochs=EPOCHS)
    assert scene_state(bpy) == before
    assert files_under(tmp_path / "out") == [] and files_under(runs) == []


@pytest.mark.tf
@pytest.mark.bpy
def test_training_refuses_bad_settings_before_starting(bpy_designer, runs, tmp_path):
    bpy = bpy_designer
    tree = tiny_tree(bpy)
    mine = tmp_path / "out" / "my files"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("not a run")
    with pytest.raises(RuntimeError, match="holds files that are not a training run"):
        bpy.ops.bcnn.train_design(tree_name=tree.name, run_folder=str(mine))
    with pytest.raises(RuntimeError, match="Image Folder: is empty"):
        bpy.ops.bcnn.train_design(tree_name=tree.name, dataset="FOLDER")
    with pytest.raises(RuntimeError, match="no such image folder"):
        bpy.ops.bcnn.train_design(tree_name=tree.name, dataset="FOLDER", image_folder=str(tmp_path / "none"))
    with pytest.raises(RuntimeError, match="must end in .keras"):
        bpy.ops.bcnn.export_design(tree_name=tree.name, filepath=str(tmp_path / "out" / "tiny.h5"))
    assert files_under(tmp_path / "out") == ["my files", "my files/notes.txt"] and files_under(runs) == []


# ---------------------------------------------------------------- Build Scene


@pytest.mark.bpy
def test_build_scene_of_a_big_design_shows_progress_and_builds(bpy_designer, slow_forward_pass):
    from blender_cnn.designer.operators import DESIGN_PROPERTY, BCNN_OT_build_design_scene

    bpy = bpy_designer
    tree = new_tree_from_preset(bpy, "builtin:digits_cnn")
    driver = modal_driver(BCNN_OT_build_design_scene, tree_name=tree.name, seed=0, inputs="ALL", frame_camera=False)
    context = modal_context(bpy)
    assert driver.execute(context) == {"RUNNING_MODAL"}
    polls = 0
    while (result := driver.modal(context, TIMER)) == {"PASS_THROUGH"}:
        polls += 1
        time.sleep(0.05)
    assert result == {"FINISHED"} and polls >= 3
    assert bpy.context.view_layer.objects.active[DESIGN_PROPERTY] == "digits_cnn"
    updates = [args[0] for name, args in context.window_manager.calls if name == "progress_update"]
    assert updates == sorted(updates) and 0 < updates[-1] <= 7
    assert ("progress_begin", (0, 7)) in context.window_manager.calls
    assert any(text and text.startswith("Computing activations: layer ") for text in context.workspace.status)
    assert driver.reports[-1][1].startswith("Built design digits_cnn")


@pytest.mark.bpy
def test_build_scene_cancelled_leaves_no_bundle_and_no_network(bpy_designer, slow_forward_pass, tmp_path):
    from blender_cnn.designer.operators import BCNN_OT_build_design_scene

    bpy = bpy_designer
    tree = new_tree_from_preset(bpy, "builtin:digits_cnn")
    before = scene_state(bpy)
    driver = modal_driver(BCNN_OT_build_design_scene, tree_name=tree.name, seed=0, inputs="ALL", frame_camera=True)
    context = modal_context(bpy)
    assert driver.execute(context) == {"RUNNING_MODAL"}
    assert driver.modal(context, TIMER) == {"PASS_THROUGH"}
    assert driver.modal(context, ESCAPE) == {"CANCELLED"}
    driver._job.join(timeout=30)
    assert files_under(tmp_path / "designs") == [] and scene_state(bpy) == before


@pytest.mark.bpy
def test_a_small_design_builds_within_the_first_wait_without_a_modal_loop(bpy_designer):
    from blender_cnn.designer.operators import BCNN_OT_build_design_scene

    tree = tiny_tree(bpy_designer)
    driver = modal_driver(BCNN_OT_build_design_scene, tree_name=tree.name, seed=0, inputs="0", frame_camera=False)
    context = modal_context(bpy_designer)
    assert driver.execute(context) == {"FINISHED"}
    assert context.window_manager.calls == []


@pytest.mark.bpy
def test_the_panel_shows_the_tensorflow_buttons_and_a_running_job(bpy_designer, tmp_path):
    from blender_cnn.ui import jobs as ui_jobs

    bpy = bpy_designer
    tree = tiny_tree(bpy)
    record = draw_designer_panel(bpy, tree)
    assert {"bcnn.export_design", "bcnn.train_design", "bcnn.build_design_scene"} <= set(record["operators"])

    task = jobs.Task(
        "Training", "design 'tiny'", str(tmp_path / "run"), run=lambda *_args: time.sleep(0.2), progress_total=6
    )
    job = jobs.start_job(task)
    ui_jobs.running_jobs.append(job)
    try:
        record = draw_designer_panel(bpy, tree)
    finally:
        ui_jobs.running_jobs.remove(job)
        job.cancel()
        job.join()
    assert "Training: starting TensorFlow... (Esc to" in record["labels"]


@pytest.mark.tf
@pytest.mark.bpy
def test_a_training_that_fails_reports_one_line_and_leaves_nothing(bpy_designer, runs):
    from blender_cnn.designer.tree import tree_from_design

    bpy = bpy_designer
    three = copy.deepcopy(TINY)
    three["class_names"] = ["a", "b", "c"]
    three["layers"][-1]["units"] = 3
    tree = tree_from_design(three)
    before = scene_state(bpy)
    with pytest.raises(RuntimeError, match=r"design 'tiny': lists 3 class names, but dataset 'digits' has 10 "):
        bpy.ops.bcnn.train_design(tree_name=tree.name, epochs=EPOCHS)
    assert scene_state(bpy) == before and files_under(runs) == []


# ---------------------------------------------------------------- the job machinery


def write_run(out_path, log, _should_stop, names=("epoch_000.keras",)):
    os.makedirs(out_path)
    for name in names:
        log(f"epoch {name[6:9]}: {name}")
        with open(os.path.join(out_path, name), "w") as handle:
            handle.write("new")
    log(f"{jobs.STAGE_PREFIX}Extracting")
    log("epoch 0: read")


def test_a_finished_folder_output_replaces_an_earlier_one_whole(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "epoch_007.keras").write_text("old")
    task = jobs.Task("Training", "design 'x'", str(run_dir), run=write_run, progress_total=2)
    job = jobs.start_job(task)
    assert job.wait() == str(run_dir)
    assert (job.label, job.progress_done, job.last_step) == ("Extracting", 2, "epoch 0")
    assert files_under(tmp_path) == ["run", "run/epoch_000.keras"]


def test_a_job_error_is_one_line_and_nothing_is_left(tmp_path):
    from blender_cnn.core.errors import BlenderCNNError

    def fail(_out_path, log, _should_stop):
        log("epoch 0: trained")
        raise BlenderCNNError("design 'x'", "has 2 problems:\n  a: no\n  b: no")

    job = jobs.start_job(jobs.Task("Training", "design 'x'", str(tmp_path / "run"), run=fail))
    with pytest.raises(BlenderCNNError) as raised:
        job.wait()
    assert str(raised.value) == job.error == "design 'x': has 2 problems: a: no; b: no"
    assert job.status_text == f"Training failed: {job.error}"
    assert files_under(tmp_path) == []

    silent = jobs.start_job(jobs.Task("Exporting", "design 'x'", str(tmp_path / "x.keras"), run=lambda *_args: None))
    with pytest.raises(BlenderCNNError, match="exporting ended without writing x.keras"):
        silent.wait()
    assert files_under(tmp_path) == []
