"""Composition checks (scene/composition.py), measured on the projected geometry: the stage leaves the demo, a
CIFAR-like network, a graph of residual blocks and MobileNetV2 (in the slow tier; its output read as the top classes)
nothing to fix, and bad cameras are caught by messages that name the text.

Renders are not needed: the checks read the evaluated geometry and project it with the scene camera at the render
size, as a render would show it.
"""

import math
from pathlib import Path

import numpy as np
import pytest
from ui_recorder import draw_network_panel

pytestmark = pytest.mark.bpy
SIZE = (1280, 720)
CIFAR_PRESET = Path(__file__).resolve().parent.parent / "presets" / "cifar10_grey.json"


@pytest.fixture(scope="module")
def cifar_design_bundle(tmp_path_factory):
    """The CIFAR-10-greyscale preset with random weights, computed in numpy (no TensorFlow)."""
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle

    inputs = np.random.default_rng(11).random((2, 32, 32, 1), dtype=np.float32)
    path = tmp_path_factory.mktemp("cifar_design") / "cifar10_grey.bcnn.npz"
    return load_bundle(design_bundle(CIFAR_PRESET, path, seed=7, inputs=inputs))


@pytest.fixture(scope="module")
def mobilenet_bundle(tmp_path_factory):
    """keras.applications' MobileNetV2 at 32x32, alpha 0.35, 10 classes, random weights, as a user imports it."""
    keras = pytest.importorskip("keras")
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.extract.keras_bundle import extract

    folder = tmp_path_factory.mktemp("mobilenet")
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10, alpha=0.35)
    model.save(folder / "MobileNetV2.keras")
    inputs = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32) * 255
    np.savez(folder / "samples.npz", inputs=inputs, labels=np.zeros(1, np.int32))
    path = extract(
        folder / "MobileNetV2.keras",
        folder / "MobileNetV2.bcnn.npz",
        samples=folder / "samples.npz",
        importance=False,
        log=lambda *_: None,
    )
    keras.backend.clear_session()
    return load_bundle(path)


SCENES = ["digits_design_bundle", "cifar_design_bundle", "residual_design_bundle"]


def staged(blender, bundle, size=SIZE):
    """``bundle`` built and staged for a render of ``size``; returns the network and the camera."""
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    scene = blender.context.scene
    scene.render.resolution_x, scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    network = build_network(bundle)
    return network, set_up_stage(network, scene)


def checked(blender, network, camera=None):
    from blender_cnn.scene.composition import check_composition

    return check_composition(blender.context.scene, network, camera)


def moved(camera, toward=None, share=0.0, turn=0.0):
    """``camera`` moved ``share`` of the way to ``toward`` and turned ``turn`` degrees about the world's up."""
    import bpy
    from mathutils import Matrix, Vector

    if toward is not None:
        camera.location = camera.location.lerp(Vector(toward), share)
    if turn:
        rotation = Matrix.Rotation(math.radians(turn), 4, "Z") @ camera.matrix_world
        camera.rotation_mode = "QUATERNION"
        camera.rotation_quaternion = rotation.to_quaternion()
    bpy.context.view_layer.update()


def network_centre(network):
    from blender_cnn.scene.drawn import drawn_points

    points = drawn_points(network)
    return (points.min(axis=0) + points.max(axis=0)) / 2


# ---------------------------------------------------------------- the default stage


@pytest.mark.parametrize("scene_bundle", SCENES)
def test_the_stage_leaves_nothing_to_fix(blender, request, scene_bundle):
    """Every label, the legend, the class names and the probabilities stand in the frame, clear of each other and of
    the cells, and tall enough at 1280x720; the network fills the frame."""
    from blender_cnn.scene.network import get_network_input

    bundle = request.getfixturevalue(scene_bundle)
    network, _camera = staged(blender, bundle)
    problems = checked(blender, network)
    assert problems == [], "\n".join(map(str, problems))
    # Each keeps a class name and probability beside every output neuron (no top classes' readout).
    assert get_network_input(network, "Top Classes") == 0


@pytest.mark.tf
@pytest.mark.slow
def test_mobilenet_has_nothing_to_fix_its_output_read_as_the_top_classes(blender, mobilenet_bundle):
    """MobileNetV2's class names would need its output column 2.5 times as tall as its tallest wall to read in a view
    of the whole network (three rows of 19 units): the stage shows the top classes' readout instead, in the labels'
    size, and leaves nothing to fix."""
    from blender_cnn.scene.drawn_texts import read_drawing
    from blender_cnn.scene.network import get_network_input

    network, _camera = staged(blender, mobilenet_bundle)
    problems = checked(blender, network)
    assert problems == [], "\n".join(map(str, problems))
    assert get_network_input(network, "Top Classes") == 5
    assert get_network_input(network, "Output Scale") == 1.0  # the column no longer grows for texts it does not hold
    # Its title and five rows, which the checks above measured.
    assert sum(text.kind == "readout" for text in read_drawing(network).texts) == 6


def test_the_output_neurons_grow_for_their_texts_and_no_taller_than_the_network(blender, digits_design_bundle):
    """The demo's class names and probabilities are sized in the output neurons' pitch: the stage grows those neurons
    alone (Output Scale), not every dense layer's (Neuron Scale)."""
    from blender_cnn.scene.composition import View, min_text_height, read_drawing, text_heights
    from blender_cnn.scene.network import get_network_input

    network, camera = staged(blender, digits_design_bundle)
    assert get_network_input(network, "Neuron Scale") == pytest.approx(2.5)
    assert get_network_input(network, "Output Scale") > 1.2
    drawing = read_drawing(network)
    heights = text_heights(drawing, View(camera, blender.context.scene))
    output = [
        height
        for text, height in zip(drawing.texts, heights)
        if text.kind == "probability" or text.group.startswith("the class names")
    ]
    assert len(output) >= 11 and min(output) >= min_text_height(SIZE[1])
    # No taller than the tallest other layer by more than the stage allows.
    from blender_cnn.scene.stage import COLUMN_ROOM

    last = len(digits_design_bundle.layers) - 1
    tallest = max(np.ptp(drawing.cells[drawing.cell_layers == layer][:, :, 2]) for layer in range(last))
    assert np.ptp(drawing.cells[drawing.cell_layers == last][:, :, 2]) <= COLUMN_ROOM * tallest * 1.001


def test_staging_grows_the_labels_the_camera_shows_too_small(blender, digits_design_bundle):
    from blender_cnn.scene.composition import View, min_text_height, read_drawing, text_heights
    from blender_cnn.scene.network import get_network_input

    network, camera = staged(blender, digits_design_bundle)
    assert get_network_input(network, "Label Size") > 3.5  # the build's, which the old stage left at 9 px
    drawing = read_drawing(network)
    heights = text_heights(drawing, View(camera, blender.context.scene))
    labels = [height for text, height in zip(drawing.texts, heights) if text.group == "the labels under the layers"]
    assert len(labels) == len(digits_design_bundle.layers)
    assert min(labels) >= min_text_height(SIZE[1])


# ---------------------------------------------------------------- bad cameras


def test_a_camera_too_close_cuts_the_labels_and_the_network(blender, digits_design_bundle):
    network, camera = staged(blender, digits_design_bundle)
    moved(camera, network_centre(network), 0.55)
    problems = checked(blender, network)
    kinds = {problem.kind for problem in problems}
    assert {"outside", "framing"} <= kinds, problems
    cut = [str(problem) for problem in problems if problem.kind == "outside"]
    assert any(message.startswith("The label under ") and "cut by the frame's" in message for message in cut), cut
    framing = [str(problem) for problem in problems if problem.kind == "framing"]
    assert any(message.startswith("The network runs out of the frame at the ") for message in framing), framing


def test_a_camera_pointing_off_leaves_the_frame_half_empty(blender, digits_design_bundle):
    network, camera = staged(blender, digits_design_bundle)
    moved(camera, turn=14.0)  # to the left: the network slides right, out of the frame
    problems = [str(problem) for problem in checked(blender, network) if problem.kind == "framing"]
    assert any("runs out of the frame at the right" in message for message in problems), problems
    assert any("of the frame is empty left of the network" in message for message in problems), problems


def test_a_tiny_render_makes_every_text_too_small(blender, digits_design_bundle):
    network, _camera = staged(blender, digits_design_bundle)
    blender.context.scene.render.resolution_x, blender.context.scene.render.resolution_y = 192, 108
    small = [problem for problem in checked(blender, network) if problem.kind == "small"]
    groups = {problem.subject for problem in small}
    assert {"the labels under the layers", "the legend"} <= groups, groups
    message = next(str(problem) for problem in small if problem.subject == "the labels under the layers")
    assert message.startswith("The labels under the layers (8) are ") and message.endswith(
        "px high; at 192x108 a text needs 7 px"
    ), message


def test_layers_too_close_overlap_their_labels_and_run_across_cells(blender, digits_design_bundle):
    from blender_cnn.scene.network import set_network_input

    network, _camera = staged(blender, digits_design_bundle)
    set_network_input(network, "Layer Spacing", 12.0)
    problems = checked(blender, network)
    overlaps = [str(problem) for problem in problems if problem.kind == "overlap"]
    assert any(
        message.startswith("The label under ") and " runs into the label under " in message for message in overlaps
    ), overlaps
    across = [str(problem) for problem in problems if problem.kind == "over cells"]
    assert any(" lies across " in message and " cells of " in message for message in across), across


# ---------------------------------------------------------------- thresholds and helpers


@pytest.mark.parametrize(("height", "needed"), [(720, 9.0), (1080, 13.5), (2160, 27.0), (480, 7.0), (108, 7.0)])
def test_the_least_text_height_follows_the_frame_and_never_drops_below_a_readable_glyph(height, needed):
    from blender_cnn.scene.composition import min_text_height

    assert min_text_height(height) == pytest.approx(needed)


def test_overlap_needs_more_than_a_touch_and_finds_shapes_smaller_than_a_pixel():
    from blender_cnn.scene.composition import _quads_overlap

    square = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]])
    others = np.stack([square + (10.5, 0.0), square + (9.5, 0.0), square + (5.0, 5.0), square * 0.03 + (4.0, 4.0)])
    assert _quads_overlap(square, others).tolist() == [False, False, True, True]


def test_a_crowded_labels_notes_wrap_first_then_its_type():
    from blender_cnn.scene.stage import wrap_label

    label = "dense1\nDense 256\n19,968 of 2,097,152 connections (strongest 78 per neuron over the run)"
    once = wrap_label(label)
    assert once.split("\n")[:2] == ["dense1", "Dense 256"] and max(map(len, once.split("\n"))) <= 20
    assert " ".join(once.split("\n")[2:]) == label.split("\n")[2]
    pool = "pool2\nMaxPooling2D 8x8x128"
    assert wrap_label(pool) == "pool2\nMaxPooling2D\n8x8x128"
    assert wrap_label(wrap_label(pool)) == wrap_label(pool)


# ---------------------------------------------------------------- the operator, the panel, camera moves


def test_check_composition_reports_and_lists_the_problems_in_the_panel(blender, digits_design_bundle):
    network, camera = staged(blender, digits_design_bundle)
    blender.context.view_layer.objects.active = network
    assert blender.ops.bcnn.check_composition() == {"FINISHED"}
    record = draw_network_panel(blender)
    assert "bcnn.check_composition" in record["operators"]
    assert "Composition at 1280x720: nothing to fix" in record["labels"]
    moved(camera, turn=14.0)
    assert blender.ops.bcnn.check_composition() == {"FINISHED"}
    record = draw_network_panel(blender)
    problems = checked(blender, network)
    assert len(problems) > 1
    assert f"Composition at 1280x720: {len(problems)} problems" in record["labels"]
    assert str(problems[0]) in record["labels"]


def test_fix_stages_a_camera_pointed_off_again(blender, digits_design_bundle):
    network, camera = staged(blender, digits_design_bundle)
    blender.context.view_layer.objects.active = network
    moved(camera, turn=14.0)
    assert any(problem.kind == "framing" for problem in checked(blender, network))
    assert blender.ops.bcnn.check_composition(fix=True) == {"FINISHED"}
    assert not any(problem.kind == "framing" for problem in checked(blender, network))


def test_a_push_in_is_checked_at_its_keyframes_the_close_view_for_what_it_shows(blender, digits_design_bundle):
    from blender_cnn.scene.camera_moves import push_in
    from blender_cnn.scene.composition import check_camera_moves, keyframes

    network, camera = staged(blender, digits_design_bundle)
    push_in(network, "conv2", frame_start=1, frame_end=40)
    assert keyframes(camera) == [1, 40]
    problems = check_camera_moves(blender.context.scene, network)
    assert {problem.frame for problem in problems} <= {1, 40}
    # The whole network at the start, as the stage framed it: nothing to fix.
    assert [problem for problem in problems if problem.frame == 1] == []
    # The close view of conv2 cuts the rest of the network by design: not a framing problem.
    assert not any(problem.kind == "framing" for problem in problems if problem.frame == 40)
