"""Published architectures as scenes: links where the graph has them, branches apart, blocks that open, framed.

Keras' own ``keras.applications`` networks at small inputs with random
weights (nothing is downloaded), extracted once per module.
"""

import numpy as np
import pytest
from scene_readers import annotations, cell_centre
from ui_recorder import draw_network_panel, inspect_at

from blender_cnn.core.bundle import load_bundle
from blender_cnn.core.graph import plan_graph
from blender_cnn.nodes.builder import tree_nodes

pytestmark = [pytest.mark.tf, pytest.mark.bpy, pytest.mark.slow]  # ResNet50 to InceptionV3 scenes: seconds each
ARCHITECTURES = {
    "ResNet50": (32, {}),
    "MobileNetV2": (32, {"alpha": 0.35}),
    "DenseNet121": (32, {}),
    "InceptionV3": (75, {}),
}


@pytest.fixture(scope="module")
def application_bundles(tmp_path_factory):
    """{architecture: bundle path}, each extracted from a .keras written by Keras itself."""
    import keras

    from blender_cnn.extract.keras_bundle import extract

    folder = tmp_path_factory.mktemp("applications")
    bundles = {}
    for name, (size, options) in ARCHITECTURES.items():
        model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3), classes=10, **options)
        path = folder / f"{name}.keras"
        model.save(path)
        inputs = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32) * 255
        np.savez(folder / "samples.npz", inputs=inputs, labels=np.zeros(1, np.int32))
        bundles[name] = extract(
            path, folder / f"{name}.bcnn.npz", samples=folder / "samples.npz", importance=False, log=lambda *_: None
        )
    return bundles


def _expand_all(network, bundle, value=1.0):
    from blender_cnn.scene.network import set_network_input

    for block in plan_graph(bundle.layers).blocks:
        set_network_input(network, f"Blocks/{block.name}", value)


def _quads_by_layer(network):
    from blender_cnn.scene.drawn import drawn_quads

    quads, geometry = drawn_quads(network, "BCNN Cell")
    corners = quads.corners()
    layer = quads.attribute("layer")
    return {int(index): corners[layer == index].reshape(-1, 3) for index in np.unique(layer)}, geometry


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_links_start_at_their_source_and_end_at_the_layer_they_feed(blender, application_bundles, architecture):
    from blender_cnn.scene.drawn import drawn_links
    from blender_cnn.scene.network import build_network

    bundle = load_bundle(application_bundles[architecture])
    network = build_network(bundle)
    _expand_all(network, bundle)
    plan = plan_graph(bundle.layers)
    links = drawn_links(network)
    assert len(links) == len(plan.links) > 0
    by_layer, _keep = _quads_by_layer(network)
    index_of = {layer.name: layer.index for layer in bundle.layers}
    merges = 0
    for (source, target), points in zip(plan.links, links):
        for unit, end in ((source, points[0]), (target, points[-1])):
            corners = by_layer[index_of[plan.units[unit].output]]
            low, high = corners.min(axis=0), corners.max(axis=0)
            pitch = 3.0  # a cell and the gap between maps
            assert low[0] - pitch <= end[0] <= high[0] + pitch and low[1] - pitch <= end[1] <= high[1] + pitch
            assert abs(end[2] - high[2]) <= pitch, "a link ends on the top edge of its layer's wall"
        merges += len(plan.units[target].inputs) > 1
    assert merges > 0, f"{architecture} has merges, and links lead into them"


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_expanded_units_and_branches_do_not_overlap(blender, application_bundles, architecture):
    from blender_cnn.scene.network import build_network

    bundle = load_bundle(application_bundles[architecture])
    network = build_network(bundle)
    _expand_all(network, bundle)
    by_layer, _keep = _quads_by_layer(network)
    boxes = np.array([[corners.min(axis=0), corners.max(axis=0)] for corners in by_layer.values()])
    low, high = boxes[:, 0], boxes[:, 1]
    overlap = np.all((low[:, None] < high[None, :] - 1e-3) & (low[None, :] < high[:, None] - 1e-3), axis=2)
    np.fill_diagonal(overlap, False)
    names = [bundle.layers[index].name for index in by_layer]
    pairs = [(names[i], names[j]) for i, j in zip(*np.nonzero(overlap)) if i < j]
    assert pairs == []
    lanes = {plan_unit.lane for plan_unit in plan_graph(bundle.layers).units}
    if architecture in ("ResNet50", "InceptionV3"):
        assert len(lanes) > 1, "branches stand beside the main path"


@pytest.mark.parametrize("architecture", ["ResNet50", "InceptionV3"])
def test_collapsing_a_block_hides_its_layers_and_expanding_shows_them(blender, application_bundles, architecture):
    from blender_cnn.scene.network import build_network, set_network_input

    bundle = load_bundle(application_bundles[architecture])
    network = build_network(bundle)
    plan = plan_graph(bundle.layers)
    block = plan.blocks[0]
    index_of = {layer.name: layer.index for layer in bundle.layers}
    inner = {index_of[plan.units[unit].output] for unit in block.units if unit != block.output}
    output = index_of[plan.units[block.output].output]
    collapsed, _keep = _quads_by_layer(network)
    assert not inner & set(collapsed), "a collapsed block shows only its output"
    assert output in collapsed
    set_network_input(network, f"Blocks/{block.name}", 1.0)
    expanded, _keep = _quads_by_layer(network)
    assert inner <= set(expanded) and output in expanded
    assert len(expanded) > len(collapsed)


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_the_default_camera_frames_the_whole_network(blender, application_bundles, architecture):
    from blender_cnn.scene.drawn import drawn_points
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import camera_projection, set_up_stage

    network = build_network(application_bundles[architecture])
    camera = set_up_stage(network)
    blender.context.scene.render.resolution_x, blender.context.scene.render.resolution_y = 1280, 720
    points = drawn_points(network, limit=200_000)
    clip = np.c_[points, np.ones(len(points))] @ np.array(camera_projection(camera)).T
    x, y = clip[:, 0] / clip[:, 3], clip[:, 1] / clip[:, 3]
    assert np.all(np.abs(x) <= 1.0) and np.all(np.abs(y) <= 720 / 1280)
    assert max(x.max() - x.min(), (y.max() - y.min()) * 1280 / 720) > 1.5, "the network fills the frame"
    depth = (points - np.array(camera.location)) @ np.array(camera.matrix_world.to_3x3().col[2]) * -1
    assert camera.data.clip_start < depth.min() and depth.max() < camera.data.clip_end


@pytest.mark.render
@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_a_default_render_shows_the_network(blender, application_bundles, architecture, tmp_path):
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import BACKGROUND, render_still, set_up_stage

    set_up_stage(build_network(application_bundles[architecture]))
    path = render_still(tmp_path / "frame.png", width=192, height=108, samples=2)
    image = blender.data.images.load(path)
    pixels = np.array(image.pixels[:], dtype=np.float32).reshape(108, 192, 4)[..., :3]
    background = np.array(BACKGROUND[:3]) ** (1 / 2.2)
    lit = np.abs(pixels - background).max(axis=2) > 0.08
    assert lit.mean() > 0.04, f"only {lit.mean():.1%} of the frame differs from the background"
    columns, rows = np.flatnonzero(lit.any(axis=0)), np.flatnonzero(lit.any(axis=1))
    assert columns.max() - columns.min() > 0.5 * 192 or rows.max() - rows.min() > 0.5 * 108


def test_over_the_memory_budget_wide_layers_show_their_first_maps_and_say_so(blender, application_bundles):
    from blender_cnn.scene.network import CAPPED_PROPERTY, ESTIMATE_PROPERTY, build_network, shown_channels

    bundle = load_bundle(application_bundles["ResNet50"])
    network = build_network(bundle, memory_budget_gb=0.01)
    capped = list(network[CAPPED_PROPERTY])
    shown = shown_channels(network)
    assert capped and network[ESTIMATE_PROPERTY] <= 0.01
    by_layer, _keep = _quads_by_layer(network)
    from blender_cnn.scene.drawn import drawn_quads

    quads, _geometry = drawn_quads(network, "BCNN Cell")
    layer, channel = quads.attribute("layer"), quads.attribute("channel")
    for name in capped:
        index = bundle.layer(name).index
        if index in by_layer:
            assert channel[layer == index].max() < shown[name] < bundle.layer(name).output_shape[2]
    texts = [
        socket.default_value
        for node in tree_nodes(network.modifiers["BlenderCNN"].node_group)
        if node.bl_idname == "GeometryNodeIndexSwitch" and node.data_type == "STRING"
        for socket in node.inputs[1:]
        if hasattr(socket, "default_value")
    ]
    assert any(f"(first {shown[capped[-1]]} of" in text for text in texts), "the labels say what is hidden"


def test_the_panel_lists_the_blocks_and_the_memory_estimate(blender, application_bundles):
    from blender_cnn.scene.network import build_network

    bundle = load_bundle(application_bundles["MobileNetV2"])
    network = build_network(bundle)
    blender.context.view_layer.objects.active = network
    record = draw_network_panel(blender)
    blocks = [block.name for block in plan_graph(bundle.layers).blocks]
    assert any(label.startswith(f"Blocks ({len(blocks)})") for label in record["labels"])
    assert any(label.startswith("Scene about") and label.endswith("GB") for label in record["labels"])
    assert set(blocks) <= set(record["props"]), "each block's Expand is in the panel"


def test_a_unit_shows_the_window_of_the_convolution_that_computes_it(application_bundles):
    """ResNet50's stem unit (pad, 7x7/2 conv, BN, ReLU) reads the input through its padding."""
    import keras

    from blender_cnn.core import operations
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.core.scene_plan import plan_scene

    bundle = load_bundle(application_bundles["ResNet50"])
    plan = plan_scene(bundle)
    layers = layer_cells(bundle, plan.shown)
    table, _kernels = operations.layer_table(
        bundle, layers, units={unit.output: unit.layers for unit in plan.graph.units}
    )
    stem = bundle.layer("conv1_relu").index
    assert table["op_kind"][stem] == operations.OP_CONVOLUTION
    assert table["source_layer"][stem] == bundle.layer("input_layer").index
    assert (table["kernel_rows"][stem], table["stride_rows"][stem], table["pad_top"][stem]) == (7, 2, 3)
    # The input pixels that change output pixel (5, 4) are the ones the window covers.
    model = keras.Sequential(
        [keras.layers.ZeroPadding2D(3), keras.layers.Conv2D(1, 7, strides=2, kernel_initializer="ones")]
    )
    probe = np.zeros((1, 32, 32, 1), np.float32)
    reached = []
    for row in range(32):
        probe[...] = 0
        probe[0, row, :, 0] = 1
        reached.append(model(probe).numpy()[0, 5, 4, 0] != 0)
    window_rows = [
        row
        for row in range(32)
        if 0 <= row + table["pad_top"][stem] - 5 * table["stride_rows"][stem] < table["kernel_rows"][stem]
    ]
    assert window_rows == [row for row in range(32) if reached[row]]


@pytest.fixture(scope="module")
def merge_bundle(tmp_path_factory):
    """Two convolutions added, then concatenated with the first: the merges of ResNets and DenseNets, small."""
    import keras

    from blender_cnn.extract.keras_bundle import extract

    folder = tmp_path_factory.mktemp("merges")
    inputs = keras.Input((8, 8, 2), name="input")
    first = keras.layers.Conv2D(3, 3, padding="same", name="first")(inputs)
    second = keras.layers.Conv2D(3, 3, padding="same", name="second")(inputs)
    added = keras.layers.Add(name="added")([first, second])
    joined = keras.layers.Concatenate(name="joined")([first, added])
    pooled = keras.layers.GlobalAveragePooling2D(name="pooled")(joined)
    outputs = keras.layers.Dense(2, activation="softmax", name="output")(pooled)
    keras.Model(inputs, outputs).save(folder / "merges.keras")
    np.savez(
        folder / "samples.npz",
        inputs=np.random.default_rng(1).random((1, 8, 8, 2), dtype=np.float32),
        labels=np.zeros(1, np.int32),
    )
    return extract(
        folder / "merges.keras",
        folder / "merges.bcnn.npz",
        samples=folder / "samples.npz",
        importance=False,
        log=lambda *_: None,
    )


@pytest.mark.parametrize(
    "merge, channel, expected",
    [
        ("added", 1, [("first", 1), ("second", 1)]),
        ("joined", 1, [("first", 1)]),
        ("joined", 4, [("added", 1)]),
    ],
)
def test_focusing_a_merge_frames_the_cells_it_combines(blender, merge_bundle, merge, channel, expected):
    from blender_cnn.scene.drawn import drawn_quads
    from blender_cnn.scene.network import build_network, set_network_input

    bundle = load_bundle(merge_bundle)
    network = build_network(bundle)
    for name, value in zip(
        ("Focus Layer", "Focus Channel", "Focus Row", "Focus Column"), (bundle.layer(merge).index, channel, 2, 5)
    ):
        set_network_input(network, name, value)
    quads, _geometry = drawn_quads(network, "BCNN Cell")
    framed = quads.attribute("focus") == 1.0
    found = sorted(
        zip(
            quads.attribute("layer")[framed].tolist(),
            quads.attribute("channel")[framed].tolist(),
            quads.attribute("row")[framed].tolist(),
            quads.attribute("col")[framed].tolist(),
        )
    )
    assert found == sorted((bundle.layer(name).index, source_channel, 2, 5) for name, source_channel in expected)


def test_a_units_kernel_tiles_hold_its_convolutions_weights_at_every_epoch(blender, application_bundles):
    from blender_cnn.scene.drawn import read_attribute
    from blender_cnn.scene.network import build_network

    bundle = load_bundle(application_bundles["ResNet50"])
    build_network(bundle)
    kernels = blender.data.objects[f"{bundle.name} kernels"].data
    stem = np.asarray(bundle.weights("conv1_conv")["kernel"], dtype=np.float32).ravel()
    stored = read_attribute(kernels, "weight_e0")
    np.testing.assert_array_equal(stored[: len(stem)], stem)
    assert len(stored) == len(kernels.vertices)


@pytest.mark.parametrize("every_layer", [False, True])
def test_importing_with_every_layer_shows_the_plumbing_units_fold_away(blender, application_bundles, every_layer):
    bundle = load_bundle(application_bundles["MobileNetV2"])
    assert blender.ops.bcnn.import_bundle(
        filepath=str(application_bundles["MobileNetV2"]), every_layer=every_layer
    ) == {"FINISHED"}
    by_layer, _keep = _quads_by_layer(blender.context.view_layer.objects.active)
    normalizations = {layer.index for layer in bundle.layers if layer.type == "BatchNormalization"}
    shown = normalizations & set(by_layer)
    if every_layer:
        assert shown == normalizations
    else:
        # A BatchNormalization shows only where it ends its unit (a projection without activation).
        assert len(shown) < len(normalizations) / 2


def test_inspecting_an_add_puts_each_inputs_value_on_its_cell(blender, merge_bundle):
    from blender_cnn.scene.network import build_network

    bundle = load_bundle(merge_bundle)
    network = build_network(bundle)
    blender.context.view_layer.objects.active = network
    added = bundle.layer("added").index
    assert inspect_at(blender, cell_centre(network, added, 1, 2, 5)) == {"FINISHED"}
    plates, _faces = annotations(network)
    for name in ("first", "second"):
        centre = cell_centre(network, bundle.layer(name).index, 1, 2, 5)
        assert np.min(np.linalg.norm(plates - centre, axis=1)) < 0.5, f"the value of {name} sits on its cell"


@pytest.mark.parametrize("architecture", ["MobileNetV2", "DenseNet121"])
def test_collapsed_blocks_keep_the_links_between_them_and_hide_those_inside(blender, application_bundles, architecture):
    from blender_cnn.scene.drawn import drawn_links
    from blender_cnn.scene.network import build_network

    bundle = load_bundle(application_bundles[architecture])
    network = build_network(bundle)
    plan = plan_graph(bundle.layers)
    between = [
        (source, target) for source, target in plan.links if plan.item_of_unit(source) != plan.item_of_unit(target)
    ]
    assert len(drawn_links(network)) == len(between)
    joined = {(plan.item_of_unit(source), plan.item_of_unit(target)) for source, target in between}
    assert all((item, item + 1) in joined for item in range(len(plan.items) - 1)), "every item leads to the next"


def test_a_blocks_panel_lays_out_every_unit_in_it(blender, application_bundles):
    from blender_cnn.scene.network import build_network, set_network_input

    bundle = load_bundle(application_bundles["ResNet50"])
    network = build_network(bundle)
    set_network_input(network, "Blocks/conv2_block1", 1.0)
    set_network_input(network, "conv2_block1/Map Layout", 0.0)  # the maps in a line across the wall
    by_layer, _keep = _quads_by_layer(network)
    extent = {index: np.ptp(corners, axis=0) for index, corners in by_layer.items()}
    for name in ("conv2_block1_1_relu", "conv2_block1_0_bn", "conv2_block1_out"):
        width, height = extent[bundle.layer(name).index][1:]
        assert width > 8 * height, f"{name} is in the block, so its maps stand in a line"
    width, height = extent[bundle.layer("conv2_block2_out").index][1:]
    assert width < 2 * height, "the next block keeps its grid"


def test_fit_rows_wraps_an_expanded_network_back_into_a_16_by_9_frame(blender, application_bundles):
    from blender_cnn.scene.drawn import drawn_points
    from blender_cnn.scene.network import build_network, get_network_input, set_network_input

    bundle = load_bundle(application_bundles["ResNet50"])
    network = build_network(bundle)
    blender.context.view_layer.objects.active = network
    collapsed_length = get_network_input(network, "Row Length")
    for block in plan_graph(bundle.layers).blocks:
        set_network_input(network, f"Blocks/{block.name}", 1.0)
    assert blender.ops.bcnn.fit_rows() == {"FINISHED"}
    assert get_network_input(network, "Row Length") > collapsed_length, "open blocks take more columns"
    points = drawn_points(network, limit=100_000)
    across = np.ptp(points[:, 0] - points[:, 1]) / np.sqrt(2)  # the camera's right is (1, -1, 0)
    height = np.ptp(points[:, 2])
    assert 0.8 < across / height < 4.0
