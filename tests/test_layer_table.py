"""A layer's maps' shape and activation range live once, in the layer table, not on each of its cells."""

import numpy as np
from scene_readers import drawn_cells, read_attribute

PER_LAYER = ("map_rows", "map_cols", "channels", "is_neuron", "act_low", "act_high")


def _data_object(network, suffix):
    return next(obj for obj in network.users_collection[0].objects if obj.name == f"{network.name} {suffix}")


def test_each_layer_s_shape_and_range_are_one_row_of_the_layer_table(blender, digits_design_bundle):
    from blender_cnn.core.cells import activation_range, layer_cells
    from blender_cnn.scene.network import build_network

    network = build_network(digits_design_bundle)
    cells = _data_object(network, "cells").data
    table = _data_object(network, "layers").data
    assert not set(PER_LAYER) & set(cells.attributes.keys())
    assert len(table.vertices) == len(digits_design_bundle.layers)
    rows = {name: read_attribute(table, name) for name in PER_LAYER}
    for layer in layer_cells(digits_design_bundle):
        row = layer.layer_index
        assert (rows["map_rows"][row], rows["map_cols"][row]) == (layer.map_rows, layer.map_cols)
        assert rows["channels"][row] == (layer.channels if len(layer.output_shape) == 3 else 1)
        # Its dense layers are columns of neurons; its flatten (256) a grid, its cells of feature-map size.
        assert rows["is_neuron"][row] == (len(layer.output_shape) == 1 and layer.map_cols == 1)
        low, high = activation_range(digits_design_bundle.array(digits_design_bundle.layer(layer.name).activations))
        np.testing.assert_allclose((rows["act_low"][row], rows["act_high"][row]), (low, high), rtol=1e-6)


def test_a_network_built_with_them_on_every_cell_draws_as_before(blender, digits_design_bundle):
    """As a .blend saved by an earlier add-on holds it: the values on the cells and none in the table."""
    from blender_cnn.scene.network import build_network, set_network_input

    network = build_network(digits_design_bundle)
    # Normalized across the network, so the legend's numbers are drawn from the range too.
    set_network_input(network, "Normalize Across Network", True)
    # Every input a map's place, size and tilt depend on off its default, on one layer or all: worked out once per
    # map (Cell Layout's maps) or on every cell (the old way), they place every cell alike.
    for name, value in (
        ("conv1/Map Layout", 1.0),
        ("conv1/Fold", 0.6),
        ("pool1/Line Direction", 1.0),
        ("pool1/Map Layout", 0.5),
        ("conv2/Channels Shown", 3),
        ("conv2/Map Fold", 0.5),
        ("pool2/Fold", 1.0),
        ("Fold to Max", True),
        ("Filter Spread", 0.7),
        ("Reduced Depth", 5),
    ):
        set_network_input(network, name, value)
    centres, drawn = drawn_cells(network)
    transforms = _cell_transforms(network)
    texts = _mesh_positions(network)

    cells = _data_object(network, "cells").data
    table = _data_object(network, "layers").data
    layer = read_attribute(cells, "layer")
    for name in PER_LAYER:
        values = read_attribute(table, name)[layer]
        kind = table.attributes[name].data_type
        cells.attributes.new(name, kind, "POINT").data.foreach_set("value", values)
        table.attributes.remove(table.attributes[name])
    cells.update()
    table.update()

    old_centres, old_drawn = drawn_cells(network)
    np.testing.assert_array_equal(old_centres, centres)
    for name in ("cell_color", "activation", "layer"):
        np.testing.assert_array_equal(old_drawn[name], drawn[name])
    # The quads' size and tilt too.
    np.testing.assert_array_equal(_cell_transforms(network), transforms)
    # The legend's numbers (the network's range) and every label are written the same.
    np.testing.assert_array_equal(_mesh_positions(network), texts)


def _cell_transforms(network):
    from blender_cnn.scene.drawn import drawn_quads
    from blender_cnn.scene.materials import CELL_MATERIAL

    quads, _geometry = drawn_quads(network, CELL_MATERIAL)  # kept alive while its quads are read
    return quads.transforms()


def _mesh_positions(network):
    from blender_cnn.scene.drawn import evaluated_geometry

    geometry = evaluated_geometry(network)  # kept alive while its mesh is read
    return read_attribute(geometry.mesh, "position")
