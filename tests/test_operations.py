"""Receptive fields, kernels, pooling winners, flatten links and probabilities, read from the evaluated scene.

A small synthetic network covers the convolution arithmetic that matters: stride 2 with
'same' padding (asymmetric: one more row after than before), 'valid' padding and dilation 2;
then max pooling with 'same' padding, flatten and a softmax output.
"""

import numpy as np
import pytest
from scene_readers import drawn_cells, drawn_quads, evaluated_geometry, read_attribute

from blender_cnn.core.cells import layer_cells
from blender_cnn.core.forward import compute_layer

pytestmark = pytest.mark.bpy
INPUT_SHAPE = (12, 13, 2)
CLASSES = ["cat", "dog", "bird"]
# name, type, config, output shape
LAYERS = [
    (
        "strided",
        "Conv2D",
        {"filters": 3, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "dilation_rate": [1, 1]},
        (6, 7, 3),
    ),
    (
        "valid",
        "Conv2D",
        {"filters": 4, "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid", "dilation_rate": [1, 1]},
        (4, 5, 4),
    ),
    (
        "dilated",
        "Conv2D",
        {"filters": 2, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "dilation_rate": [2, 2]},
        (4, 5, 2),
    ),
    ("pool", "MaxPooling2D", {"pool_size": [2, 2], "strides": [2, 2], "padding": "same"}, (2, 3, 2)),
    ("flatten", "Flatten", {}, (12,)),
    ("output", "Dense", {"units": 3, "activation": "softmax"}, (3,)),
]
SAMPLES = 2


def write_bundle_of(folder, specs, seed=4):
    """A bundle of ``specs`` (name, type, config, output shape) after the input, random weights and activations
    (no ties, so every pooling window has one winner)."""
    from blender_cnn.core.bundle import load_bundle, write_bundle

    rng = np.random.default_rng(seed)
    arrays = {
        "samples/inputs": rng.random((SAMPLES, *INPUT_SHAPE), dtype=np.float32),
        "samples/labels": np.array([0, 2], dtype=np.int32),
        "samples/predictions": rng.random((1, SAMPLES, len(CLASSES)), dtype=np.float32),
    }
    arrays["activations/input"] = arrays["samples/inputs"][np.newaxis]
    layers = [
        {
            "name": "input",
            "type": "InputLayer",
            "inputs": [],
            "output_shape": list(INPUT_SHAPE),
            "config": {},
            "params": 0,
            "weights": [],
            "activations": "activations/input",
        }
    ]
    channels = INPUT_SHAPE[2]
    for name, kind, config, shape in specs:
        weights = []
        if kind == "Conv2D":
            weights = {"kernel": (*config["kernel_size"], channels, shape[2]), "bias": (shape[2],)}
        elif kind == "DepthwiseConv2D":
            weights = {"kernel": (*config["kernel_size"], channels, config["depth_multiplier"]), "bias": (shape[2],)}
        elif kind == "SeparableConv2D":
            weights = {
                "depthwise_kernel": (*config["kernel_size"], channels, 1),
                "pointwise_kernel": (1, 1, channels, shape[2]),
                "bias": (shape[2],),
            }
        elif kind == "Conv2DTranspose":
            weights = {"kernel": (*config["kernel_size"], shape[2], channels), "bias": (shape[2],)}
        elif kind == "Dense":
            weights = {"kernel": (int(np.prod(layers[-1]["output_shape"])), shape[0]), "bias": (shape[0],)}
        for weight, weight_shape in dict(weights).items():
            arrays[f"weights/{name}/{weight}"] = rng.normal(size=(1, *weight_shape)).astype(np.float32)
        values = rng.random((1, SAMPLES, *shape), dtype=np.float32)
        if name == "output":
            values /= values.sum(axis=-1, keepdims=True)
        arrays[f"activations/{name}"] = values
        layers.append(
            {
                "name": name,
                "type": kind,
                "inputs": [layers[-1]["name"]],
                "output_shape": list(shape),
                "config": config,
                "params": 0,
                "activations": f"activations/{name}",
                "weights": [
                    {"name": weight, "array": f"weights/{name}/{weight}", "shape": list(weight_shape)}
                    for weight, weight_shape in dict(weights).items()
                ],
            }
        )
        channels = shape[-1] if len(shape) == 3 else channels
    manifest = {
        "name": "ops",
        "input_shape": list(INPUT_SHAPE),
        "class_names": CLASSES,
        "epochs": [0],
        "layers": layers,
        "samples": {"inputs": "samples/inputs", "labels": "samples/labels", "predictions": "samples/predictions"},
    }
    return load_bundle(write_bundle(folder / "ops.bcnn.npz", manifest, arrays))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle_of(tmp_path_factory.mktemp("ops"), LAYERS)


@pytest.fixture
def network(blender, bundle):
    from blender_cnn.scene.network import build_network

    return build_network(bundle, sample=1)


def focus(network, layer, channel, row, col):
    from blender_cnn.scene.network import set_network_input

    for name, value in zip(("Focus Layer", "Focus Channel", "Focus Row", "Focus Column"), (layer, channel, row, col)):
        set_network_input(network, name, value)


def starts(bundle):
    return {cells.name: cells.start for cells in layer_cells(bundle)}


def cell_index(bundle, layer_name, channel, row, col):
    rows, cols, _ = bundle.layer(layer_name).output_shape
    return starts(bundle)[layer_name] + (channel * rows + row) * cols + col


def quads_of(network, material_prefix, tag, kind, names):
    """Per instanced quad with ``material_prefix`` and attribute ``tag`` == ``kind``: ``names`` and its corners."""
    quads, _geometry = drawn_quads(network, material_prefix)
    chosen = quads.attribute(tag) == kind
    values = {name: quads.attribute(name)[chosen] for name in names}
    values["corners"] = quads.corners()[chosen]
    return values


def mesh_faces_of(network, material_prefix, tag, kind, names):
    """Per mesh face (tubes, bars) with ``material_prefix`` and ``tag`` == ``kind``: point attributes ``names``, corners."""
    geometry = evaluated_geometry(network)
    mesh = geometry.mesh
    count = len(mesh.polygons)
    loop_start, material = np.empty(count, np.int32), np.empty(count, np.int32)
    mesh.polygons.foreach_get("loop_start", loop_start)
    mesh.polygons.foreach_get("material_index", material)
    corner_vertex = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vertex)
    slots = [i for i, m in enumerate(mesh.materials) if m and m.name.startswith(material_prefix)]
    first = corner_vertex[loop_start]
    chosen = np.isin(material, slots) & (read_attribute(mesh, tag)[first] == kind)
    values = {name: read_attribute(mesh, name)[first[chosen]] for name in names}
    positions = read_attribute(mesh, "position")
    values["corners"] = np.array([positions[corner_vertex[start : start + 4]] for start in loop_start[chosen]]).reshape(
        -1, 4, 3
    )
    return values


def links(network, kind):
    """Unique (source_cell, target_cell) pairs of the lines of ``kind``."""
    faces = mesh_faces_of(network, "BCNN Edge", "link", kind, ("source_cell", "target_cell"))
    return {(int(s), int(t)) for s, t in zip(faces["source_cell"], faces["target_cell"])}


def dependent_inputs(bundle, layer_name, channel, row, col):
    """The input cells an output pixel depends on, found by perturbing each input value in turn.

    Ground truth from the computation itself (the numpy forward pass), not from window formulas.
    """
    layer = bundle.layer(layer_name)
    source = bundle.layer(layer.inputs[0])
    shape = source.output_shape
    base = np.random.default_rng(1).random(shape, dtype=np.float32) + 1.0
    perturbed = np.repeat(base[np.newaxis], int(np.prod(shape)) + 1, axis=0)
    flat = perturbed[1:].reshape(len(perturbed) - 1, -1)
    flat[np.arange(len(flat)), np.arange(len(flat))] += 1.0
    weights = {key: np.abs(value) + 0.1 for key, value in bundle.weights(layer_name).items()}  # no zero taps
    config = dict(layer.config, activation="linear")
    out = compute_layer(layer.type, config, weights, [perturbed], name=layer_name)[:, row, col, channel]
    changed = np.flatnonzero(out[1:] != out[0])
    r, c, ch = np.unravel_index(changed, shape)
    return {starts(bundle)[source.name] + (int(k) * shape[0] + int(i)) * shape[1] + int(j) for i, j, k in zip(r, c, ch)}


@pytest.mark.parametrize(
    "bundle_name, layer_name, channel, row, col",
    [
        ("bundle", "strided", 1, 0, 0),
        ("bundle", "strided", 2, 5, 6),
        ("bundle", "strided", 0, 3, 2),
        ("bundle", "valid", 3, 0, 4),
        ("bundle", "valid", 1, 2, 1),
        ("bundle", "dilated", 0, 0, 0),
        ("bundle", "dilated", 1, 2, 3),
        ("bundle", "pool", 1, 1, 2),
        ("bundle", "pool", 0, 0, 0),
        # Depthwise: channel c*M+m reads channel c only; separable: every channel; transposed: read from the output.
        ("upsampling_bundle", "up", 0, 0, 0),
        ("upsampling_bundle", "up", 1, 5, 6),
        ("upsampling_bundle", "up", 0, 19, 21),
        ("upsampling_bundle", "up", 1, 10, 3),
        ("upsampling_bundle", "depthwise", 3, 0, 12),
        ("upsampling_bundle", "depthwise", 2, 6, 6),
        ("upsampling_bundle", "separable", 1, 4, 0),
    ],
)
def test_receptive_field_is_what_the_computation_reads(blender, request, bundle_name, layer_name, channel, row, col):
    """The cells the scene frames (and links, but for a transposed window: it draws no lines) are the cells the
    numpy computation reads, in ``bundle`` and in ``upsampling_bundle``."""
    from blender_cnn.scene.network import build_network

    bundle = request.getfixturevalue(bundle_name)
    network = build_network(bundle, sample=1)
    focus(network, bundle.layer(layer_name).index, channel, row, col)
    expected = dependent_inputs(bundle, layer_name, channel, row, col)
    assert focus_cells(network, bundle) == expected
    if bundle.layer(layer_name).type != "Conv2DTranspose":
        target = cell_index(bundle, layer_name, channel, row, col)
        assert links(network, 1) == {(source, target) for source in expected}


def focus_cells(network, bundle):
    """Cell indices whose drawn quad carries ``focus`` 1."""
    faces = quads_of(network, "BCNN Cell", "focus", 1.0, ("layer", "channel", "row", "col"))
    layer_starts = [cells.start for cells in layer_cells(bundle)]
    shapes = [(cells.map_rows, cells.map_cols) for cells in layer_cells(bundle)]
    return {
        layer_starts[i] + (c * shapes[i][0] + r) * shapes[i][1] + k
        for i, c, r, k in zip(*(faces[name].tolist() for name in ("layer", "channel", "row", "col")))
    }


def test_kernel_tiles_show_the_focus_pixels_kernel_weights(network, bundle):
    layer = bundle.layer("dilated")
    channel, row, col = 1, 2, 3
    focus(network, layer.index, channel, row, col)
    tiles = quads_of(network, "BCNN Highlight", "overlay", 3, ("weight", "source_cell"))
    kernel = bundle.weights("dilated")["kernel"]
    source = bundle.layer("valid")
    rows, cols, _ = source.output_shape
    local = tiles["source_cell"] - starts(bundle)["valid"]
    in_channel, r, c = local // (rows * cols), local // cols % rows, local % cols
    ky, kx = (r + 2 - row) // 2, (c + 2 - col) // 2  # 'same' with dilation 2: two rows of padding before
    np.testing.assert_allclose(tiles["weight"], kernel[ky, kx, in_channel, channel], rtol=1e-6)
    assert len(set(tiles["source_cell"].tolist())) == len(dependent_inputs(bundle, "dilated", channel, row, col))


def expected_winners(bundle, values, pool_name="pool"):
    """{pooled cell: winning input cell} by numpy's argmax over each 'same'-padded 2x2 window."""
    source = bundle.layer(bundle.layer(pool_name).inputs[0])
    rows, cols, channels = source.output_shape
    out_rows, out_cols, _ = bundle.layer(pool_name).output_shape
    padded = np.full((out_rows * 2, out_cols * 2, channels), -np.inf, dtype=np.float32)
    padded[:rows, :cols] = values  # TensorFlow pads 'same' windows after the data when the total is odd
    windows = (
        padded.reshape(out_rows, 2, out_cols, 2, channels)
        .transpose(0, 2, 4, 1, 3)
        .reshape(out_rows, out_cols, channels, 4)
    )
    best = windows.argmax(axis=-1)
    winners = {}
    for y, x, ch in np.ndindex(out_rows, out_cols, channels):
        r, c = 2 * y + best[y, x, ch] // 2, 2 * x + best[y, x, ch] % 2
        winners[cell_index(bundle, pool_name, ch, y, x)] = cell_index(bundle, source.name, ch, r, c)
    return winners


def test_max_pooling_links_each_pooled_pixel_to_its_window_winner(network, bundle):
    from blender_cnn.scene.network import set_network_input, show_input

    set_network_input(network, "All Channels", True)
    expected = expected_winners(bundle, bundle.activations("dilated", 0, 1))
    assert links(network, 2) == {(winner, pooled) for pooled, winner in expected.items()}
    marks = quads_of(network, "BCNN Highlight", "overlay", 4, ())
    assert len(marks["corners"]) == len(expected)

    # A new input: the winners follow its activations.
    new_input = bundle.array("samples/inputs")[0][::-1].copy()
    computed = show_input(network, new_input, bundle=bundle)
    expected = expected_winners(bundle, computed["dilated"])
    assert links(network, 2) == {(winner, pooled) for pooled, winner in expected.items()}

    set_network_input(network, "All Channels", False)
    set_network_input(network, "Focus Channel", 1)
    pooled_channel_1 = {pooled for pooled in expected if pooled >= cell_index(bundle, "pool", 1, 0, 0)}
    assert {target for _source, target in links(network, 2)} == pooled_channel_1


def test_flatten_links_follow_keras_order(network, bundle):
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, "All Channels", True)
    rows, cols, channels = bundle.layer("pool").output_shape
    neuron = np.arange(rows * cols * channels)
    r, c, ch = np.unravel_index(neuron, (rows, cols, channels))
    expected = {
        (cell_index(bundle, "pool", int(k), int(i), int(j)), starts(bundle)["flatten"] + int(n))
        for n, i, j, k in zip(neuron, r, c, ch)
    }
    assert links(network, 3) == expected
    set_network_input(network, "All Channels", False)
    set_network_input(network, "Focus Channel", 1)
    first_of_channel_1 = cell_index(bundle, "pool", 1, 0, 0)
    assert links(network, 3) == {(s, t) for s, t in expected if s >= first_of_channel_1}


def test_all_calculations_draws_a_sample_of_windows(network, bundle):
    from blender_cnn.scene.network import set_network_input

    focus(network, bundle.layer("strided").index, 2, 0, 0)
    set_network_input(network, "All Calculations", True)
    lines_each = 3 * 3 * INPUT_SHAPE[2]
    set_network_input(network, "Max Lines", 4 * lines_each)
    targets = {target for _source, target in links(network, 1)}
    windows = {divmod(target - cell_index(bundle, "strided", 2, 0, 0), 7) for target in targets}  # (row, col)
    assert all(0 <= row < 6 and 0 <= col < 7 for row, col in windows)  # the focused channel's 6x7 outputs
    # At most as many windows as Max Lines allows, in an even grid from the first window over the whole map.
    assert 1 < len(windows) <= 4
    rows, cols = sorted({row for row, _ in windows}), sorted({col for _, col in windows})
    assert windows == {(row, col) for row in rows for col in cols} and rows[0] == cols[0] == 0
    (step,) = set(np.diff(rows)) | set(np.diff(cols))
    assert rows[-1] + step >= 6 and cols[-1] + step >= 7, "one more step would leave the map"
    set_network_input(network, "Max Lines", 1000 * lines_each)
    lines = links(network, 1)
    assert len({target for _source, target in lines}) == 6 * 7
    for target in (cell_index(bundle, "strided", 2, 5, 6), cell_index(bundle, "strided", 2, 3, 2)):
        sources = {source for source, t in lines if t == target}
        assert sources == dependent_inputs(
            bundle, "strided", 2, *divmod(target - cell_index(bundle, "strided", 2, 0, 0), 7)
        )


def test_probability_bars_are_as_long_as_the_output_activations(network, bundle):
    bars = mesh_faces_of(network, "BCNN Highlight", "overlay", 5, ("probability",))
    probabilities = bundle.activations("output", 0, 1)
    np.testing.assert_allclose(np.sort(bars["probability"]), np.sort(probabilities), rtol=1e-6)
    lengths = np.ptp(bars["corners"][:, :, 1], axis=1)
    # Proportional to the probability, from zero: one length per unit of probability for every class ...
    full = lengths.sum() / bars["probability"].sum()
    np.testing.assert_allclose(lengths, bars["probability"] * full, rtol=1e-3, atol=1e-3)
    # ... and a certain class's bar would be longer than the gap between the output neurons it stands by.
    centres, cells = drawn_cells(network)
    heights = np.sort(centres[cells["layer"] == bundle.layer("output").index][:, 2])
    assert len(heights) == 3 and full > np.diff(heights).max()


def test_the_focus_operator_picks_the_cell_nearest_the_cursor(network, bundle, blender):
    from blender_cnn.scene.network import get_network_input

    centres, cells = drawn_cells(network)
    pick = int(
        np.flatnonzero(
            (cells["layer"] == bundle.layer("valid").index)
            & (cells["channel"] == 2)
            & (cells["row"] == 1)
            & (cells["col"] == 3)
        )[0]
    )
    blender.context.scene.cursor.location = centres[pick] + np.array([0.0, 0.2, -0.15], dtype=np.float32)
    blender.context.view_layer.objects.active = network
    assert blender.ops.bcnn.focus_selected_cell() == {"FINISHED"}
    picked = [
        get_network_input(network, name) for name in ("Focus Layer", "Focus Channel", "Focus Row", "Focus Column")
    ]
    assert picked == [bundle.layer("valid").index, 2, 1, 3]
    assert focus_cells(network, bundle) == dependent_inputs(bundle, "valid", 2, 1, 3)


# Depthwise and separable windows, a decoder's upsampling and a global pooling head.
UPSAMPLING_LAYERS = [
    (
        "depthwise",
        "DepthwiseConv2D",
        {"kernel_size": [3, 3], "strides": [1, 1], "padding": "same", "depth_multiplier": 2, "dilation_rate": [1, 1]},
        (12, 13, 4),
    ),
    (
        "separable",
        "SeparableConv2D",
        {
            "filters": 2,
            "kernel_size": [3, 3],
            "strides": [1, 1],
            "padding": "valid",
            "depth_multiplier": 1,
            "dilation_rate": [1, 1],
        },
        (10, 11, 2),
    ),
    (
        "up",
        "Conv2DTranspose",
        {"filters": 2, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same", "dilation_rate": [1, 1]},
        (20, 22, 2),
    ),
    ("gap", "GlobalAveragePooling2D", {}, (2,)),
    ("output", "Dense", {"units": 3, "activation": "softmax"}, (3,)),
]


@pytest.fixture(scope="module")
def upsampling_bundle(tmp_path_factory):
    return write_bundle_of(tmp_path_factory.mktemp("upsampling"), UPSAMPLING_LAYERS)


@pytest.mark.parametrize("unit", [0, 1])
def test_global_pooling_frames_the_whole_map_of_its_channel(blender, upsampling_bundle, unit):
    from blender_cnn.scene.network import build_network

    network = build_network(upsampling_bundle)
    gap = upsampling_bundle.layer("gap")
    start = starts(upsampling_bundle)
    set_focus_cell = dict(zip(("Focus Layer", "Focus Channel", "Focus Row", "Focus Column"), (gap.index, 0, unit, 0)))
    from blender_cnn.scene.network import set_network_input

    for name, value in set_focus_cell.items():
        set_network_input(network, name, value)
    rows, cols, _ = upsampling_bundle.layer("up").output_shape
    expected = {start["up"] + unit * rows * cols + i for i in range(rows * cols)}
    assert focus_cells(network, upsampling_bundle) == expected
