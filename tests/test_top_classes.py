"""The top classes' readout: a network of many classes shows, beside its output layer, the most probable classes of
the sample and epoch shown, name and probability in rows at the labels' size, instead of a class name per neuron
(nodes/operations.py's top_classes_readout). Read back from the evaluated geometry, as the composition check reads
it."""

import numpy as np
import pytest

pytestmark = pytest.mark.bpy
CLASSES = 120
SIZE = (1280, 720)


@pytest.fixture(scope="module")
def many_classes_bundle(tmp_path_factory):
    """A small design with 120 classes and random weights, three samples, computed in numpy (no TensorFlow)."""
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle

    design = {
        "name": "many_classes",
        "input_shape": [8, 8, 1],
        "class_names": [f"kind {index}" for index in range(CLASSES)],
        "layers": [
            {"type": "Conv2D", "name": "conv", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
            {"type": "Flatten", "name": "flat"},
            {"type": "Dense", "name": "output", "units": CLASSES, "activation": "softmax"},
        ],
    }
    inputs = np.random.default_rng(1).random((3, 8, 8, 1), dtype=np.float32)
    path = tmp_path_factory.mktemp("many_classes") / "many_classes.bcnn.npz"
    return load_bundle(design_bundle(design, path, seed=3, inputs=inputs))


def readout(network):
    """The readout as drawn: its title's words, and per row (most probable first) the class shown, its probability
    and the row's words (the glyphs' characters)."""
    from blender_cnn.nodes.annotations import ANNOTATION_TOP_CLASSES
    from blender_cnn.scene.annotations import drawn_texts

    texts = drawn_texts(network, ANNOTATION_TOP_CLASSES)
    if not texts:
        return None, []
    start = network_layers(network)[-1].start  # the output layer's first neuron
    words = drawn_words(network)
    rows = [(text.cell - start, text.numbers[0], words[text.item]) for text in texts if text.item > 0]
    return words[0], rows


def network_layers(network):
    from blender_cnn.core.cells import layer_cells
    from blender_cnn.scene.network import network_bundle

    return layer_cells(network_bundle(network))


def drawn_words(network):
    """``{annotation_item: characters}`` of the readout's glyphs (each glyph instance's reference is its character)."""
    from blender_cnn.nodes.annotations import ANNOTATION_TOP_CLASSES
    from blender_cnn.scene.drawn import evaluated_geometry, read_attribute

    geometry = evaluated_geometry(network)
    references = geometry.instance_references()
    cloud = geometry.instances_pointcloud()
    kinds, items = read_attribute(cloud, "annotation"), read_attribute(cloud, "annotation_item")
    glyphs = read_attribute(cloud, ".reference_index")
    words = {}
    for item in np.unique(items[kinds == ANNOTATION_TOP_CLASSES]):
        chosen = glyphs[(kinds == ANNOTATION_TOP_CLASSES) & (items == item)]
        words[int(item)] = "".join(getattr(references[index], "name", "") or "" for index in chosen)
    return words


def most_probable(bundle, sample, count=5):
    probabilities = bundle.array(bundle.manifest["samples"]["predictions"])[-1, sample]
    order = np.argsort(-probabilities, kind="stable")[:count]
    return [int(index) for index in order], probabilities[order]


def test_many_classes_show_the_readout_of_the_sample_s_most_probable_classes(blender, many_classes_bundle):
    from blender_cnn.scene.network import build_network, get_network_input, set_network_input

    network = build_network(many_classes_bundle)
    assert get_network_input(network, "Top Classes") == 5
    for sample in (0, 2):
        set_network_input(network, "Sample", sample)
        title, rows = readout(network)
        classes, probabilities = most_probable(many_classes_bundle, sample)
        assert title == f"top5of{CLASSES}classes"
        assert [row[0] for row in rows] == classes
        assert [row[1] for row in rows] == pytest.approx(probabilities.tolist(), abs=1e-5)
        assert [row[2] for row in rows] == [f"{p:.3f}kind{c}" for c, p in zip(classes, probabilities)]
    # The samples' readouts differ: it follows the Sample shown.
    assert most_probable(many_classes_bundle, 0)[0] != most_probable(many_classes_bundle, 2)[0]


def test_the_readout_replaces_the_class_names_beside_the_neurons_and_can_be_switched_off(blender, many_classes_bundle):
    from blender_cnn.scene.drawn_texts import read_drawing
    from blender_cnn.scene.network import build_network, set_network_input

    network = build_network(many_classes_bundle)
    kinds = {text.kind for text in read_drawing(network).texts}
    groups = {text.group for text in read_drawing(network).texts}
    assert "readout" in kinds and "probability" not in kinds
    assert not any(group.startswith("the class names") for group in groups)
    set_network_input(network, "Top Classes", 0)
    drawing = read_drawing(network)
    assert "readout" not in {text.kind for text in drawing.texts}
    assert "probability" in {text.kind for text in drawing.texts}
    assert readout(network) == (None, [])
    set_network_input(network, "Top Classes", 3)
    assert len(readout(network)[1]) == 3


def test_the_staged_readout_passes_the_composition_checks(blender, many_classes_bundle):
    from blender_cnn.scene.composition import View, check_composition, min_text_height, read_drawing, text_heights
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.stage import set_up_stage

    scene = blender.context.scene
    scene.render.resolution_x, scene.render.resolution_y = SIZE
    scene.render.resolution_percentage = 100
    network = build_network(many_classes_bundle)
    camera = set_up_stage(network, scene)
    problems = check_composition(scene, network)
    assert problems == [], "\n".join(map(str, problems))
    # The checks saw the readout's six lines as texts, each tall enough.
    drawing = read_drawing(network)
    heights = [
        height
        for text, height in zip(drawing.texts, text_heights(drawing, View(camera, scene)))
        if text.kind == "readout"
    ]
    assert len(heights) == 6 and min(heights) >= min_text_height(SIZE[1])


@pytest.mark.tf
def test_the_readout_follows_the_epoch_shown(blender, demo_bundle):
    """The trained demo (10 classes) names every neuron by default; with Top Classes its readout ranks the classes
    as the network did at each epoch shown."""
    from blender_cnn.scene.network import build_network, get_network_input, set_network_input

    network = build_network(demo_bundle)
    assert get_network_input(network, "Top Classes") == 0
    set_network_input(network, "Top Classes", 3)
    predictions = demo_bundle.array(demo_bundle.manifest["samples"]["predictions"])
    shown = []
    for position, epoch in enumerate(demo_bundle.epochs):
        set_network_input(network, "Epoch", float(epoch))
        title, rows = readout(network)
        expected = np.argsort(-predictions[position, 0], kind="stable")[:3]
        assert title == "top3of10classes"
        assert [row[0] for row in rows] == expected.tolist()
        assert [row[1] for row in rows] == pytest.approx(predictions[position, 0, expected].tolist(), abs=1e-5)
        shown.append([row[1] for row in rows])
    assert shown[0] != shown[-1]  # training changed what the network predicts
