"""Epoch and sample over the timeline: the evaluated scene against the bundle's epochs and their blends."""

import numpy as np
import pytest
from scene_readers import drawn_cells, evaluated_geometry, read_attribute

pytestmark = [pytest.mark.tf, pytest.mark.bpy]  # the trained demo's epochs, metrics and samples


def set_input(network, name, value):
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, name, value)


def conv1_values(network):
    """conv1's drawn activations in (channel, row, col) order."""
    _centres, cells = drawn_cells(network)
    mine = (cells["layer"] == 1) & (cells["is_summary"] == 0)
    order = np.lexsort((cells["col"][mine], cells["row"][mine], cells["channel"][mine]))
    return cells["activation"][mine][order]


def bundle_conv1(bundle, epoch, sample):
    return np.asarray(bundle.activations("conv1", epoch, sample), dtype=np.float32).transpose(2, 0, 1).ravel()


def edge_weights(network):
    geometry = evaluated_geometry(network)
    return read_attribute(geometry.curves, "weight")


def test_the_bundle_has_several_epochs(demo_bundle):
    assert len(demo_bundle.epochs) >= 3, demo_bundle.epochs


def test_each_epoch_shows_its_own_activations_and_weights(demo_network_at_sample_2, demo_bundle):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.core.connections import dense_connections

    arrays = dense_connections(demo_bundle, layer_cells(demo_bundle))[0]
    for index, epoch in enumerate(demo_bundle.epochs):
        set_input(demo_network_at_sample_2, "Epoch", float(epoch))
        np.testing.assert_allclose(
            conv1_values(demo_network_at_sample_2), bundle_conv1(demo_bundle, epoch, 2), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(edge_weights(demo_network_at_sample_2), arrays[f"weight_e{index}"], rtol=1e-6)


@pytest.mark.parametrize("between", [0.25, 0.5, 0.9])
def test_between_two_epochs_the_values_blend_linearly(demo_network_at_sample_2, demo_bundle, between):
    first, second = demo_bundle.epochs[0], demo_bundle.epochs[1]
    set_input(demo_network_at_sample_2, "Epoch", first + between * (second - first))
    expected = (1 - between) * bundle_conv1(demo_bundle, first, 2) + between * bundle_conv1(demo_bundle, second, 2)
    np.testing.assert_allclose(conv1_values(demo_network_at_sample_2), expected, rtol=1e-4, atol=1e-5)


def test_epochs_outside_the_run_hold_the_first_and_last(demo_network_at_sample_2, demo_bundle):
    set_input(demo_network_at_sample_2, "Epoch", demo_bundle.epochs[0] - 5.0)
    np.testing.assert_allclose(
        conv1_values(demo_network_at_sample_2), bundle_conv1(demo_bundle, demo_bundle.epochs[0], 2), rtol=1e-5
    )
    set_input(demo_network_at_sample_2, "Epoch", demo_bundle.epochs[-1] + 5.0)
    np.testing.assert_allclose(
        conv1_values(demo_network_at_sample_2), bundle_conv1(demo_bundle, demo_bundle.epochs[-1], 2), rtol=1e-5
    )


def test_samples_cross_fade(demo_network_at_sample_2, demo_bundle):
    epoch = demo_bundle.epochs[-1]
    set_input(demo_network_at_sample_2, "Sample", 0.0)
    np.testing.assert_allclose(conv1_values(demo_network_at_sample_2), bundle_conv1(demo_bundle, epoch, 0), rtol=1e-5)
    set_input(demo_network_at_sample_2, "Sample", 0.3)
    expected = 0.7 * bundle_conv1(demo_bundle, epoch, 0) + 0.3 * bundle_conv1(demo_bundle, epoch, 1)
    np.testing.assert_allclose(conv1_values(demo_network_at_sample_2), expected, rtol=1e-4, atol=1e-5)


def test_animate_training_keys_every_epoch_with_a_hold_and_markers(blender, demo_network_at_sample_2, demo_bundle):
    blender.context.view_layer.objects.active = demo_network_at_sample_2
    assert blender.ops.bcnn.animate_training(frames_per_epoch=10, hold_frames=4, easing="LINEAR", start_frame=1) == {
        "FINISHED"
    }
    scene = blender.context.scene
    epochs = demo_bundle.epochs
    assert (scene.frame_start, scene.frame_end) == (1, 1 + (len(epochs) - 1) * 14 + 4)
    markers = sorted((marker.frame, marker.name) for marker in scene.timeline_markers)
    assert markers == [(1 + index * 14, f"epoch {epoch}") for index, epoch in enumerate(epochs)]
    from blender_cnn.scene.network import get_network_input

    for frame, expected in (
        (1, epochs[0]),
        (5, epochs[0]),
        (10, epochs[0] + 0.5 * (epochs[1] - epochs[0])),
        (15, epochs[1]),
    ):
        scene.frame_set(frame)
        assert get_network_input(demo_network_at_sample_2, "Epoch") == pytest.approx(expected, abs=1e-5), frame
    # Halfway through the first move the cells show the blend of the first two epochs.
    scene.frame_set(10)
    expected = 0.5 * (bundle_conv1(demo_bundle, epochs[0], 2) + bundle_conv1(demo_bundle, epochs[1], 2))
    np.testing.assert_allclose(conv1_values(demo_network_at_sample_2), expected, rtol=1e-4, atol=1e-5)


def test_animate_samples_refuses_samples_that_are_not_stored(blender, demo_network_at_sample_2):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.animation import animate_samples

    with pytest.raises(BlenderCNNError, match="cannot show \\[99\\]"):
        animate_samples(demo_network_at_sample_2, [0, 99])
    assert animate_samples(demo_network_at_sample_2, [0, 1], frames_per_sample=10, fade_frames=4) == 20
    from blender_cnn.scene.network import get_network_input

    scene = blender.context.scene
    for frame, sample in ((1, 0.0), (6, 0.0), (11, 1.0), (20, 1.0)):
        scene.frame_set(frame)
        assert get_network_input(demo_network_at_sample_2, "Sample") == pytest.approx(sample), frame
    scene.frame_set(8)
    assert 0.0 < get_network_input(demo_network_at_sample_2, "Sample") < 1.0


def test_a_custom_input_becomes_a_sample_shown_over_every_epoch(demo_network_at_sample_2, demo_bundle):
    from blender_cnn.core.forward import forward
    from blender_cnn.scene.network import get_network_input, show_input

    image = np.asarray(demo_bundle.array(demo_bundle.manifest["samples"]["inputs"])[5:6], dtype=np.float32)
    show_input(demo_network_at_sample_2, image, epoch=demo_bundle.epochs[0])
    assert get_network_input(demo_network_at_sample_2, "Sample") == demo_bundle.sample_count
    for epoch in demo_bundle.epochs:
        set_input(demo_network_at_sample_2, "Epoch", float(epoch))
        expected = forward(demo_bundle, image, epoch)["conv1"][0].transpose(2, 0, 1).ravel()
        np.testing.assert_allclose(conv1_values(demo_network_at_sample_2), expected, rtol=1e-4, atol=1e-5)


# --- the training overlay ----------------------------------------------------------------------------------------


def expected_overlay(bundle, epoch):
    """The overlay's line at ``epoch``, as the node group writes it (metrics blended between epochs, float32)."""
    epochs = np.asarray(bundle.epochs, dtype=np.float32)
    low = max(int(np.searchsorted(epochs, np.float32(epoch) + np.float32(1e-4), side="right")) - 1, 0)
    high = min(low + 1, len(epochs) - 1)
    factor = np.float32(np.clip((epoch - epochs[low]) / max(epochs[high] - epochs[low], 1e-6), 0, 1))
    parts = [f"epoch {epoch:.1f}"]
    for name, label in (
        ("loss", "loss"),
        ("accuracy", "accuracy"),
        ("val_loss", "val. loss"),
        ("val_accuracy", "val. accuracy"),
    ):
        values = bundle.metric(name)
        value = (np.float32(1) - factor) * values[low] + factor * values[high]
        parts.append(f"{label} {value * 100:.1f}%" if "accuracy" in name else f"{label} {value:.3f}")
    return "   ".join(parts)


def text_vertices(blender, text, height):
    """Vertices of ``text`` drawn by the add-on's own text group at the origin, unturned."""
    from blender_cnn.nodes.builder import TreeBuilder
    from blender_cnn.nodes.groups import text_mesh

    tree = blender.data.node_groups.new("reference text", "GeometryNodeTree")
    tree.is_modifier = True
    b = TreeBuilder(tree)
    b.add_input("Geometry", "GEOMETRY")
    b.add_output("Geometry", "GEOMETRY")
    b.set_outputs(Geometry=text_mesh(b, text, height, "Left", "Top", (0.0, 0.0, 0.0), None, facing=(0.0, 0.0, 0.0)))
    holder = blender.data.objects.new("reference text", blender.data.meshes.new("reference text"))
    blender.context.scene.collection.objects.link(holder)
    holder.modifiers.new("text", "NODES").node_group = tree
    geometry = evaluated_geometry(holder)
    vertices = read_attribute(geometry.mesh, "position")
    blender.data.objects.remove(holder)
    return vertices


def overlay_vertices(network, camera):
    """The overlay's vertices in the camera's frame, relative to the text's anchor."""
    from blender_cnn.nodes import timeline

    geometry = evaluated_geometry(network)
    world = read_attribute(geometry.mesh, "position") @ np.array(network.matrix_world)[:3, :3].T
    in_camera = (world - np.array(camera.matrix_world)[:3, 3]) @ np.array(camera.matrix_world)[:3, :3]
    near = np.linalg.norm(in_camera, axis=1) < 2 * timeline.OVERLAY_DISTANCE
    frame_width = timeline.OVERLAY_DISTANCE * timeline.SENSOR_WIDTH / timeline.STAGE_LENS
    local = in_camera[near] - np.array([-0.46 * frame_width, 0.24 * frame_width, -timeline.OVERLAY_DISTANCE])
    return local, frame_width


@pytest.mark.parametrize("epoch", [1.0, 1.5])
def test_the_overlay_writes_epoch_loss_and_accuracy_in_front_of_the_camera(
    blender, demo_network_at_sample_2, demo_bundle, epoch
):
    from blender_cnn.scene.stage import set_up_stage

    camera = set_up_stage(demo_network_at_sample_2)
    set_input(demo_network_at_sample_2, "Epoch", epoch)
    empty, _width = overlay_vertices(demo_network_at_sample_2, camera)
    assert len(empty) == 0  # off by default
    set_input(demo_network_at_sample_2, "Show Training Overlay", True)
    drawn, frame_width = overlay_vertices(demo_network_at_sample_2, camera)
    expected = text_vertices(blender, expected_overlay(demo_bundle, epoch), 0.02 * frame_width)
    assert drawn.shape == expected.shape, expected_overlay(demo_bundle, epoch)
    # Same outline: every vertex has its twin in the other text (order differs by float noise).
    distances = np.linalg.norm(drawn[:, None, :2] - expected[None, :, :2], axis=2)
    assert distances.min(axis=1).max() < 1e-3 and distances.min(axis=0).max() < 1e-3
    assert np.abs(drawn[:, 2]).max() < 1e-3


def test_framing_the_network_leaves_the_overlay_out(blender, demo_network_at_sample_2):
    from blender_cnn.scene.stage import set_up_stage

    without = tuple(set_up_stage(demo_network_at_sample_2).location)
    set_input(demo_network_at_sample_2, "Show Training Overlay", True)
    with_overlay = tuple(set_up_stage(demo_network_at_sample_2).location)
    np.testing.assert_allclose(with_overlay, without, rtol=1e-4)
