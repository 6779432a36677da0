"""One schema of attributes: what Python writes and what the node groups read agree on every name's type."""

from pathlib import Path

import numpy as np
import pytest

from blender_cnn.core import attributes

REPO = Path(__file__).resolve().parent.parent


def test_a_family_name_is_filled_in_and_found_again():
    name = attributes.name_of("activation_e{epoch}_s{slot}", epoch=3, slot=12)
    assert name == "activation_e3_s12"
    assert attributes.spec(name) is attributes.ATTRIBUTES["activation_e{epoch}_s{slot}"]
    assert attributes.spec("importance_e2_all").data_type == "FLOAT"
    assert attributes.spec("importance_e2_c7").name == "importance_e{epoch}_c{klass}"
    assert attributes.spec("importance_top_e0").data_type == "INT"
    assert attributes.ATTRIBUTES["weight_e{epoch}"].parts(epoch="E") == ["weight_e", "E"]


def test_an_undeclared_name_is_refused_with_where_to_declare_it():
    with pytest.raises(KeyError, match="core/attributes.py"):
        attributes.spec("activation_e3")
    with pytest.raises(KeyError):
        attributes.spec("colour")


def test_the_names_python_makes_are_the_schema_s_families():
    from blender_cnn.core import importance_timeline, timeline

    for name in (
        timeline.activation_name(4, 1),
        timeline.winner_name(0, 2),
        timeline.weight_name(7),
        importance_timeline.importance_name(1, 3),
        importance_timeline.importance_name(1),
        importance_timeline.top_class_name(5),
    ):
        family = attributes.spec(name)
        assert "{" in family.name


def test_the_cells_are_written_at_their_declared_types(tmp_path):
    from blender_cnn.core.bundle import load_bundle
    from blender_cnn.core.cells import cell_arrays, layer_columns
    from blender_cnn.core.design import design_bundle, synthetic_inputs
    from blender_cnn.core.presets import load_design

    design = load_design(REPO / "presets" / "lenet5.json")
    bundle = design_bundle(
        design, tmp_path / "lenet5.bcnn.npz", seed=0, inputs=synthetic_inputs(design["input_shape"])[:1]
    )
    layers, arrays = cell_arrays(load_bundle(bundle))
    for name, values in arrays.items():
        declared = attributes.spec(name)
        assert attributes.CELLS in declared.carriers
        assert np.asarray(values).dtype == declared.dtype, name
    for name, values in layer_columns(load_bundle(bundle), layers).items():
        declared = attributes.spec(name)
        assert attributes.LAYER_TABLE in declared.carriers
        assert np.asarray(values).dtype == declared.dtype, name


def test_every_attribute_of_a_scene_is_declared_at_its_type_and_domain(blender, tmp_path):
    from blender_cnn.core.design import design_bundle, synthetic_inputs
    from blender_cnn.core.presets import load_design
    from blender_cnn.scene.network import build_network

    design = load_design(REPO / "presets" / "lenet5.json")
    bundle = design_bundle(
        design, tmp_path / "lenet5.bcnn.npz", seed=0, inputs=synthetic_inputs(design["input_shape"])[:2]
    )
    network = build_network(bundle)
    carriers = {
        "cells": attributes.CELLS,
        "history": attributes.HISTORY,
        "importance": attributes.IMPORTANCE_TABLE,
        "operations": attributes.OPERATIONS,
        "kernels": attributes.KERNELS,
        "layers": attributes.LAYER_TABLE,
        "links": attributes.LINKS,
    }
    checked = set()
    for obj in network.users_collection[0].objects:
        carrier = attributes.CONNECTIONS if obj == network else carriers[obj.name.rsplit(" ", 1)[-1]]
        for attribute in obj.data.attributes:
            if attribute.is_internal or attribute.is_required:
                continue
            declared = attributes.spec(attribute.name)
            assert attribute.data_type == declared.data_type, attribute.name
            assert attribute.domain == declared.domain_on(carrier), (carrier, attribute.name)
            checked.add((declared.name, carrier))
    assert {
        ("layer", "cells"),
        ("act_high", "layer table"),
        ("activation_e{epoch}_s{slot}", "cells"),
        ("weight_e{epoch}", "kernels"),
        ("weight_e{epoch}", "connections"),
        ("epoch", "history"),
        ("op_kind", "operations"),
        ("item", "layer table"),
        ("importance_top_e{epoch}", "importance"),
        ("bundle_route", "connections"),
        ("bundle_source_group", "connections"),
    } <= checked
