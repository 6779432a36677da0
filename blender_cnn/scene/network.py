"""Build the scene objects of one network from a bundle.

Python writes data (indices and values per cell and per connection); the
network's node tree computes the layout and colors. A failed build removes
everything it made, so the file is left as it was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import bpy
import numpy as np
import numpy.typing as npt

from ..core import cells as cell_data
from ..core import connections as connection_data
from ..core import importance, importance_timeline, timeline
from ..core import operations as operation_data
from ..core.budget import DEFAULT_BUDGET_GB
from ..core.bundle import Bundle, load_bundle
from ..core.errors import BlenderCNNError
from ..core.forward import forward, model_inputs
from ..core.graph import plan_graph
from ..core.images import to_model_input
from ..core.layout import GRID, suggested_spacing
from ..core.placement import opened, opening_order, row_length
from ..core.scene_plan import output_labels, plan_scene
from ..nodes.network import BLOCKS_PANEL, GraphObjects, build_network_tree, input_identifiers
from .geometry_data import hair_curves, points_mesh, write_attributes
from .images import read_image
from .materials import ensure_materials
from .operations import add_operation_objects

MODIFIER_NAME = "BlenderCNN"
LABEL_SIZE_PER_SPACING = 0.07
# Custom properties on the network object: where it came from and what it shows.
BUNDLE_PROPERTY = "blender_cnn_bundle"
EPOCH_PROPERTY = "blender_cnn_epoch"
SAMPLE_PROPERTY = "blender_cnn_sample"
# Per dense layer: how many of its weights are drawn, for the panel.
CONNECTIONS_PROPERTY = "blender_cnn_connections"
# The bundle's samples whose activations the cells hold for every epoch.
STORED_SAMPLES_PROPERTY = "blender_cnn_stored_samples"
# The last input shown with show_input, flattened, so its cells can be inspected later; left out above this size.
CUSTOM_INPUT_PROPERTY = "blender_cnn_custom_input"
CUSTOM_INPUT_LIMIT = 1_000_000
# JSON {layer name: channels shown} of the layers that have cells (core/scene_plan.py).
SHOWN_PROPERTY = "blender_cnn_shown"
# The scene's estimated memory, and the layers showing fewer maps than they have, for the panel.
ESTIMATE_PROPERTY = "blender_cnn_estimated_gb"
CAPPED_PROPERTY = "blender_cnn_capped_layers"
# True when the network was built with a unit per layer (core/graph.py), so later steps plan it the same way.
DETAILED_PROPERTY = "blender_cnn_every_layer"


# Frozen, so one default serves every call.
DEFAULT_EDGES = connection_data.EdgeSelection()


def build_network(
    bundle: Bundle | str | os.PathLike[str],
    epoch: int = -1,
    sample: int = 0,
    collection: bpy.types.Collection | None = None,
    edges: connection_data.EdgeSelection = DEFAULT_EDGES,
    memory_budget_gb: float = DEFAULT_BUDGET_GB,
    detailed: bool | None = None,
) -> bpy.types.Object:
    """Build a network scene from a ``Bundle`` or a bundle path; returns the network object.

    ``epoch`` is an epoch number of the bundle (negative counts from the last)
    and ``sample`` the index of the input sample whose activations are shown;
    ``edges`` (a ``core.connections.EdgeSelection``) chooses which dense
    weights are drawn, over every epoch by default. Deep and branching networks
    show units (a layer with its plumbing) in blocks that expand; ``detailed``
    True shows every layer instead, None chooses (see ``core/graph.py``). Wide
    layers show fewer maps when the whole scene would need more than
    ``memory_budget_gb``.
    """
    if not isinstance(bundle, Bundle):
        bundle = load_bundle(bundle)
    # Everything that can refuse the input is computed before any datablock exists.
    plan = plan_scene(bundle, memory_budget_gb, detailed)
    layers, cell_arrays = cell_data.cell_arrays(bundle, epoch, sample, plan.shown)
    # The node tree picks the shown activations from every epoch's (and sample's) stored ones.
    del cell_arrays["activation"]
    samples = timeline.stored_samples(bundle, len(cell_arrays["layer"]), sample)
    cell_arrays.update(timeline.cell_timeline(bundle, layers, samples))
    cell_arrays["importance_row"] = importance_timeline.cell_rows(layers)[0]
    importance_table = importance_timeline.importance_table(bundle, layers)
    connections = connection_data.dense_connections(bundle, layers, epoch, edges)
    operations = operation_data.operation_data(
        bundle, layers, epoch, {unit.output: unit.layers for unit in plan.graph.units}
    )
    epoch_number = bundle.epochs[bundle.epoch_index(epoch)]

    new_datablocks = _NewDatablocks()
    try:
        network = _build(
            bundle,
            layers,
            cell_arrays,
            connections,
            collection,
            operations,
            importance_table,
            plan,
            output_labels(bundle, epoch, sample),
        )
        set_network_input(network, "Epoch", float(epoch_number))
        set_network_input(network, "Sample", float(sample))
    except Exception:
        new_datablocks.remove()
        raise
    network[EPOCH_PROPERTY] = epoch_number
    network[SAMPLE_PROPERTY] = sample
    network[STORED_SAMPLES_PROPERTY] = samples
    return network


def _build(bundle, layers, cell_arrays, connections, collection, operations, importance_table, plan, output_heads):
    name = bundle.name
    parent = collection
    if parent is None:
        scene = bpy.context.scene
        assert scene is not None  # the stubs allow a context without a scene
        parent = scene.collection
    network_collection = bpy.data.collections.new(f"CNN {name}")
    parent.children.link(network_collection)

    mesh = points_mesh(f"{name} cells", len(cell_arrays["layer"]), cell_arrays)
    cells = bpy.data.objects.new(f"{name} cells", mesh)
    history_table = timeline.history_table(bundle)
    history = bpy.data.objects.new(f"{name} history", points_mesh(f"{name} history", len(bundle.epochs), history_table))
    row_count = len(next(iter(importance_table.values())))
    importance_rows = bpy.data.objects.new(
        f"{name} importance", points_mesh(f"{name} importance", row_count, importance_table)
    )
    curve_arrays, point_arrays, points_per_edge, drawn_layers = connections
    curves = hair_curves(
        f"{name} connections", len(curve_arrays["weight"]), points_per_edge, curve_arrays, point_arrays
    )
    network = bpy.data.objects.new(name, curves)
    network_collection.objects.link(network)
    # The network object draws what these hold through its node tree; they only keep data.
    table = {**plan.layer_table, **cell_data.layer_columns(bundle, layers)}
    layer_table = bpy.data.objects.new(f"{name} layers", points_mesh(f"{name} layers", len(bundle.layers), table))
    link_count = len(plan.links["source_layer"])
    links = bpy.data.objects.new(
        f"{name} links",
        hair_curves(
            f"{name} links",
            link_count,
            plan.link_points,
            {
                "source_layer": plan.links["source_layer"],
                "target_layer": plan.links["target_layer"],
                "link_color": plan.links["link_color"],
            },
        ),
    )
    # The network object draws what these hold through its node tree; they only keep data.
    for data_object in (cells, history, importance_rows, layer_table, links):
        data_object.hide_render = data_object.hide_viewport = data_object.hide_select = True
        network_collection.objects.link(data_object)

    tree = build_network_tree(
        name,
        layers,
        bundle.class_names,
        cells,
        history,
        ensure_materials(),
        add_operation_objects(name, operations, bundle, layers, network_collection),
        label_notes=_label_notes(bundle, plan, drawn_layers),
        importance_object=importance_rows,
        importance_method=importance.METHOD_LABELS[importance.importance_method(bundle)],
        stored_classes=importance_timeline.stored_class_count(bundle),
        graph=GraphObjects(layer_table, links, plan),
        output_heads=output_heads,
    )
    modifier = network.modifiers.new(MODIFIER_NAME, "NODES")
    assert isinstance(modifier, bpy.types.NodesModifier)  # what a "NODES" modifier is; the stubs say Modifier
    modifier.node_group = tree
    network[SHOWN_PROPERTY] = json.dumps(plan.shown)
    network[DETAILED_PROPERTY] = plan.graph.detailed
    network[ESTIMATE_PROPERTY] = round(plan.channels.estimated_bytes / 1e9, 2)
    network[CAPPED_PROPERTY] = list(plan.channels.capped)
    space_layers(network, bundle)
    set_network_input(network, "Lane Spacing", plan.lane_spacing)
    set_network_input(network, "Row Length", plan.row_length)

    network[BUNDLE_PROPERTY] = bundle.path
    network[CONNECTIONS_PROPERTY] = [
        {"layer": drawn.name, "drawn": drawn.drawn, "total": drawn.total, "selection": drawn.selection}
        for drawn in drawn_layers
    ]
    return network


def _label_notes(bundle, plan, drawn_layers):
    """The lines under the labels: a dense layer's drawn connections, and "synthetic input (KIND)" under the input
    when the bundle's samples were made up for a model that came with none (``samples.synthetic``)."""
    notes = {drawn.name: drawn.label for drawn in drawn_layers}
    kind = bundle.manifest["samples"].get("synthetic")
    # Several inputs each say their own kind (extract/multi_io.py): {input layer: {"kind": ...}}.
    kinds = (bundle.manifest["samples"].get("preprocessing") or {}).get("inputs") if kind else None
    for entry in bundle.inputs if kind else ():
        own = kinds[entry.layer].get("kind", kind) if isinstance(kinds, dict) and entry.layer in kinds else kind
        unit = next((unit.output for unit in plan.graph.units if entry.layer in unit.layers), entry.layer)
        notes[unit] = "\n".join([f"synthetic input ({own})", *([notes[unit]] if unit in notes else [])])
    return notes


def network_bundle(network: bpy.types.Object) -> Bundle:
    """The bundle a network was built from (its path is stored on the object)."""
    network_modifier(network)  # refuses objects that are not networks
    path = network.get(BUNDLE_PROPERTY)
    if not path:
        raise BlenderCNNError(network.name, "does not say which bundle it was built from")
    return load_bundle(path)


def show_input(
    network: bpy.types.Object,
    inputs: npt.ArrayLike | Mapping[str, npt.ArrayLike] | Sequence[npt.ArrayLike],
    epoch: int = -1,
    label: str = "custom input",
    bundle: Bundle | None = None,
) -> dict[str, np.ndarray]:
    """Run one input (the model's input shape) through every epoch's weights and show it at ``epoch``.

    A network of several inputs takes one array per input, ``{input layer name: array}`` or a list in the order
    of ``bundle.inputs`` (as ``core.forward.forward`` does).

    The numpy forward pass computes the activations, so no TensorFlow is
    needed. They go into the sample slot after the bundle's samples (a later
    input replaces an earlier one there), and the Sample input switches to it,
    so the input can be watched over all epochs like the bundle's samples.
    Returns ``{layer name: activations}`` of that one input at ``epoch``.
    """
    bundle = bundle or network_bundle(network)
    layers = cell_data.layer_cells(bundle, shown_channels(network))
    cells = get_network_input(network, "Cells")
    if cells is None or len(cells.data.vertices) != cell_data.cell_count(layers):
        raise BlenderCNNError(network.name, f"no longer matches its bundle {bundle.path}; import it again")
    epoch_number = bundle.epochs[bundle.epoch_index(epoch)]
    computed: dict[int, dict[str, np.ndarray]] = {}

    def activations_of(epoch_shown: int) -> dict[str, np.ndarray]:
        computed[epoch_shown] = {name: values[0] for name, values in forward(bundle, inputs, epoch_shown).items()}
        return computed[epoch_shown]

    slot = bundle.sample_count
    given = model_inputs(bundle, inputs)  # every input of the network, by name; refuses what it does not take
    flat = np.concatenate([values.ravel() for values in given.values()])
    if all(len(values) == 1 for values in given.values()) and len(flat) <= CUSTOM_INPUT_LIMIT:
        network[CUSTOM_INPUT_PROPERTY] = flat
    elif CUSTOM_INPUT_PROPERTY in network:  # type: ignore[operator]  # bpy stubs: ID properties support "in"
        del network[CUSTOM_INPUT_PROPERTY]
    write_attributes(cells.data, timeline.sample_timeline(bundle, layers, slot, activations_of), "POINT")
    cells.data.update()
    set_network_input(network, "Sample", float(slot))
    set_network_input(network, "Epoch", float(epoch_number))
    network[EPOCH_PROPERTY] = epoch_number
    network[SAMPLE_PROPERTY] = label
    return computed[epoch_number]


def show_image(network: bpy.types.Object, path: str, epoch: int = -1, invert: bool = False) -> dict[str, np.ndarray]:
    """Run an image file through ``epoch``'s weights and show its activations (see ``show_input``).

    The image is converted to the network's input as the bundle's recorded
    preprocessing says (value range, mean/std), by the same numpy code the
    extractor uses; ``invert`` turns dark-on-light drawings into light-on-dark.
    A network of several inputs gets the image in its first input shaped as
    an image, and in the others the values of the bundle sample it shows (the
    first sample while it shows a custom input).
    """
    bundle = network_bundle(network)
    preprocessing = bundle.manifest["samples"].get("preprocessing") or {}
    preprocessing = dict(preprocessing.get("network_preprocessing", preprocessing), invert=invert)
    entries = bundle.inputs
    target = next((entry for entry in entries if len(entry.shape) == 3 and entry.shape[2] in (1, 3)), entries[0])
    image, _recorded = to_model_input(read_image(path), target.shape, preprocessing, where=path)
    label = os.path.basename(path)
    if len(entries) == 1:
        return show_input(network, image, epoch, label=label, bundle=bundle)
    shown = network.get(SAMPLE_PROPERTY, 0)
    sample = shown if isinstance(shown, int) and 0 <= shown < bundle.sample_count else 0
    inputs = {entry.layer: image if entry is target else bundle.array(entry.array)[sample] for entry in entries}
    others = ", ".join(entry.layer for entry in entries if entry is not target)
    return show_input(network, inputs, epoch, label=f"{label} ({others} of sample {sample})", bundle=bundle)


def fit_rows(network: bpy.types.Object, bundle: Bundle | None = None) -> int:
    """Set Row Length so the network, its blocks as expanded now, fits a 16:9 frame best; returns it.

    The row length chosen at build suits the collapsed network; an expanded
    block (or several) makes rows longer and taller. A block is as expanded as
    its Expand and the Expansion Level both allow.
    """
    bundle = bundle or network_bundle(network)
    plan = plan_graph(bundle.layers, network.get(DETAILED_PROPERTY))
    shown, shapes = shown_channels(network), {layer.name: layer.output_shape for layer in bundle.layers}
    order = opening_order(plan, lambda name: len(shapes[name]) == 3 and (shown is None or name in shown))
    try:
        level = float(get_network_input(network, "Expansion Level"))
    except KeyError:  # a network built before the Expansion Level existed
        level = 1.0
    expanded = {
        position: min(
            float(get_network_input(network, f"{BLOCKS_PANEL}/{name}")), opened(level, order[position], len(order))
        )
        for position, name in plan.block_items.items()
    }
    length = row_length(
        plan,
        float(get_network_input(network, "Layer Spacing")),
        float(get_network_input(network, "Lane Spacing")),
        expanded=expanded,
    )
    set_network_input(network, "Row Length", length)
    return length


def shown_channels(network: bpy.types.Object) -> dict[str, int] | None:
    """``{layer name: channels shown}`` of the layers the network has cells for (None: all, in full)."""
    stored = network.get(SHOWN_PROPERTY)
    return json.loads(stored) if stored else None


def is_network(obj: bpy.types.Object | None) -> bool:
    """Whether ``obj`` is a network built by blender_cnn (it has the BlenderCNN modifier)."""
    return obj is not None and obj.modifiers.get(MODIFIER_NAME) is not None


def network_modifier(network: bpy.types.Object) -> bpy.types.NodesModifier:
    modifier = network.modifiers.get(MODIFIER_NAME)
    if modifier is None or modifier.node_group is None:
        raise BlenderCNNError(network.name, "is not a blender_cnn network (it has no BlenderCNN modifier)")
    return modifier


def set_network_input(network: bpy.types.Object, name: str, value: object) -> None:
    """Set a modifier input by its name (e.g. "Layer Spacing"), as the UI would."""
    modifier = network_modifier(network)
    identifiers = input_identifiers(modifier.node_group)
    if name not in identifiers:
        raise BlenderCNNError(network.name, f"has no setting {name!r}; it has {sorted(identifiers)}")
    # The ignore: bpy's stubs know neither that a nodes modifier has properties nor their inputs, which its
    # node group's interface defines.
    getattr(modifier.properties.inputs, identifiers[name]).value = value  # type: ignore[union-attr]
    # Setting the value from Python does not tag the object (measured on 5.2.3); without this
    # the evaluated scene keeps the old layout until something else changes.
    network.update_tag()


def space_layers(
    network: bpy.types.Object, bundle: Bundle | None = None, layout: float = GRID, channels_shown: int = 0
) -> float:
    """Set Layer Spacing so the widest wall (in ``layout``) does not hide its neighbour, and size the labels to match.

    Returns the spacing; a user can change both on the modifier afterwards.
    """
    bundle = bundle or network_bundle(network)
    shown = shown_channels(network)
    shapes = [
        (*layer.output_shape[:2], shown[layer.name]) if shown and layer.is_spatial else layer.output_shape
        for layer in bundle.layers
        if shown is None or layer.name in shown
    ]
    spacing = float(suggested_spacing(shapes, layout, channels_shown=channels_shown))
    set_network_input(network, "Layer Spacing", spacing)
    set_network_input(network, "Label Size", max(3.5, round(LABEL_SIZE_PER_SPACING * spacing, 1)))
    return spacing


def set_every_layer_input(network: bpy.types.Object, name: str, value: object) -> int:
    """Set one per-layer input (e.g. "Map Layout") in every layer's panel; returns how many were set."""
    modifier = network_modifier(network)
    names = [key for key in input_identifiers(modifier.node_group) if key.endswith("/" + name)]
    if not names:
        raise BlenderCNNError(network.name, f"has no per-layer setting {name!r}")
    for key in names:
        set_network_input(network, key, value)
    return len(names)


def get_network_input(network: bpy.types.Object, name: str) -> Any:
    modifier = network_modifier(network)
    inputs = modifier.properties.inputs  # type: ignore[union-attr]  # bpy stubs: see set_network_input
    return getattr(inputs, input_identifiers(modifier.node_group)[name]).value


def network_input_path(network: bpy.types.Object, name: str) -> str:
    """The data path to keyframe a modifier input, e.g. with ``network.keyframe_insert``."""
    modifier = network_modifier(network)
    identifier = input_identifiers(modifier.node_group)[name]
    return f'modifiers["{modifier.name}"].properties.inputs.{identifier}.value'


class _NewDatablocks:
    """Remembers which datablocks existed, so that a failed build can remove all it made."""

    KINDS = ("objects", "meshes", "hair_curves", "collections", "node_groups", "materials")

    def __init__(self):
        self.before = {kind: {item.as_pointer() for item in getattr(bpy.data, kind)} for kind in self.KINDS}

    def remove(self):
        for kind in self.KINDS:
            owner = getattr(bpy.data, kind)
            for item in [item for item in owner if item.as_pointer() not in self.before[kind]]:
                owner.remove(item)
