"""Parts of a tree (nodes/builder.py ``TreeBuilder.part``): nodes built in a group of their own, whose sockets reach
the tree and other parts as if they were one tree; a network built in parts draws what it drew in one tree, pixel
for pixel; and removing a network removes its parts.
"""

from __future__ import annotations

import numpy as np
import pytest
from scene_readers import built_staged_and_rendered, drawn_cells

pytestmark = [pytest.mark.bpy]


def _evaluated_attribute(blender, tree, name):
    mesh = blender.data.meshes.new("points")
    mesh.vertices.add(2)
    obj = blender.data.objects.new("points", mesh)
    blender.context.scene.collection.objects.link(obj)
    obj.modifiers.new("parts", "NODES").node_group = tree
    evaluated = obj.evaluated_get(blender.context.evaluated_depsgraph_get())
    return [item.value for item in evaluated.data.attributes[name].data]


def test_sockets_reach_across_parts_and_the_tree_computes_as_one(blender):
    from blender_cnn.nodes.builder import PART_PROPERTY, TreeBuilder, tree_nodes, tree_parts

    blender.ops.wm.read_homefile(app_template="")
    tree = blender.data.node_groups.new("Parts", "GeometryNodeTree")
    b = TreeBuilder(tree)
    geometry = b.add_input("Geometry", "GEOMETRY")
    value = b.add_input("Value", "FLOAT", 3.0)
    b.add_output("Geometry", "GEOMETRY")
    with b.part("Doubled"):
        doubled = b.multiply(value, 2.0)  # the tree's input, passed in
    with b.part("Stored"):
        # A sibling part's socket, passed out of it and into this one, with the tree's geometry.
        stored = b.node(
            "GeometryNodeStoreNamedAttribute",
            {"Geometry": geometry, "Name": "result", "Value": b.add(doubled, 1.0)},
            data_type="FLOAT",
            domain="POINT",
        ).outputs[0]
    b.set_outputs(Geometry=stored)
    b.lay_out()

    assert _evaluated_attribute(blender, tree, "result") == [7.0, 7.0]
    parts = tree_parts(tree)
    assert [part.name for part in parts] == ["Parts: Doubled", "Parts: Stored"]
    assert all(part.get(PART_PROPERTY) for part in parts)
    assert [item.name for item in parts[0].interface.items_tree if item.in_out == "INPUT"] == ["Value"]
    assert [node.bl_idname for node in tree.nodes if node.bl_idname == "GeometryNodeGroup"] == ["GeometryNodeGroup"] * 2
    maths = [node.operation for node in tree_nodes(tree) if node.bl_idname == "ShaderNodeMath"]
    assert sorted(maths) == ["ADD", "MULTIPLY"]


def test_without_separate_parts_the_nodes_stand_in_the_tree_in_a_frame(blender, monkeypatch):
    from blender_cnn.nodes import builder

    monkeypatch.setattr(builder, "separate_parts", False)
    blender.ops.wm.read_homefile(app_template="")
    tree = blender.data.node_groups.new("One tree", "GeometryNodeTree")
    b = builder.TreeBuilder(tree)
    value = b.add_input("Value", "FLOAT", 3.0)
    with b.part("Doubled"):
        b.multiply(value, 2.0)
    assert builder.tree_parts(tree) == []
    (math,) = [node for node in tree.nodes if node.bl_idname == "ShaderNodeMath"]
    assert math.parent is not None and math.parent.label == "Doubled"


def _centres_and_colors(network):
    centres, cells = drawn_cells(network)
    return centres, cells["cell_color"]


@pytest.mark.render
def test_a_network_built_in_parts_draws_what_one_tree_drew_pixel_for_pixel(
    blender, monkeypatch, digits_design_bundle, tmp_path
):
    from blender_cnn.nodes import builder

    monkeypatch.setattr(builder, "separate_parts", False)
    network, one_positions, one_pixels = built_staged_and_rendered(blender, digits_design_bundle, tmp_path / "a.png")
    one_cells = _centres_and_colors(network)
    assert builder.tree_parts(network.modifiers["BlenderCNN"].node_group) == []
    monkeypatch.setattr(builder, "separate_parts", True)
    network, positions, pixels = built_staged_and_rendered(blender, digits_design_bundle, tmp_path / "b.png")
    cells = _centres_and_colors(network)
    tree = network.modifiers["BlenderCNN"].node_group
    assert len(builder.tree_parts(tree)) >= 2
    for drawn, drawn_in_one_tree in zip(cells, one_cells):
        np.testing.assert_array_equal(drawn, drawn_in_one_tree)
    np.testing.assert_array_equal(positions, one_positions)
    assert (one_pixels > 0.05).any()
    np.testing.assert_array_equal(pixels, one_pixels)


def test_removing_a_network_removes_its_parts(blender, digits_design_bundle):
    from blender_cnn.nodes.builder import tree_parts
    from blender_cnn.scene.network import build_network
    from blender_cnn.scene.replacing import remove_network

    blender.ops.wm.read_homefile(app_template="")
    network = build_network(digits_design_bundle)
    tree = network.modifiers["BlenderCNN"].node_group
    names = [tree.name] + [part.name for part in tree_parts(tree)]
    assert len(names) >= 3
    remove_network(network)
    assert [name for name in names if name in blender.data.node_groups] == []


@pytest.mark.render
@pytest.mark.parametrize("realized", [True, False], ids=["realized", "instances"])
def test_cells_nested_as_one_instance_draw_what_the_joined_cells_drew_pixel_for_pixel(
    blender, monkeypatch, digits_design_bundle, tmp_path, realized
):
    from blender_cnn.nodes import network as network_tree

    monkeypatch.setattr(network_tree, "nest_cells", False)
    network, joined_positions, joined_pixels = built_staged_and_rendered(
        blender, digits_design_bundle, tmp_path / "joined.png", realized=realized
    )
    joined_cells = _centres_and_colors(network)
    joined_count = _top_level_instances(network)
    monkeypatch.setattr(network_tree, "nest_cells", True)
    network, positions, pixels = built_staged_and_rendered(
        blender, digits_design_bundle, tmp_path / "nested.png", realized=realized
    )
    cells = _centres_and_colors(network)
    # The cells are one instance of the top level now, not thousands.
    assert _top_level_instances(network) < joined_count - len(cells[0]) + 2
    assert len(cells[0]) > 1000
    for drawn, drawn_joined in zip(cells, joined_cells):
        np.testing.assert_array_equal(drawn, drawn_joined)
    np.testing.assert_array_equal(positions, joined_positions)
    assert (joined_pixels > 0.05).any()
    np.testing.assert_array_equal(pixels, joined_pixels)


def _top_level_instances(network):
    from blender_cnn.scene.drawn import evaluated_geometry

    geometry = evaluated_geometry(network)  # kept alive while its point cloud is read
    return len(geometry.instances_pointcloud().points)
