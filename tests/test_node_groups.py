"""Single node groups on a small geometry of their own: a few points, one group through a modifier, the values read.

No network is built: each test writes a handful of points with the attributes
the group reads (``core/attributes.py``), puts the group on them through a
modifier, and checks what it computes against arithmetic done here.
"""

import numpy as np
import pytest


def _apply(blender, ensure_group, arrays, inputs, count=None):
    """A mesh of points carrying ``arrays``, with ``ensure_group()`` applied to it: the evaluated mesh.

    ``inputs`` are the group's other inputs ({name: value}); its first
    geometry input gets the points, its first geometry output is what is read.
    """
    from blender_cnn.nodes.builder import TreeBuilder
    from blender_cnn.scene.drawn import evaluated_geometry
    from blender_cnn.scene.geometry_data import points_mesh

    count = count if count is not None else len(next(iter(arrays.values())))
    mesh = points_mesh("points", count, arrays)
    holder = blender.data.objects.new("points", mesh)
    blender.context.scene.collection.objects.link(holder)
    group = ensure_group()
    tree = blender.data.node_groups.new("apply one group", "GeometryNodeTree")
    tree.is_modifier = True
    b = TreeBuilder(tree)
    points = b.add_input("Geometry", "GEOMETRY")
    b.add_output("Geometry", "GEOMETRY")
    first_input = next(
        item.name
        for item in group.interface.items_tree
        if item.item_type == "SOCKET" and item.in_out == "INPUT" and item.socket_type == "NodeSocketGeometry"
    )
    node = b.group(group, {first_input: points, **inputs})
    b.set_outputs(Geometry=node.outputs[0])
    holder.modifiers.new("group", "NODES").node_group = tree
    return evaluated_geometry(holder), holder


def _cells(maps, rows, cols, layer=1, summary_kinds=()):
    """The cell attributes of one layer of ``maps`` maps of ``rows`` x ``cols``, then one summary map per kind."""
    channel, row, col = (
        grid.ravel() for grid in np.meshgrid(np.arange(maps), np.arange(rows), np.arange(cols), indexing="ij")
    )
    summary = np.zeros(len(channel), np.int32)
    for kind in summary_kinds:
        channel = np.concatenate([channel, np.zeros(rows * cols, np.int64)])
        row = np.concatenate([row, np.repeat(np.arange(rows), cols)])
        col = np.concatenate([col, np.tile(np.arange(cols), rows)])
        summary = np.concatenate([summary, np.full(rows * cols, kind, np.int32)])
    count = len(channel)

    def full(value):
        return np.full(count, value, np.int32)

    return {
        "layer": full(layer),
        "channel": channel.astype(np.int32),
        "row": row.astype(np.int32),
        "col": col.astype(np.int32),
        "map_rows": full(rows),
        "map_cols": full(cols),
        "channels": full(maps),
        "is_neuron": full(0),
        "is_summary": summary,
    }


def _read(geometry, *names):
    from blender_cnn.scene.drawn import read_attribute

    return [read_attribute(geometry.mesh, name) for name in names]


def test_the_cell_layout_places_four_maps_in_a_grid_a_layer_spacing_along(blender):
    from blender_cnn.nodes.groups import ensure_cell_layout

    cells = _cells(maps=4, rows=2, cols=3)
    geometry, _holder = _apply(
        blender, ensure_cell_layout, cells, {"Map Layout": 2.0, "Layer Spacing": 40.0, "Map Gap": 2.0, "Cell Size": 1.0}
    )
    position, pitch, scale, tilt = _read(geometry, "position", "cell_pitch", "cell_scale", "cell_tilt")
    channel, row, col = cells["channel"], cells["row"], cells["col"]
    # A 2x2 grid of 3-wide, 2-high maps with gaps of 2: map pitch 5 across, 4 down; cells 1 apart in a map.
    expected = np.stack(
        [
            np.full(len(channel), 40.0),
            -(channel % 2 - 0.5) * 5.0 - (col - 1.0),
            -(channel // 2 - 0.5) * 4.0 - (row - 0.5),
        ],
        axis=1,
    )
    np.testing.assert_allclose(position, expected, atol=1e-5)
    np.testing.assert_allclose(pitch, 1.0)
    np.testing.assert_allclose(scale, 1.0)
    np.testing.assert_allclose(tilt, 0.0, atol=1e-7)


def test_the_cell_layout_lines_maps_up_across_the_wall_and_neurons_get_the_larger_pitch(blender):
    from blender_cnn.nodes.groups import ensure_cell_layout

    cells = _cells(maps=3, rows=1, cols=1, layer=2)
    cells["is_neuron"][:] = 1
    geometry, _holder = _apply(
        blender,
        ensure_cell_layout,
        cells,
        {"Map Layout": 0.0, "Layer Spacing": 10.0, "Map Gap": 0.5, "Cell Size": 2.0, "Neuron Scale": 1.5},
    )
    position, pitch = _read(geometry, "position", "cell_pitch")
    # Pitch 2 * 1.5 = 3; maps of one cell 3 wide, 0.5 apart, centred on the layer.
    np.testing.assert_allclose(pitch, 3.0)
    np.testing.assert_allclose(position[:, 0], 20.0)
    np.testing.assert_allclose(position[:, 1], -(cells["channel"] - 1.0) * 3.5, atol=1e-5)
    np.testing.assert_allclose(position[:, 2], 0.0, atol=1e-5)


@pytest.mark.parametrize("fold_to_max", [False, True])
def test_folding_a_layer_hides_its_maps_and_shows_the_summary_it_asks_for(blender, fold_to_max):
    from blender_cnn.nodes.groups import ensure_cell_layout

    cells = _cells(maps=2, rows=2, cols=2, summary_kinds=(1, 2))
    geometry, _holder = _apply(blender, ensure_cell_layout, cells, {"Fold": 1.0, "Fold to Max": fold_to_max})
    position, scale = _read(geometry, "position", "cell_scale")
    shown_kind = 2 if fold_to_max else 1
    np.testing.assert_allclose(scale, (cells["is_summary"] == shown_kind).astype(np.float32))
    # Folded maps stand at the layer's centre, each cell where it sits in its map.
    np.testing.assert_allclose(position[:, 1], -(cells["col"] - 0.5), atol=1e-5)
    np.testing.assert_allclose(position[:, 2], -(cells["row"] - 0.5), atol=1e-5)


def _table(columns, lanes, is_output, items=None):
    count = len(columns)
    return {
        "item": np.asarray(items if items is not None else range(count), np.int32),
        "column": np.asarray(columns, np.float32),
        "lane": np.asarray(lanes, np.float32),
        "is_output": np.asarray(is_output, np.float32),
    }


def test_the_graph_position_wraps_columns_into_rows_that_turn_back(blender):
    from blender_cnn.nodes.graph import ensure_graph_position

    table = _table(columns=[0, 1, 2, 3, 4], lanes=[0, 0, 1, 0, 0], is_output=[1, 1, 1, 1, 1])
    geometry, _holder = _apply(
        blender,
        ensure_graph_position,
        table,
        {"Start": 0.0, "Expand": 1.0, "Layer Spacing": 10.0, "Lane Spacing": 100.0, "Row Length": 2, "Row Lanes": 1.0},
    )
    origin, visible = _read(geometry, "origin", "visible")
    # Rows of two columns: row 0 runs along +X, row 1 back, row 2 along again; each row a lane spacing lower.
    np.testing.assert_allclose(origin[:, 0], [0.0, 10.0, 10.0, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(origin[:, 1], 0.0)
    np.testing.assert_allclose(origin[:, 2], [0.0, 0.0, -200.0, -100.0, -200.0], atol=1e-5)
    np.testing.assert_allclose(visible, 1.0)


def test_a_half_open_block_brings_its_units_half_way_and_shows_them_half(blender):
    from blender_cnn.nodes.graph import ensure_graph_position

    table = _table(columns=[0, 2, 4], lanes=[0, 1, 0], is_output=[0, 0, 1])
    geometry, _holder = _apply(
        blender,
        ensure_graph_position,
        table,
        {"Start": 3.0, "Expand": 0.5, "Layer Spacing": 10.0, "Lane Spacing": 100.0},
    )
    origin, visible, expand = _read(geometry, "origin", "visible", "expand")
    np.testing.assert_allclose(origin[:, 0], (3.0 + 0.5 * np.array([0.0, 2.0, 4.0])) * 10.0, atol=1e-4)
    np.testing.assert_allclose(origin[:, 2], [0.0, -50.0, 0.0], atol=1e-4)
    # The block's output stays; the units inside it are as visible as the block is open.
    np.testing.assert_allclose(visible, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(expand, 0.5)


@pytest.mark.parametrize(
    ("epoch", "low", "high", "factor"),
    [(3.0, 1, 2, 0.5), (2.0, 1, 2, 0.0), (0.0, 0, 1, 0.0), (-1.0, 0, 1, 0.0), (9.0, 3, 3, 1.0)],
)
def test_the_epoch_position_finds_the_stored_epochs_around_an_epoch_number(blender, epoch, low, high, factor):
    """History points for epochs 0, 2, 4 and 8: the group's three outputs, stored on them to be read."""
    from blender_cnn.nodes.builder import TreeBuilder
    from blender_cnn.nodes.timeline import ensure_epoch_position

    def with_outputs():
        """The group, with its outputs stored on the history points (a test's own wrapper)."""
        tree = blender.data.node_groups.get("epoch position stored") or blender.data.node_groups.new(
            "epoch position stored", "GeometryNodeTree"
        )
        tree.nodes.clear()
        tree.interface.clear()
        b = TreeBuilder(tree)
        history = b.add_input("History", "GEOMETRY")
        number = b.add_input("Epoch", "FLOAT", 0.0)
        b.add_output("History", "GEOMETRY")
        found = b.group(ensure_epoch_position(), {"History": history, "Epoch": number})
        stored = history
        for name, kind in (("Low", "INT"), ("High", "INT"), ("Factor", "FLOAT")):
            stored = b.node(
                "GeometryNodeStoreNamedAttribute",
                {"Geometry": stored, "Name": name.lower(), "Value": found.outputs[name]},
                data_type=kind,
            ).outputs[0]
        b.set_outputs(History=stored)
        return tree

    geometry, _holder = _apply(
        blender, with_outputs, {"epoch": np.array([0.0, 2.0, 4.0, 8.0], np.float32)}, {"Epoch": epoch}
    )
    found_low, found_high, found_factor = _read(geometry, "low", "high", "factor")
    assert (found_low[0], found_high[0]) == (low, high)
    assert found_factor[0] == pytest.approx(factor, abs=1e-5)
