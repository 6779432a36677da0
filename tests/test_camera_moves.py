"""Camera moves: orbit, fly-through and push-in keyframe the scene's camera, read back at frames
through ``scene.frame_set``; bad input raises one clear error and changes nothing."""

import numpy as np
import pytest


def Vector(values):  # noqa: N802 - mathutils.Vector, which exists only once bpy is imported
    from mathutils import Vector as MathutilsVector

    return MathutilsVector(values)


pytestmark = [pytest.mark.tf, pytest.mark.bpy]
FRAMES = (1, 25)


def build_staged(bundle):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    network = build_network(bundle)
    camera = set_up_stage(network)
    return network, camera


def pose(scene, camera, frame):
    """World location and viewing direction of ``camera`` at ``frame``."""
    scene.frame_set(frame)
    matrix = camera.matrix_world
    return matrix.translation.copy(), (-matrix.col[2].xyz).normalized()


def drawn_box_centre(network):
    from blender_cnn.scene.drawn import drawn_points

    points = drawn_points(network)
    return Vector((points.min(axis=0) + points.max(axis=0)) / 2)


def layer_cells(network, layer_index):
    from blender_cnn.scene.drawn import drawn_quads

    quads, _geometry = drawn_quads(network, "BCNN Cell")
    return quads.centres()[quads.attribute("layer") == layer_index]


def fcurve_paths(camera):
    from bpy_extras import anim_utils

    animation = camera.animation_data
    channelbag = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
    return channelbag.fcurves


def test_orbit_circles_the_centre_at_one_distance_looking_at_it(blender, demo_bundle):
    from blender_cnn.scene.camera_moves import orbit

    network, camera = build_staged(demo_bundle)
    scene = blender.context.scene
    assert orbit(network, frame_start=FRAMES[0], frame_end=FRAMES[1]) is camera
    centre = drawn_box_centre(network)

    start, _ = pose(scene, camera, 1)
    distance = (start - centre).length
    positions = []
    for frame in (1, 5, 7, 13, 19, 25):
        location, look = pose(scene, camera, frame)
        positions.append(location)
        # Same distance all the way round (within 1% between keyframes), the centre straight ahead.
        assert (location - centre).length == pytest.approx(distance, rel=0.01), frame
        assert look.dot((centre - location).normalized()) > 0.999, frame
        assert abs(location.z - start.z) < 0.01 * distance
    # Half way round is the far side; a full turn comes back.
    assert (positions[3] - start).length == pytest.approx(2 * (start.xy - centre.xy).length, rel=0.01)
    assert (positions[-1] - start).length < 1e-3 * distance

    # From any side the whole network stays in the frame.
    from bpy_extras.object_utils import world_to_camera_view

    from blender_cnn.scene.drawn import drawn_points

    points = drawn_points(network, limit=2000)
    for frame in (1, 7, 13):
        scene.frame_set(frame)
        view = np.array([world_to_camera_view(scene, camera, Vector(p)) for p in points])
        assert (view[:, :2] > -0.01).all() and (view[:, :2] < 1.01).all(), frame

    curves = fcurve_paths(camera)
    assert {curve.data_path for curve in curves} >= {"location", "rotation_euler"}
    assert all(point.interpolation == "BEZIER" for curve in curves for point in curve.keyframe_points)


def test_fly_through_runs_along_x_from_before_the_input_to_past_the_output(blender, demo_bundle):
    from blender_cnn.scene.camera_moves import fly_through

    network, camera = build_staged(demo_bundle)
    scene = blender.context.scene
    fly_through(network, frame_start=FRAMES[0], frame_end=FRAMES[1])
    first_layer_x = layer_cells(network, 0)[:, 0].min()
    last_layer_x = max(layer_cells(network, index)[:, 0].max() for index in range(len(demo_bundle.layers)))

    xs = []
    for frame in range(FRAMES[0], FRAMES[1] + 1, 4):
        location, look = pose(scene, camera, frame)
        xs.append(location.x)
        assert look.x > 0.7, (frame, look)  # looking along the network
    assert xs[0] < first_layer_x and xs[-1] > last_layer_x, (xs, first_layer_x, last_layer_x)
    assert np.all(np.diff(xs) > 0), xs
    # Eased: slower at the ends than in the middle.
    assert xs[1] - xs[0] < xs[3] - xs[2]


def test_push_in_ends_close_to_the_layer_looking_at_it(blender, demo_bundle):
    from bpy_extras.object_utils import world_to_camera_view

    from blender_cnn.scene.camera_moves import push_in

    network, camera = build_staged(demo_bundle)
    scene = blender.context.scene
    framing = camera.location.copy()
    layer = demo_bundle.layer("conv2")
    push_in(network, "conv2", frame_start=FRAMES[0], frame_end=FRAMES[1])

    cells = layer_cells(network, layer.index)
    cells_centre = Vector(cells.mean(axis=0))
    start, _ = pose(scene, camera, FRAMES[0])
    end, look = pose(scene, camera, FRAMES[1])
    # Starts at the framing view (as the stage frames it, give or take the centring) ...
    assert (start - framing).length < 0.2 * (framing - drawn_box_centre(network)).length
    # ... and ends far closer to the layer, which fills the middle of the frame.
    assert (end - cells_centre).length < 0.4 * (start - cells_centre).length
    assert look.dot((cells_centre - end).normalized()) > 0.99
    view = np.array([world_to_camera_view(scene, camera, Vector(p)) for p in cells])
    assert (view[:, :2] > 0).all() and (view[:, :2] < 1).all()
    assert np.ptp(view[:, 0]) > 0.5 or np.ptp(view[:, 1]) > 0.5  # close: the layer spans much of the frame
    middle, _ = pose(scene, camera, (FRAMES[0] + FRAMES[1]) // 2)
    assert (middle - cells_centre).length < (start - cells_centre).length


def test_moves_follow_one_another_on_the_timeline(blender, demo_bundle):
    from blender_cnn.scene.camera_moves import orbit, push_in

    network, camera = build_staged(demo_bundle)
    scene = blender.context.scene
    orbit(network, frame_start=1, frame_end=10, turns=0.5)
    after_orbit = [pose(scene, camera, frame)[0] for frame in (1, 5, 10)]
    push_in(network, "pool1", frame_start=11, frame_end=20)
    assert [pose(scene, camera, frame)[0] for frame in (1, 5, 10)] == after_orbit
    # A move over the same range replaces the keys there.
    orbit(network, frame_start=1, frame_end=10, turns=-0.5)
    assert (pose(scene, camera, 5)[0] - after_orbit[1]).length > 1.0


@pytest.mark.parametrize("case", ["unknown layer", "empty range", "backwards range", "no camera", "not a network"])
def test_bad_input_raises_and_changes_nothing(blender, demo_bundle, case):
    from blender_cnn.core.errors import BlenderCNNError
    from blender_cnn.scene.camera_moves import fly_through, orbit, push_in

    network, camera = build_staged(demo_bundle)
    scene = blender.context.scene
    before = camera.location.copy(), camera.rotation_mode
    call, message = {
        "unknown layer": (lambda: push_in(network, "conv9", frame_start=1, frame_end=10), "conv9"),
        "empty range": (lambda: orbit(network, frame_start=5, frame_end=5), "must come after"),
        "backwards range": (lambda: fly_through(network, frame_start=10, frame_end=1), "must come after"),
        "no camera": (
            lambda: (setattr(scene, "camera", None), orbit(network, frame_start=1, frame_end=10)),
            "no camera",
        ),
        "not a network": (lambda: orbit(camera, frame_start=1, frame_end=10), "not a blender_cnn network"),
    }[case]
    with pytest.raises(BlenderCNNError, match=message):
        call()
    assert camera.animation_data is None or camera.animation_data.action is None
    assert camera.data.animation_data is None or camera.data.animation_data.action is None
    assert (camera.location.copy(), camera.rotation_mode) == before


def test_orbit_over_the_epoch_animation(blender, demo_bundle):
    from blender_cnn.scene.animation import animate_training
    from blender_cnn.scene.camera_moves import orbit

    network, camera = build_staged(demo_bundle)
    first, last = animate_training(network, frames_per_epoch=4, hold_frames=2)
    orbit(network, frame_start=first, frame_end=last)
    scene = blender.context.scene
    centre = drawn_box_centre(network)
    distances = [(pose(scene, camera, frame)[0] - centre).length for frame in (first, (first + last) // 2, last)]
    assert distances == pytest.approx([distances[0]] * 3, rel=0.02)


# --- the operator ------------------------------------------------------------------


def test_camera_move_operator(blender, demo_bundle):
    bpy = blender
    network, camera = build_staged(demo_bundle)
    scene = bpy.context.scene
    bpy.context.view_layer.objects.active = network
    assert bpy.ops.bcnn.camera_move(
        move="PUSH_IN", layer="conv1", use_scene_range=False, frame_start=1, frame_end=12
    ) == {"FINISHED"}
    start, end = pose(scene, camera, 1)[0], pose(scene, camera, 12)[0]
    assert (end - start).length > 10.0

    with pytest.raises(RuntimeError, match="must come after"):
        bpy.ops.bcnn.camera_move(move="ORBIT", use_scene_range=False, frame_start=30, frame_end=30)
    scene.camera = None
    assert not bpy.ops.bcnn.camera_move.poll()
