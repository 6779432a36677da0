"""The shared node groups prebuilt into a .blend (nodes/prebuilt.py): the groups the code builds, node for node;
the same scene and the same pixels as groups built from code; a first save that leaves the network as it was;
and groups built from code whenever the asset is missing or holds a group of other code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scene_readers import built_staged_and_rendered

pytestmark = [pytest.mark.bpy]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def asset(tmp_path_factory):
    """The asset as the extension build writes it (scripts/build_node_groups.py, in its own Python)."""
    spec = importlib.util.spec_from_file_location("build_node_groups", REPO / "scripts" / "build_node_groups.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("asset") / "node_groups.blend")


@pytest.fixture
def groups_from(monkeypatch):
    """``groups_from(path)``: new files take their groups from the asset at ``path``; None builds them from code."""
    from blender_cnn.nodes import prebuilt

    def use(path):
        monkeypatch.setattr(prebuilt, "enabled", path is not None)
        monkeypatch.setattr(prebuilt, "ASSET_PATH", path or Path("/nonexistent"))

    return use


def _value(value):
    """A property or socket value as plain numbers and strings (vectors as lists, data-blocks by name)."""
    if hasattr(value, "name") and hasattr(value, "bl_rna"):
        return value.name
    if hasattr(value, "__len__") and not isinstance(value, str):
        return [_value(item) for item in value]
    return value


def _properties(thing):
    """The editable plain properties of a node, socket or interface item, and its collections' items by name."""
    skipped = {"location", "location_absolute", "width", "height", "select", "show_options", "hide", "dimensions"}
    properties = {}
    for prop in thing.bl_rna.properties:
        if prop.identifier in skipped or prop.identifier == "rna_type":
            continue
        if prop.type == "COLLECTION" and prop.identifier not in {"inputs", "outputs", "internal_links"}:
            properties[prop.identifier] = [getattr(item, "name", "") for item in getattr(thing, prop.identifier)]
        elif prop.type in {"BOOLEAN", "INT", "FLOAT", "STRING", "ENUM"} and not prop.is_readonly:
            properties[prop.identifier] = _value(getattr(thing, prop.identifier))
        elif prop.type == "POINTER" and prop.identifier in {"node_tree", "color_ramp"}:
            pointed = getattr(thing, prop.identifier)
            properties[prop.identifier] = (
                [(e.position, list(e.color)) for e in pointed.elements]
                if prop.identifier == "color_ramp"
                else _value(pointed)
            )
    return properties


def dump(tree):
    """Everything a group computes with: its interface, nodes (properties, unlinked input values) and links."""
    nodes = {}
    for node in tree.nodes:
        inputs = {
            socket.identifier: _value(socket.default_value)
            for socket in node.inputs
            if hasattr(socket, "default_value") and not socket.is_linked
        }
        nodes[node.name] = {"type": node.bl_idname, "parent": _value(node.parent), **_properties(node), "in": inputs}
    # Sockets by position and name: a group rebuilt in place gives its interface sockets new identifiers.
    links = sorted(
        (
            link.from_node.name,
            list(link.from_node.outputs).index(link.from_socket),
            link.from_socket.name,
            link.to_node.name,
            list(link.to_node.inputs).index(link.to_socket),
            link.to_socket.name,
        )
        for link in tree.links
    )
    interface = [_properties(item) for item in tree.interface.items_tree]
    return {"interface": interface, "nodes": nodes, "links": links, "version": tree.get("blender_cnn_version")}


def _shared_group_dumps():
    from blender_cnn.nodes.network import ensure_shared_groups

    return {name: dump(tree) for name, tree in ensure_shared_groups().items()}


def test_the_asset_holds_the_groups_the_code_builds(blender, asset, groups_from):
    groups_from(None)
    from_code = _shared_group_dumps()
    blender.ops.wm.read_homefile(app_template="")
    groups_from(asset)
    from blender_cnn.nodes import prebuilt

    assert prebuilt.append_prebuilt_groups(), "the asset's groups did not come into the file, local"
    from_asset = _shared_group_dumps()

    assert sorted(from_asset) == sorted(from_code)
    for name in from_code:
        assert from_asset[name] == from_code[name], name
    # Taken from the asset, made local: the file keeps no link to it.
    assert len(blender.data.libraries) == 0
    assert all(group.library is None and group.library_weak_reference is None for group in blender.data.node_groups)


@pytest.mark.render
def test_a_scene_from_the_asset_is_the_scene_from_code_pixel_for_pixel(
    blender, asset, groups_from, digits_design_bundle, tmp_path
):
    groups_from(None)
    _network, code_positions, code_pixels = built_staged_and_rendered(blender, digits_design_bundle, tmp_path / "a.png")
    groups_from(asset)
    _network, asset_positions, asset_pixels = built_staged_and_rendered(
        blender, digits_design_bundle, tmp_path / "b.png"
    )
    assert blender.data.node_groups.get("BCNN Cell Layout").get("blender_cnn_version")
    np.testing.assert_array_equal(asset_positions, code_positions)
    assert (code_pixels > 0.05).any()
    np.testing.assert_array_equal(asset_pixels, code_pixels)


def test_the_first_save_with_relative_paths_leaves_the_network_as_it_was(
    blender, asset, groups_from, digits_design_bundle, tmp_path
):
    """Appended groups kept a weak reference to the asset's path, which the first save rewrote; Blender then
    counted the groups as changed and evaluated the network again inside the save."""
    from blender_cnn.scene.network import build_network

    groups_from(asset)
    network = build_network(digits_design_bundle)
    network.evaluated_get(blender.context.evaluated_depsgraph_get()).evaluated_geometry()
    updated = []

    def record(_scene, depsgraph):
        updated.extend(update.id.name for update in depsgraph.updates)

    blender.app.handlers.depsgraph_update_post.append(record)
    try:
        blender.ops.wm.save_as_mainfile(filepath=str(tmp_path / "network.blend"), relative_remap=True)
    finally:
        blender.app.handlers.depsgraph_update_post.remove(record)
    assert updated == []


def test_groups_are_built_from_code_without_the_asset(blender, groups_from, tmp_path):
    from blender_cnn.nodes import prebuilt

    groups_from(tmp_path / "missing.blend")
    assert not prebuilt.append_prebuilt_groups()
    made = _shared_group_dumps()
    assert len(made) == len(blender.data.node_groups) and all(dump["nodes"] for dump in made.values())


def test_a_group_of_other_code_in_the_asset_is_rebuilt_from_code(blender, asset, groups_from, tmp_path):
    """An asset older than the code: the group whose version differs is rebuilt, the others are kept."""
    from blender_cnn.nodes.builder import VERSION_PROPERTY

    groups_from(None)
    from_code = _shared_group_dumps()
    # The asset with one group as other code built it: another version, one more node.
    blender.ops.wm.read_homefile(app_template="")
    with blender.data.libraries.load(str(asset)) as (source, target):
        target.node_groups = list(source.node_groups)
    stale = blender.data.node_groups["BCNN Legend"]
    stale[VERSION_PROPERTY] = "older"
    stale.nodes.new("GeometryNodeInputIndex")
    older = tmp_path / "older.blend"
    blender.data.libraries.write(str(older), set(blender.data.node_groups))

    blender.ops.wm.read_homefile(app_template="")
    groups_from(older)
    assert _shared_group_dumps() == from_code


def test_a_file_with_a_group_of_the_same_name_takes_nothing_from_the_asset(blender, asset, groups_from):
    """Linked in beside it, the asset's group would be renamed, and the groups using it would use the copy."""
    from blender_cnn.nodes import prebuilt

    groups_from(asset)
    blender.data.node_groups.new("BCNN Legend", "GeometryNodeTree")
    assert not prebuilt.append_prebuilt_groups()
    assert [group.name for group in blender.data.node_groups] == ["BCNN Legend"]
    assert len(blender.data.libraries) == 0
