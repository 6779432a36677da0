"""The convolution sweep, read from the evaluated scene: where the window is, which output pixels are drawn, and
the numbers it writes, against numpy.

A small design covers the window arithmetic: stride 1 and 2, 'same' and 'valid' padding (an asymmetric 'same'
at stride 2), and a max pooling; two epochs of weights (biases not zero), activations from the numpy forward
pass, two samples. No TensorFlow.
"""

import math

import numpy as np
import pytest
from scene_readers import cell_centre, drawn_cells, drawn_quads

pytestmark = pytest.mark.bpy

DESIGN = {
    "name": "sweep",
    "input_shape": [16, 18, 2],
    "class_names": ["a", "b"],
    "layers": [
        {"type": "Conv2D", "name": "same1", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "name": "valid1", "filters": 3, "kernel_size": 3, "padding": "valid"},
        {
            "type": "Conv2D",
            "name": "valid2",
            "filters": 2,
            "kernel_size": 3,
            "strides": 2,
            "padding": "valid",
            "activation": "relu",
        },
        {"type": "Conv2D", "name": "same2", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 2, "padding": "same"},
        {"type": "Flatten", "name": "flatten"},
        {"type": "Dense", "name": "output", "units": 2, "activation": "softmax"},
    ],
}
# (layer, stride, padding) of every windowed layer
WINDOWED = [
    ("same1", 1, "same"),
    ("valid1", 1, "valid"),
    ("valid2", 2, "valid"),
    ("same2", 2, "same"),
    ("pool", 2, "same"),
]


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """The design at two epochs: random weights with random biases, then nudged; activations from numpy."""
    from blender_cnn.core.bundle import load_bundle, write_bundle
    from blender_cnn.core.design import design_bundle
    from blender_cnn.core.forward import forward

    folder = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(5)
    inputs = rng.random((2, *DESIGN["input_shape"]), dtype=np.float32)
    first = load_bundle(design_bundle(DESIGN, folder / "first.bcnn.npz", seed=3, inputs=inputs))
    arrays = {key: first.array(key) for key in np.load(first.path).files if key != "manifest.json"}
    for key in [key for key in arrays if key.startswith("weights/")]:
        start = arrays[key][0] + (0.1 * rng.normal(size=arrays[key][0].shape) if key.endswith("bias") else 0.0)
        later = start + 0.3 * rng.normal(size=start.shape) * (np.std(start) or 0.1)
        arrays[key] = np.stack([start, later]).astype(np.float32)
    for key in [key for key in arrays if key.startswith("activations/") or key == "samples/predictions"]:
        arrays[key] = np.concatenate([arrays[key], arrays[key]])
    manifest = {key: value for key, value in first.manifest.items() if key not in ("format", "version")}
    manifest["epochs"] = [0, 1]
    draft = load_bundle(write_bundle(folder / "draft.bcnn.npz", manifest, arrays))
    for epoch in (0, 1):
        for name, values in forward(draft, inputs, epoch).items():
            arrays[f"activations/{name}"][epoch] = values
        arrays["samples/predictions"][epoch] = arrays["activations/output"][epoch]
    return load_bundle(write_bundle(folder / "sweep.bcnn.npz", manifest, arrays))


@pytest.fixture
def network(blender, two_epochs):
    from blender_cnn.scene.network import build_network, set_network_input

    network = build_network(two_epochs, sample=1)
    set_network_input(network, "Sample", 1.0)
    return network


def sweep(network, bundle, layer, channel, t):
    from blender_cnn.scene.network import set_network_input

    set_network_input(network, "Focus Layer", bundle.layer(layer).index)
    set_network_input(network, "Focus Channel", channel)
    set_network_input(network, "Show Sweep", True)
    set_network_input(network, "Sweep", float(t))


def texts(network, kind):
    from blender_cnn.scene.annotations import drawn_texts

    return drawn_texts(network, kind)


def window_cells(bundle, layer, row, col, channel):
    """Cell indices of the input cells output pixel (row, col, channel) reads (not the padding), from numpy."""
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.core.inspection_windows import window_of

    info = bundle.layer(layer)
    source = next(cells for cells in layer_cells(bundle) if cells.name == info.inputs[0])
    shape = source.output_shape
    channels = range(shape[2]) if info.type == "Conv2D" else [channel]
    return {
        source.start + (c * shape[0] + r) * shape[1] + k
        for c in channels
        for _i, _j, r, k, inside in window_of(info).taps(row, col, shape)
        if inside
    }


@pytest.mark.parametrize("layer, stride, padding", WINDOWED)
def test_the_sweep_puts_the_window_in_reading_order_and_draws_the_pixels_before_it(
    network, two_epochs, layer, stride, padding
):
    from blender_cnn.nodes.annotations import ANNOTATION_SWEEP_TAP
    from blender_cnn.nodes.operations import OVERLAY_FOCUS, OVERLAY_PENDING

    info = two_epochs.layer(layer)
    rows, cols, channels = info.output_shape
    pixels = rows * cols
    for passed in (0, pixels // 3, pixels - 1, pixels):
        t = min((passed + 0.5) / pixels, 1.0)
        sweep(network, two_epochs, layer, 1, t)
        at = min(passed, pixels - 1)
        row, col = divmod(at, cols)
        _centres, cells = drawn_cells(network)
        in_layer = cells["layer"] == info.index
        shown = {
            (int(c), int(r), int(k))
            for c, r, k, keep in zip(cells["channel"], cells["row"], cells["col"], in_layer)
            if keep
        }
        expected = {(c, *divmod(i, cols)) for c in range(channels) for i in range(pixels) if c != 1 or i < passed}
        assert shown == expected, (layer, passed)
        # The window: the focus frame stands where the pixel will be, and the numbers sit on the cells it reads.
        quads, _geometry = drawn_quads(network, "BCNN Highlight")
        overlay = quads.attribute("overlay")
        focus_frame = quads.centres()[overlay == OVERLAY_FOCUS]
        stand_ins = quads.centres()[overlay == OVERLAY_PENDING]
        assert len(stand_ins) == pixels - passed
        pixel_centre = _pixel_centre(network, info.index, 1, row, col, stand_ins, passed, at)
        assert len(focus_frame) == 1 and np.linalg.norm(focus_frame[0] - pixel_centre) < 0.3
        labelled = {text.cell for text in texts(network, ANNOTATION_SWEEP_TAP)}
        assert labelled == window_cells(two_epochs, layer, row, col, 1), (layer, passed, stride, padding)


def _pixel_centre(network, layer_index, channel, row, col, stand_ins, passed, at):
    """Where output pixel (row, col) is drawn: its cell once computed, else its stand-in."""
    if at < passed:
        return cell_centre(network, layer_index, channel, row, col)
    return stand_ins[0]  # the first pixel not reached yet is the window's own


def expected_numbers(bundle, layer, position, epoch, sample=1):
    """numpy's terms of one output pixel: (value, weight, product) per tap by rank, and the panel's numbers."""
    from blender_cnn.core.inspection import inspect_cell

    inspection = inspect_cell(bundle, layer, position, epoch=epoch, sample=sample)
    weighted = inspection.terms[0].weight is not None
    taps = {
        rank: (term.value, term.weight if weighted else 1.0, term.product if weighted else term.value)
        for rank, term in enumerate(inspection.terms)
        if not term.padding
    }
    if weighted:
        panel = (inspection.products_sum, inspection.bias or 0.0, inspection.total, inspection.value)
    else:
        panel = (inspection.value, 0.0, sum(t[2] for t in taps.values()), inspection.value)
    return taps, np.array(panel)


@pytest.mark.parametrize("layer", ["same1", "valid2", "same2", "pool"])
def test_the_sweep_numbers_are_numpy_s_at_two_epochs_and_blend_between_them(network, two_epochs, layer):
    from blender_cnn.nodes.annotations import ANNOTATION_SWEEP_EQUATION, ANNOTATION_SWEEP_TAP
    from blender_cnn.scene.network import set_network_input

    info = two_epochs.layer(layer)
    rows, cols, _channels = info.output_shape
    at = (rows * cols) // 2
    sweep(network, two_epochs, layer, 1, (at + 0.5) / (rows * cols))
    position = (*divmod(at, cols), 1)

    def drawn():
        taps = {text.item: text.numbers[:3] for text in texts(network, ANNOTATION_SWEEP_TAP)}
        lines = texts(network, ANNOTATION_SWEEP_EQUATION)
        # The header, a line per kernel row (one input channel) or per input channel, and the equation.
        reads = two_epochs.layer(info.inputs[0]).output_shape[-1] if info.type == "Conv2D" else 1
        rows = reads if reads > 1 else (info.config.get("pool_size") or info.config["kernel_size"])[0]
        assert sorted(text.item for text in lines) == list(range(rows + 2))
        assert all(text.glyphs > 0 for text in lines)
        panel = {text.numbers for text in lines}
        assert len(panel) == 1  # every line of the panel carries the same numbers
        return taps, np.array(panel.pop())

    def compare(got, want):
        assert set(got[0]) == set(want[0])
        for rank, numbers in want[0].items():
            np.testing.assert_allclose(got[0][rank], numbers, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)

    for epoch in (0, 1):
        set_network_input(network, "Epoch", float(epoch))
        compare(drawn(), expected_numbers(two_epochs, layer, position, epoch))
    set_network_input(network, "Epoch", 0.5)
    first, second = (expected_numbers(two_epochs, layer, position, epoch) for epoch in (0, 1))
    halfway = (
        {rank: tuple((a + b) / 2 for a, b in zip(first[0][rank], second[0][rank])) for rank in first[0]},
        (first[1] + second[1]) / 2,
    )
    compare(drawn(), halfway)


def test_sweep_taps_adds_the_products_one_at_a_time(network, two_epochs):
    from blender_cnn.nodes.annotations import ANNOTATION_SWEEP_EQUATION, ANNOTATION_SWEEP_TAP
    from blender_cnn.scene.network import set_network_input

    info = two_epochs.layer("valid1")
    rows, cols, _ = info.output_shape
    taps = 3 * 3 * 3
    set_network_input(network, "Sweep Taps", True)
    set_network_input(network, "Epoch", 1.0)
    terms, _panel = expected_numbers(two_epochs, "valid1", (0, 5, 0), 1)
    for revealed in (1, 10, taps):
        # Within pixel 5's share of the sweep, one more tap per 1/(taps + 1) of it.
        sweep(network, two_epochs, "valid1", 0, (5 + (revealed - 0.5) / (taps + 1)) / (rows * cols))
        drawn = {text.item for text in texts(network, ANNOTATION_SWEEP_TAP)}
        assert drawn == set(range(revealed))
        (running,) = {text.numbers[0] for text in texts(network, ANNOTATION_SWEEP_EQUATION)}
        assert running == pytest.approx(sum(terms[rank][2] for rank in range(revealed)), rel=1e-5, abs=1e-6)


def test_animate_sweep_keys_the_sweep_over_its_frames(blender, network, two_epochs):
    from blender_cnn.scene.animation import animate_sweep
    from blender_cnn.scene.network import get_network_input

    scene = blender.context.scene
    first, last = animate_sweep(network, "same2", channel=1, start_frame=10, frames=30)
    assert (first, last) == (10, 39)
    assert get_network_input(network, "Focus Layer") == two_epochs.layer("same2").index
    assert get_network_input(network, "Focus Channel") == 1 and get_network_input(network, "Show Sweep")
    rows, cols, channels = two_epochs.layer("same2").output_shape
    for frame, passed in ((10, 0), (24, math.floor(14 / 29 * rows * cols)), (39, rows * cols)):
        scene.frame_set(frame)
        assert get_network_input(network, "Sweep") == pytest.approx((frame - 10) / 29)
        _centres, cells = drawn_cells(network)
        chosen = (cells["layer"] == two_epochs.layer("same2").index) & (cells["channel"] == 1)
        assert chosen.sum() == passed, frame


def test_all_calculations_draws_every_window_of_a_layer_or_says_how_many_it_sampled(network, two_epochs):
    from scene_readers import evaluated_geometry, read_attribute

    from blender_cnn.nodes.annotations import ANNOTATION_CALCULATIONS
    from blender_cnn.nodes.operations import LINK_WINDOW
    from blender_cnn.scene.network import set_network_input

    info = two_epochs.layer("valid1")
    rows, cols, channels = info.output_shape
    set_network_input(network, "Focus Layer", info.index)
    set_network_input(network, "Focus Channel", 2)
    set_network_input(network, "All Calculations", True)

    def windows():
        geometry = evaluated_geometry(network)  # kept alive while its mesh is read
        link = read_attribute(geometry.mesh, "link")
        return set(read_attribute(geometry.mesh, "target_cell")[link == LINK_WINDOW].tolist())

    def label():
        (text,) = texts(network, ANNOTATION_CALCULATIONS)
        return text.numbers[:2]

    # Every window of the channel, and with All Channels of the layer.
    assert len(windows()) == rows * cols and label() == (rows * cols, rows * cols)
    set_network_input(network, "All Channels", True)
    assert len(windows()) == channels * rows * cols and label() == (channels * rows * cols,) * 2
    # Fewer lines than that allows: an even grid of every map, as many as the lines allow, and the label says so.
    lines_each = 3 * 3 * 3
    set_network_input(network, "Max Lines", 40 * lines_each)
    drawn = windows()
    assert 0 < len(drawn) <= 40 and label() == (len(drawn), channels * rows * cols)
    first = next(cells.start for cells in _layers(two_epochs) if cells.name == "valid1")
    places = {divmod((cell - first) % (rows * cols), cols) for cell in drawn}
    assert {(cell - first) // (rows * cols) for cell in drawn} == set(range(channels))
    (step,) = {b - a for a, b in zip(sorted({r for r, _ in places}), sorted({r for r, _ in places})[1:])}
    assert sorted({r for r, _ in places}) == list(range(0, rows, step))
    assert sorted({c for _, c in places}) == list(range(0, cols, step))


def _layers(bundle):
    from blender_cnn.core.cells import layer_cells

    return layer_cells(bundle)


def test_the_animate_sweep_operator_sweeps_the_focus_layer_from_the_panel(blender, network, two_epochs):
    from ui_recorder import draw_network_panel

    from blender_cnn.scene.network import get_network_input, set_network_input

    blender.context.view_layer.objects.active = network
    assert "bcnn.animate_sweep" in draw_network_panel(blender)["operators"]
    set_network_input(network, "Focus Layer", two_epochs.layer("valid2").index)
    set_network_input(network, "Focus Channel", 1)
    assert blender.ops.bcnn.animate_sweep(frames=20, start_frame=5) == {"FINISHED"}
    assert get_network_input(network, "Show Sweep") and get_network_input(network, "Focus Channel") == 1
    assert (blender.context.scene.frame_start, blender.context.scene.frame_end) == (5, 24)
    assert blender.ops.bcnn.animate_sweep(layer="pool", channel=0, frames=8) == {"FINISHED"}
    assert get_network_input(network, "Focus Layer") == two_epochs.layer("pool").index
    with pytest.raises(RuntimeError, match="no channel 9"):
        blender.ops.bcnn.animate_sweep(layer="pool", channel=9)


# Runs in a fresh Python with bpy only: argv = blend, frame, network. Importing blender_cnn fails there.
_EVALUATE_SCRIPT = r"""
import importlib.abc, json, sys

class BlockBlenderCNN(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "blender_cnn" or name.startswith("blender_cnn."):
            raise ImportError(f"blender_cnn is blocked in this process: {name}")
        return None

sys.meta_path.insert(0, BlockBlenderCNN())
import bpy

bpy.ops.wm.open_mainfile(filepath=sys.argv[1], load_ui=False)
bpy.context.scene.frame_set(int(sys.argv[2]))
network = bpy.data.objects[sys.argv[3]]
geometry = network.evaluated_get(bpy.context.evaluated_depsgraph_get()).evaluated_geometry()
instances = geometry.instances_pointcloud()
kinds = [item.value for item in instances.attributes["annotation"].data]
sums = [item.value for item in instances.attributes["annotation_n0"].data]
print("RESULT:" + json.dumps({kind: sorted({round(s, 5) for k, s in zip(kinds, sums) if k == kind}) for kind in set(kinds)}))
"""


def test_a_saved_sweep_and_inspection_show_their_numbers_without_the_addon(blender, network, two_epochs, tmp_path):
    import json
    import os
    import subprocess
    import sys
    import tempfile

    from blender_cnn.scene.animation import animate_sweep
    from blender_cnn.scene.inspection import inspect_network_cell
    from blender_cnn.scene.network import network_input_path

    inspect_network_cell(network, "valid2", (1, 2, 0))
    animate_sweep(network, "same2", channel=1, start_frame=1, frames=20)
    network.keyframe_insert(data_path=network_input_path(network, "Epoch"), frame=1)
    blend = tmp_path / "sweep.blend"
    blender.ops.wm.save_as_mainfile(filepath=str(blend))
    blender.context.scene.frame_set(13)
    expected = {}
    for text in texts(network, None):
        expected.setdefault(text.kind, set()).add(round(text.numbers[0], 5))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["BLENDER_USER_RESOURCES"] = tempfile.mkdtemp(prefix="blender_cnn_fresh_user_")
    process = subprocess.run(
        [sys.executable, "-c", _EVALUATE_SCRIPT, str(blend), "13", network.name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    (line,) = [line for line in process.stdout.splitlines() if line.startswith("RESULT:")]
    there = {int(kind): set(values) for kind, values in json.loads(line[len("RESULT:") :]).items() if int(kind) > 0}
    assert set(there) == set(expected) >= {1, 2, 3, 4}
    for kind, values in expected.items():
        assert sorted(there[kind]) == pytest.approx(sorted(values)), kind


def test_the_output_s_probabilities_are_written_after_their_bars(network, two_epochs):
    from blender_cnn.scene.materials import LABEL_MATERIAL

    glyphs, _geometry = drawn_quads(network, LABEL_MATERIAL)
    probabilities = two_epochs.activations("output", 0, 1)
    # "0.37" and "0.63": four characters each, written as fields (the class names are labels of their own).
    assert len(glyphs) == sum(len(f"{p:.2f}") for p in probabilities)
    neuron = cell_centre(network, two_epochs.layer("output").index, 0, 0, 0)
    # Right of the neurons (-Y), after the bars: further than the class names.
    assert (glyphs.centres()[:, 1] < neuron[1] - 2.0).all()
