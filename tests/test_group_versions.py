"""A group's version is a hash of the code that builds it: a file saved by older code gets its groups rebuilt."""

import pytest


@pytest.fixture
def fresh_versions():
    """Forget the versions computed so far: a test that changes code must see it hashed again."""
    from blender_cnn.nodes import builder

    builder._versions.clear()
    yield
    builder._versions.clear()


def test_a_group_built_by_other_code_is_rebuilt_in_place(blender):
    from blender_cnn.nodes import groups
    from blender_cnn.nodes.builder import VERSION_PROPERTY, code_version

    tree = groups.ensure_cell_layout()
    count = len(tree.nodes)
    # As a .blend saved by an older add-on holds it: another version, other nodes.
    tree[VERSION_PROPERTY] = 7
    tree.nodes.new("GeometryNodeInputIndex")
    rebuilt = groups.ensure_cell_layout()
    assert rebuilt == tree and len(rebuilt.nodes) == count
    assert rebuilt[VERSION_PROPERTY] == code_version(groups._build_cell_layout)
    assert len(blender.data.node_groups) == 1


def test_a_group_built_by_this_code_is_kept(blender):
    from blender_cnn.nodes import groups

    tree = groups.ensure_legend()
    marker = tree.nodes.new("GeometryNodeInputIndex")
    assert groups.ensure_legend() == tree and marker.name in tree.nodes


def test_the_version_changes_with_any_code_or_constant_the_group_is_built_from(monkeypatch, fresh_versions):
    from blender_cnn.nodes import builder, groups

    layout, maps = builder.code_version(groups._build_cell_layout), builder.code_version(groups._build_feature_maps)
    assert len(layout) == 16 and layout != maps
    assert builder.code_version(groups._build_cell_layout) == layout

    # A constant the cell layout reads, and a helper the feature maps call.
    monkeypatch.setattr(groups, "MAP_FOLD_ANGLE", 1.0)
    monkeypatch.setattr(groups, "facing_quads", lambda b, *args, **kwargs: None)
    builder._versions.clear()
    assert builder.code_version(groups._build_cell_layout) != layout
    assert builder.code_version(groups._build_feature_maps) != maps


def test_the_version_stays_when_code_the_group_does_not_use_changes(monkeypatch, fresh_versions):
    from blender_cnn.nodes import builder, groups

    layout = builder.code_version(groups._build_cell_layout)
    monkeypatch.setattr(groups, "LEGEND_STEPS", 99)
    monkeypatch.setattr(groups, "text_mesh", lambda *args: None)
    builder._versions.clear()
    assert builder.code_version(groups._build_cell_layout) == layout


def test_a_group_made_for_one_kind_has_a_version_of_its_own(blender):
    """The same build function called with another argument: the weight blend of curves or of kernel points."""
    from blender_cnn.nodes import timeline
    from blender_cnn.nodes.builder import VERSION_PROPERTY

    versions = {timeline.ensure_trained_weights(domain)[VERSION_PROPERTY] for domain in ("CURVE", "POINT")}
    assert len(versions) == 2


def test_the_version_does_not_depend_on_what_the_process_built_before(blender, fresh_versions):
    """A group saved (or prebuilt) by one process is kept by the next: its version once hashed the builder's
    cache of versions too, which differed with the groups the process had built before."""
    from blender_cnn.nodes import builder, groups
    from blender_cnn.nodes.network import ensure_shared_groups

    # The connections group builds a group of its own inside: its hash reads the builder's functions.
    first = builder.code_version(groups._build_connections)
    builder._versions.clear()
    ensure_shared_groups()
    for key in [key for key in builder._versions if key[0] is groups._build_connections.__code__]:
        del builder._versions[key]
    assert builder.code_version(groups._build_connections) == first
