"""The node-based network designer, driven as a user's clicks would: presets, live shapes, problems, builds."""

import copy
import json
from pathlib import Path

import pytest
from ui_recorder import RecordingLayout, draw_designer_panel, new_tree_from_preset, node_lines

pytestmark = pytest.mark.bpy
REPO = Path(__file__).resolve().parent.parent
PRESETS = sorted((REPO / "presets").glob("*.json"))
SKIP_DESIGN = {
    "name": "skipnet",
    "input_shape": [8, 8, 2],
    "class_names": ["a", "b", "c"],
    "layers": [
        {"type": "Conv2D", "name": "conv1", "filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "Conv2D", "name": "conv2", "filters": 4, "kernel_size": [3, 3], "padding": "same"},
        {"type": "Add", "name": "add", "inputs": ["conv1", "conv2"]},
        {"type": "Conv2D", "name": "side", "filters": 2, "kernel_size": 1, "inputs": ["input"]},
        {"type": "Concatenate", "name": "join", "inputs": ["add", "side"]},
        {"type": "BatchNormalization", "name": "bn", "epsilon": 0.001},
        {"type": "MaxPooling2D", "name": "pool", "pool_size": 2, "strides": [2, 1]},
        {"type": "Flatten", "name": "flatten"},
        {"type": "Dropout", "name": "drop", "rate": 0.3},
        {"type": "Dense", "name": "output", "units": 3, "activation": "softmax"},
    ],
}


def network_objects(bpy):
    return sorted(obj.name for obj in bpy.data.objects)


# ---------------------------------------------------------------- designs <-> nodes


@pytest.mark.parametrize("path", PRESETS, ids=lambda path: path.stem)
def test_every_preset_becomes_nodes_that_show_its_shapes_and_convert_back_exactly(bpy_designer, path):
    from blender_cnn.core import design
    from blender_cnn.core.design_rules import shape_text
    from blender_cnn.designer.convert import design_from_tree
    from blender_cnn.designer.tree import analysis

    tree = new_tree_from_preset(bpy_designer, f"builtin:{path.stem}")
    preset = json.loads(path.read_text())
    assert design_from_tree(tree) == preset
    infos = design.infer_shapes(preset)
    assert analysis(tree).total_params == design.total_parameters(infos)
    for info in infos[1:]:
        lines = node_lines(tree.nodes[info.name])
        assert f"Output {shape_text(info.output_shape)}" in lines and f"{info.params:,} parameters" in lines
        assert not tree.nodes[info.name].use_custom_color
    # Layers flow left to right.
    assert tree.nodes[infos[-1].name].location.x > tree.nodes["input"].location.x


def test_a_skip_connection_and_a_concatenation_convert_exactly(bpy_designer):
    from blender_cnn.core import design
    from blender_cnn.designer.convert import design_from_tree
    from blender_cnn.designer.tree import analysis, tree_from_design

    tree = tree_from_design(copy.deepcopy(SKIP_DESIGN))
    assert design_from_tree(tree) == SKIP_DESIGN
    assert analysis(tree).problems == {} and analysis(tree).total_params == design.total_parameters(
        design.infer_shapes(SKIP_DESIGN)
    )
    assert [link.from_node.name for link in tree.nodes["join"].inputs[0].links] == ["add", "side"]
    # The skip's two branches are stacked in one column, right of conv1.
    assert tree.nodes["side"].location.x < tree.nodes["join"].location.x


def test_a_design_wired_by_hand_reads_as_a_design(bpy_designer):
    """Nodes added and linked as a user would: a residual block, then a dense head."""
    from blender_cnn.designer.convert import design_from_tree
    from blender_cnn.designer.tree import refresh

    bpy = bpy_designer
    tree = bpy.data.node_groups.new("by hand", "BCNN_DesignTree")
    made = {}
    for kind in ("Input", "Conv2D", "Conv2D", "Add", "Flatten", "Dense"):
        made.setdefault(kind, []).append(tree.nodes.new(f"BCNN_Design{kind}"))
    (source,), (conv_a, conv_b), (add,), (flatten,), (dense,) = (made[k] for k in made)
    source.input_shape, source.class_names = (6, 6, 1), "yes, no"
    conv_a.arg_padding = conv_b.arg_padding = "same"
    dense.arg_units = 2
    for start, end in (
        (source, conv_a),
        (conv_a, conv_b),
        (conv_a, add),
        (conv_b, add),
        (add, flatten),
        (flatten, dense),
    ):
        tree.links.new(start.outputs[0], end.inputs[0])
    result = refresh(tree)
    assert result.problems == {} and result.design_problem is None
    layers = design_from_tree(tree)["layers"]
    assert [layer["type"] for layer in layers] == ["Conv2D", "Conv2D", "Add", "Flatten", "Dense"]
    assert sorted(layers[2]["inputs"]) == sorted([conv_a.name, conv_b.name])
    assert layers[4] == {"type": "Dense", "name": dense.name, "units": 2}
    # A node left unlinked is marked, with the reason.
    stray = tree.nodes.new("BCNN_DesignReLU")
    refresh(tree)
    assert stray.use_custom_color and any("has no input" in line for line in node_lines(stray))


def test_every_node_type_shows_all_its_settings_and_why_it_is_not_linked_yet(bpy_designer):
    from blender_cnn.designer.tree import NODE_CLASSES, analysis, refresh

    tree = bpy_designer.data.node_groups.new("all nodes", "BCNN_DesignTree")
    assert refresh(tree).design_problem.startswith("add an Input node")
    for cls in NODE_CLASSES:
        tree.nodes.new(cls.bl_idname)
    refresh(tree)
    assert analysis(tree).error is None
    shown = {}
    for node in tree.nodes:
        layout = RecordingLayout()
        node.draw_buttons(None, layout)
        shown[node.bl_idname.removeprefix("BCNN_Design")] = layout.record
        if node.bl_idname == "BCNN_DesignInput":
            assert node.draw_label() == "Input"
            continue
        kind = node.bl_idname.removeprefix("BCNN_Design")
        assert node.draw_label() == f"{node.name} ({kind})"
        # Every setting the node holds is on it, by its name and in order; an optional one after its checkbox.
        settings = [prop.name for prop in node.bl_rna.properties if prop.identifier.startswith("arg_")]
        drawn = layout.record["props"]
        assert [text for text in drawn if not text.startswith("use_")] == settings, kind
        for toggle in (text for text in drawn if text.startswith("use_")):
            assert drawn[drawn.index(toggle) + 1] == node.bl_rna.properties["arg_" + toggle[4:]].name, kind
        assert " ".join(layout.record["labels"]).startswith("has no input: link a layer's"), kind
    assert len(shown) == len(NODE_CLASSES) > 20
    # What a user reads on a few of them.
    assert shown["Input"]["props"][:1] == ["rank"] and "class_names" in shown["Input"]["props"]
    assert {"10 classes", "Output 28x28x1"} <= set(shown["Input"]["labels"])
    assert shown["Conv2D"]["props"][:4] == ["Filters", "Kernel Size", "Strides", "Padding"]
    assert shown["Dense"]["props"] == ["Units", "Activation", "Use Bias"]
    assert shown["MaxPooling2D"]["props"] == ["Pool Size", "use_strides", "Strides", "Padding"]
    assert shown["Flatten"]["props"] == [] and shown["Dropout"]["props"] == ["Rate"]


# ---------------------------------------------------------------- problems


def _kernel_too_large(tree):
    tree.nodes["conv2"].arg_kernel_size = (9, 9)
    tree.nodes["conv2"].arg_padding = "valid"
    return "conv2", "kernel 9x9 is larger than its 8x8 input"


def _dense_without_flatten(tree):
    flatten, dense = tree.nodes["flatten"], tree.nodes["dense1"]
    tree.links.remove(dense.inputs[0].links[0])
    tree.links.new(tree.nodes["pool2"].outputs[0], dense.inputs[0])
    tree.nodes.remove(flatten)
    return "dense1", "Dense needs a flat input; add Flatten after pool2"


def _add_of_mismatched_shapes(tree):
    add = tree.nodes.new("BCNN_DesignAdd")
    add.name = "add"
    tree.links.new(tree.nodes["pool1"].outputs[0], add.inputs[0])
    tree.links.new(tree.nodes["conv2"].outputs[0], add.inputs[0])
    pool2 = tree.nodes["pool2"]
    tree.links.remove(pool2.inputs[0].links[0])
    tree.links.new(add.outputs[0], pool2.inputs[0])
    return "add", "Add needs inputs of one shape"


@pytest.mark.parametrize("break_it", [_kernel_too_large, _dense_without_flatten, _add_of_mismatched_shapes])
def test_an_invalid_design_is_marked_on_its_node_and_not_built(bpy_designer, break_it):
    from blender_cnn.designer.tree import PROBLEM_COLOR, analysis, refresh

    bpy = bpy_designer
    tree = new_tree_from_preset(bpy, "builtin:digits_cnn")
    name, reason = break_it(tree)
    refresh(tree)
    node = tree.nodes[name]
    assert node.use_custom_color and tuple(node.color) == pytest.approx(PROBLEM_COLOR)
    assert reason in " ".join(node_lines(node))
    assert reason in analysis(tree).problems[name]
    before = network_objects(bpy)
    with pytest.raises(RuntimeError, match=reason.split(";")[0][:30]):
        bpy.ops.bcnn.build_design_scene(tree_name=tree.name)
    assert network_objects(bpy) == before
    with pytest.raises(RuntimeError, match="problem"):
        bpy.ops.bcnn.save_design_preset(tree_name=tree.name, name="broken")


# ---------------------------------------------------------------- building scenes


def _expected_cells(design, tmp_path, seed=0):
    from blender_cnn.core import cells
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.design import design_bundle

    path = design_bundle(design, tmp_path / f"expected-{design['layers'][-2].get('units')}.bcnn.npz", seed=seed)
    return cells.cell_count(cells.layer_cells(load_bundle(path)))


def test_build_scene_then_rebuild_after_an_edit_keeps_the_users_settings(bpy_designer, tmp_path):
    from blender_cnn.designer.convert import design_from_tree
    from blender_cnn.designer.operators import DESIGN_PROPERTY
    from blender_cnn.scene.network import get_network_input, network_input_path, set_network_input

    bpy = bpy_designer
    tree = new_tree_from_preset(bpy, "builtin:digits_cnn")
    assert bpy.ops.bcnn.build_design_scene(tree_name=tree.name, seed=3) == {"FINISHED"}
    network = bpy.context.view_layer.objects.active
    assert network[DESIGN_PROPERTY] == "digits_cnn"
    first_count = len(get_network_input(network, "Cells").data.vertices)
    assert first_count == _expected_cells(design_from_tree(tree), tmp_path, seed=3)
    objects_after_first_build = len(bpy.data.objects)

    set_network_input(network, "Layer Spacing", 77.0)
    network.keyframe_insert(network_input_path(network, "Layer Spacing"), frame=1)
    action = network.animation_data.action
    tree.nodes["dense1"].arg_units = 20
    assert bpy.ops.bcnn.build_design_scene(tree_name=tree.name, seed=3) == {"FINISHED"}

    rebuilt = bpy.context.view_layer.objects.active
    assert rebuilt.name == "digits_cnn" and len(bpy.data.objects) == objects_after_first_build
    assert [obj.name for obj in bpy.data.objects if obj.get(DESIGN_PROPERTY)] == ["digits_cnn"]
    assert get_network_input(rebuilt, "Layer Spacing") == pytest.approx(77.0)
    assert rebuilt.animation_data.action == action
    new_count = len(get_network_input(rebuilt, "Cells").data.vertices)
    assert new_count == _expected_cells(design_from_tree(tree), tmp_path, seed=3) and new_count != first_count


def test_design_from_network_gives_the_built_networks_layers(bpy_designer):
    from blender_cnn.core import design
    from blender_cnn.designer.convert import design_from_tree
    from blender_cnn.scene.network import network_bundle

    bpy = bpy_designer
    with pytest.raises(RuntimeError):  # no active network: the operator is not available
        bpy.ops.bcnn.design_from_network()
    tree = new_tree_from_preset(bpy, "builtin:digits_cnn")
    bpy.ops.bcnn.build_design_scene(tree_name=tree.name, frame_camera=False)
    bundle = network_bundle(bpy.context.view_layer.objects.active)
    before = set(bpy.data.node_groups)
    assert bpy.ops.bcnn.design_from_network() == {"FINISHED"}
    (made,) = {group for group in set(bpy.data.node_groups) - before if group.bl_idname == "BCNN_DesignTree"}
    infos = design.infer_shapes(design_from_tree(made))
    assert [(info.name, info.type, info.output_shape) for info in infos] == [
        (layer.name, layer.type, tuple(layer.output_shape)) for layer in bundle.layers
    ]
    assert design.total_parameters(infos) == design.total_parameters(design.infer_shapes(design_from_tree(tree)))


# ---------------------------------------------------------------- user presets


def test_a_saved_user_preset_is_offered_and_opens_as_it_was_saved(bpy_designer, tmp_path):
    from blender_cnn.designer.convert import design_from_tree
    from blender_cnn.designer.operators import preset_files

    bpy = bpy_designer
    tree = new_tree_from_preset(bpy, "builtin:lenet5")
    tree.nodes["dense2"].arg_units = 42
    assert bpy.ops.bcnn.save_design_preset(tree_name=tree.name, name="my lenet") == {"FINISHED"}
    saved = tmp_path / "presets" / "my_lenet.json"
    assert json.loads(saved.read_text())["name"] == "my lenet"
    assert "user:my_lenet" in [identifier for identifier, _label, _path in preset_files()]
    reopened = new_tree_from_preset(bpy, "user:my_lenet")
    assert design_from_tree(reopened) == {**design_from_tree(tree), "name": "my lenet"}
    assert not [
        p for folder in ("blender_cnn", "presets") for p in (REPO / folder).rglob("my_lenet.json")
    ]  # never the add-on's own folder


# ---------------------------------------------------------------- the panel


def test_the_panel_draws_for_no_tree_an_empty_a_valid_and_an_invalid_design(bpy_designer):
    bpy = bpy_designer
    record = draw_designer_panel(bpy, None)
    assert "bcnn.new_design_from_preset" in record["operators"] and "bcnn.design_from_network" in record["operators"]
    assert any("No design open" in label for label in record["labels"])

    record = draw_designer_panel(bpy, bpy.data.node_groups.new("empty", "BCNN_DesignTree"))
    assert "1 problem" in record["labels"]

    tree = new_tree_from_preset(bpy, "builtin:digits_cnn")
    record = draw_designer_panel(bpy, tree)
    assert "9,802 parameters" in record["labels"] and "No problems" in record["labels"]
    assert {"bcnn.save_design_preset", "bcnn.build_design_scene"} <= set(record["operators"])

    _kernel_too_large(tree)
    record = draw_designer_panel(bpy, tree)
    assert "1 problem" in record["labels"]
    assert any(label.startswith("conv2: kernel 9x9") for label in record["labels"])
