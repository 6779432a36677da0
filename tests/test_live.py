"""Live training: the ``LiveRun`` callback's run folder, the status file between the two processes, Watch Run's
rebuilds (settings, keys, names kept), and the whole path with a real training in another process."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from ui_recorder import TIMER, draw_network_panel, modal_context, modal_driver

from blender_cnn.core import live
from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.errors import BlenderCNNError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_PRESET = os.path.join(REPO, "presets", "digits_cnn.json")


def files_under(folder):
    return sorted(
        os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names
    )


# ---------------------------------------------------------------- the status file


def test_the_status_is_read_back_and_refused_when_it_is_not_one(tmp_path):
    assert live.read_status(tmp_path) is None
    bundle = live.bundle_path(tmp_path, "net", 2)
    live.write_status(tmp_path, "net", [0, 1, 2], bundle, live.TRAINING, 5)
    status = live.read_status(tmp_path)
    assert (status.name, status.epochs, status.bundle, status.newest, status.finished) == (
        "net",
        (0, 1, 2),
        str(tmp_path / "live" / "net.epoch_002.bcnn.npz"),
        2,
        False,
    )
    assert status.describe() == "epoch 2 of 5"
    live.write_status(tmp_path, "net", [0, 1, 2], bundle, live.FINISHED)
    assert live.read_status(tmp_path).describe() == "epoch 2, finished"
    assert files_under(tmp_path) == ["live.json"]  # written through a temporary file, renamed

    (tmp_path / "live.json").write_text(json.dumps({"format": "blender_cnn.live", "version": 1, "epochs": []}))
    with pytest.raises(BlenderCNNError, match="lacks its epochs"):
        live.read_status(tmp_path)
    (tmp_path / "live.json").write_text(json.dumps({"format": "blender_cnn.live", "version": 99}))
    with pytest.raises(BlenderCNNError, match="version 99"):
        live.read_status(tmp_path)
    (tmp_path / "live.json").write_text("{")
    with pytest.raises(BlenderCNNError, match="not readable JSON"):
        live.read_status(tmp_path)


def test_the_callback_module_loads_neither_keras_nor_blender():
    code = (
        "import sys, blender_cnn.extract.live\n"
        "print([name for name in ('keras', 'tensorflow', 'bpy') if name in sys.modules])"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert shown.stdout.strip() == "[]"


# ---------------------------------------------------------------- the callback


@pytest.mark.tf
def test_live_run_writes_each_epoch_as_it_ends(keras, tmp_path):
    from blender_cnn.extract.keras_bundle import extract
    from blender_cnn.extract.live import LiveRun

    run_dir = tmp_path / "run"
    rng = np.random.default_rng(3)
    x = rng.random((48, 8, 8, 1), dtype=np.float32)
    y = rng.integers(0, 3, len(x)).astype(np.int32)
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(2, 3, activation="relu", name="conv"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(3, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    callback = LiveRun(run_dir, samples=(x[:4], y[:4]), class_names=["a", "b", "c"], name="tiny", log=lambda _: None)
    assert isinstance(callback, keras.callbacks.Callback)

    seen = []

    class Spy(keras.callbacks.Callback):  # runs after LiveRun: what a watcher could read at each epoch's end
        def on_epoch_end(self, epoch, logs=None):
            status = live.read_status(run_dir)
            seen.append((status.epochs, status.state, sorted(os.listdir(run_dir / "live")), logs["loss"]))

    model.fit(x, y, epochs=3, batch_size=16, validation_split=0.25, verbose=0, callbacks=[callback, Spy()])

    assert [entry[:2] for entry in seen] == [((0, 1), "training"), ((0, 1, 2), "training"), ((0, 1, 2, 3), "training")]
    # The two newest bundles stay: the one the status names and the one a watcher may be loading.
    assert [entry[2] for entry in seen] == [
        ["tiny.epoch_000.bcnn.npz", "tiny.epoch_001.bcnn.npz"],
        ["tiny.epoch_001.bcnn.npz", "tiny.epoch_002.bcnn.npz"],
        ["tiny.epoch_002.bcnn.npz", "tiny.epoch_003.bcnn.npz"],
    ]
    status = live.read_status(run_dir)
    assert (status.epochs, status.state, status.last_epoch) == ((0, 1, 2, 3), "finished", 3)
    assert files_under(run_dir) == [
        "epoch_000.keras",
        "epoch_001.keras",
        "epoch_002.keras",
        "epoch_003.keras",
        "history.json",
        "live.json",
        "live/tiny.epoch_002.bcnn.npz",
        "live/tiny.epoch_003.bcnn.npz",
        "samples.npz",
    ]
    history = json.loads((run_dir / "history.json").read_text())
    assert history["epochs"] == [0, 1, 2, 3]
    assert history["loss"][0] is None  # the untrained network was not evaluated
    assert history["loss"][1:] == pytest.approx([entry[3] for entry in seen])

    bundle = load_bundle(status.bundle)
    assert bundle.epochs == [0, 1, 2, 3] and bundle.class_names == ["a", "b", "c"]
    np.testing.assert_array_equal(bundle.array("samples/inputs"), x[:4])
    kernel = bundle.array(bundle.layer("conv").weights[0].array)
    np.testing.assert_array_equal(kernel[-1], model.get_layer("conv").kernel.numpy())
    assert not np.array_equal(kernel[0], kernel[-1])  # every epoch is its own, not the last one repeated

    # The folder is a run like any other: extracting it afterwards gives the same bundle.
    extracted = load_bundle(extract(run_dir, tmp_path / "extracted.bcnn.npz", log=lambda _: None))
    assert extracted.manifest["layers"] == bundle.manifest["layers"]
    for key in extracted.manifest["metrics"].values():
        np.testing.assert_array_equal(bundle.array(key), extracted.array(key))
    for layer in extracted.layers:
        keys = [layer.activations, *(weight.array for weight in layer.weights)]
        keys += [key for key in (layer.importance, layer.output_gradients) if key]
        for key in keys:
            np.testing.assert_allclose(bundle.array(key), extracted.array(key), rtol=1e-6, atol=1e-7, err_msg=key)


# ---------------------------------------------------------------- Watch Run's rebuilds, without TensorFlow


@pytest.fixture
def design_run(tmp_path):
    """A stand-in live run: two bundles of the demo's design (random weights, no TensorFlow), named in turn by the
    status, as a training would."""
    from blender_cnn.core.design import design_bundle

    run_dir = tmp_path / "run"
    inputs = np.random.default_rng(5).random((3, 16, 16, 1), dtype=np.float32)
    paths = []
    for epoch, seed in enumerate((7, 8)):
        path = live.bundle_path(run_dir, "digits_cnn", epoch)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        paths.append(design_bundle(DEMO_PRESET, path, seed=seed, inputs=inputs))
    return run_dir, paths


def data_counts(bpy):
    return {kind: len(getattr(bpy.data, kind)) for kind in ("objects", "meshes", "hair_curves", "collections")} | {
        "network trees": len([tree for tree in bpy.data.node_groups if tree.name.startswith("BCNN Network")])
    }


@pytest.mark.bpy
def test_a_rebuild_keeps_the_users_settings_keys_names_and_place(blender, design_run):
    from blender_cnn.scene.live import UNCHANGED, UPDATED, WAITING, update_from_run
    from blender_cnn.scene.network import (
        get_network_input,
        network_input_path,
        set_every_layer_input,
        set_network_input,
    )

    run_dir, (first, second) = design_run
    scene, view_layer = blender.context.scene, blender.context.view_layer
    assert update_from_run(run_dir, scene, view_layer).state == WAITING
    live.write_status(run_dir, "digits_cnn", [0], first)
    update = update_from_run(run_dir, scene, view_layer, frame_camera=False)
    network = update.network
    assert update.state == UPDATED and view_layer.objects.active == network
    assert update_from_run(run_dir, scene, view_layer).state == UNCHANGED
    counts = data_counts(blender)

    # What a lecturer changes while watching.
    network.name = "My Net"
    lecture = blender.data.collections.new("Lecture")
    scene.collection.children.link(lecture)
    own = network.users_collection[0]
    lecture.children.link(own)
    scene.collection.children.unlink(own)
    own.name = "Convnet"
    network.location = (1.0, 2.0, 3.0)
    set_network_input(network, "Bundling Strength", 0.25)
    set_every_layer_input(network, "Map Layout", 1.0)
    set_network_input(network, "Sample", 2.0)
    path = network_input_path(network, "Epoch")
    for frame in (1, 20):
        network.keyframe_insert(data_path=path, frame=frame)
    network.select_set(False)
    other = blender.data.objects.new("Empty", None)
    scene.collection.objects.link(other)
    view_layer.objects.active = other

    live.write_status(run_dir, "digits_cnn", [0], second)
    update = update_from_run(run_dir, scene, view_layer)
    rebuilt = update.network
    assert update.state == UPDATED and rebuilt["blender_cnn_bundle"] == second
    assert rebuilt.name == "My Net" and rebuilt.users_collection[0].name == "Convnet"
    assert "Convnet" in lecture.children
    assert tuple(rebuilt.location) == (1.0, 2.0, 3.0)
    assert get_network_input(rebuilt, "Bundling Strength") == pytest.approx(0.25)
    assert get_network_input(rebuilt, "conv1/Map Layout") == pytest.approx(1.0)
    assert get_network_input(rebuilt, "Sample") == 2.0 and rebuilt["blender_cnn_sample"] == 2
    assert rebuilt.animation_data.action is not None
    from bpy_extras import anim_utils

    animation = rebuilt.animation_data
    channels = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    assert [point.co[0] for point in channels.fcurves.find(path).keyframe_points] == [1.0, 20.0]
    # Not selected, not made active: the lecturer's selection stays theirs.
    assert view_layer.objects.active == other and not rebuilt.select_get()
    # Nothing of the old network is left, and the new one has the names a first import gives.
    assert data_counts(blender) == counts | {"objects": counts["objects"] + 1, "collections": counts["collections"] + 1}
    assert sorted(obj.name for obj in rebuilt.users_collection[0].objects if obj != rebuilt) == sorted(
        f"digits_cnn {part}" for part in ("cells", "history", "importance", "layers", "links", "kernels", "operations")
    )


@pytest.mark.bpy
def test_watch_run_from_a_script_builds_once_and_the_panel_shows_the_button(blender, design_run):
    from blender_cnn.ui import jobs
    from blender_cnn.ui.live import Watch

    run_dir, (first, _second) = design_run
    live.write_status(run_dir, "digits_cnn", [0], first, live.FINISHED)
    assert blender.ops.bcnn.watch_run(directory=str(run_dir), frame_camera=False) == {"FINISHED"}
    network = blender.context.view_layer.objects.active
    assert network["blender_cnn_bundle"] == first and network["blender_cnn_live_run"] == str(run_dir)
    record = draw_network_panel(blender)
    assert "bcnn.watch_run" in record["operators"]
    watch = Watch(str(run_dir))
    jobs.running_jobs.append(watch)
    try:
        assert watch.status_text in draw_network_panel(blender)["labels"]
    finally:
        jobs.running_jobs.remove(watch)


@pytest.mark.bpy
def test_watch_run_waits_for_the_training_and_esc_stops_it(blender, design_run):
    from ui_recorder import ESCAPE

    from blender_cnn.ui.jobs import running_jobs
    from blender_cnn.ui.live import BCNN_OT_watch_run, Watch

    run_dir, (first, _second) = design_run
    driver = modal_driver(BCNN_OT_watch_run, directory=str(run_dir), frame_camera=False)
    context = modal_context(blender)
    assert driver.execute(context) == {"RUNNING_MODAL"} and driver._watch in running_jobs
    assert driver.modal(context, TIMER) == {"PASS_THROUGH"}
    assert "waiting for the first epoch" in driver._watch.status_text
    live.write_status(run_dir, "digits_cnn", [0], first, live.TRAINING, 4)
    assert driver.modal(context, TIMER) == {"PASS_THROUGH"}
    assert driver._watch.status_text == "Watching digits_cnn: epoch 0 of 4 (Esc stops)"
    assert blender.context.view_layer.objects.active["blender_cnn_bundle"] == first
    # A status that cannot be read is said once, and the watch goes on.
    (run_dir / "live.json").write_text("{")
    assert [driver.modal(context, TIMER) for _ in range(2)] == [{"PASS_THROUGH"}] * 2
    assert [kind for kind, _text in driver.reports].count({"WARNING"}) == 1
    assert driver.modal(context, ESCAPE) == {"CANCELLED"}
    assert not [job for job in running_jobs if isinstance(job, Watch)]
    assert [name for name, _args in context.window_manager.calls][-1] == "event_timer_remove"


# ---------------------------------------------------------------- the whole path


@pytest.mark.slow
@pytest.mark.tf
@pytest.mark.bpy
def test_watch_run_shows_a_training_in_another_process_epoch_by_epoch(blender, tmp_path):
    from scene_readers import drawn_cells, read_attribute

    from blender_cnn.extract.keras_bundle import extract_run
    from blender_cnn.scene.live import live_network
    from blender_cnn.scene.network import (
        build_network,
        get_network_input,
        set_every_layer_input,
        set_network_input,
    )
    from blender_cnn.ui.jobs import running_jobs
    from blender_cnn.ui.live import BCNN_OT_watch_run

    run_dir = tmp_path / "run"
    # To a file: TensorFlow's output would fill a pipe nobody reads while the test polls.
    with open(tmp_path / "train.log", "w") as log:
        training = subprocess.Popen(
            [sys.executable, "scripts/train.py", "--live", "--epochs", "3", "--run-dir", str(run_dir)],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    try:
        driver = modal_driver(BCNN_OT_watch_run, directory=str(run_dir), frame_camera=True)
        context = modal_context(blender)
        assert driver.execute(context) == {"RUNNING_MODAL"}  # nothing written yet: it waits
        shown, quiet_looks, changed = [], [], False
        deadline = time.monotonic() + 120
        result = {"PASS_THROUGH"}
        while result == {"PASS_THROUGH"} and time.monotonic() < deadline:
            time.sleep(0.1)
            training_ran = training.poll() is None
            started = time.perf_counter()
            result = driver.modal(context, TIMER)
            seconds = time.perf_counter() - started
            network = live_network(run_dir, blender.context.scene)
            if network is None or (shown and shown[-1][0] == network["blender_cnn_bundle"]):
                quiet_looks.append(seconds)
                continue
            # The epochs the scene holds: the history keeps one point per epoch, with its number.
            history = get_network_input(network, "History").data
            epochs = [int(value) for value in read_attribute(history, "epoch")]
            shown.append((network["blender_cnn_bundle"], epochs, get_network_input(network, "Epoch"), training_ran))
            if not changed:  # a lecturer's change while it trains
                set_every_layer_input(network, "Map Layout", 1.0)
                changed = True
        assert training.wait(timeout=60) == 0, (tmp_path / "train.log").read_text()[-3000:]
    finally:
        if training.poll() is None:
            training.kill()

    assert result == {"FINISHED"}, driver.reports
    assert driver._watch not in running_jobs
    assert [name for name, _args in context.window_manager.calls] == [
        "event_timer_add",
        "modal_handler_add",
        "event_timer_remove",
    ]
    # The scene gained epochs while the training ran, the newest shown each time, and ended with all of them.
    counts = [len(epochs) for _path, epochs, _epoch, _running in shown]
    assert len(shown) >= 2 and counts == sorted(set(counts)) and counts[-1] == 4, shown
    assert shown[0][3]  # the look that showed the first epochs began while the training ran
    assert all(epoch == epochs[-1] for _path, epochs, epoch, _running in shown)
    # A look that finds nothing new reads one small file: it does not hold Blender up.
    assert quiet_looks and max(quiet_looks) < 0.25, quiet_looks

    network = live_network(run_dir, blender.context.scene)
    assert get_network_input(network, "conv1/Map Layout") == pytest.approx(1.0)  # kept through every rebuild
    set_every_layer_input(network, "Map Layout", 2.0)  # back to the default, to compare with a fresh import
    imported = build_network(extract_run(run_dir, tmp_path / "imported.bcnn.npz", log=lambda _: None))
    # Watch Run staged its first network (frame_camera), and the stage grew the output neurons for their class names;
    # the rebuilds kept that. Staging an import does the same: give the unstaged import the stage's size.
    set_network_input(imported, "Output Scale", get_network_input(network, "Output Scale"))
    live_centres, live_values = drawn_cells(network)
    centres, values = drawn_cells(imported)
    np.testing.assert_allclose(live_centres, centres, rtol=1e-6, atol=1e-6)
    for name, expected in values.items():
        np.testing.assert_allclose(live_values[name], expected, rtol=1e-6, atol=1e-6, err_msg=name)
