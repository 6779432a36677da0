"""Per-layer modifier inputs: a panel per layer with feature maps, turned into per-cell fields.

Each layer's Map Layout, Line Direction, Fold, Channels Shown and Map Fold are inputs of
their own, so each can be changed and keyframed on its own; an Index Switch on the
cell's ``layer`` attribute hands every cell the value of its layer.
"""

# A layer's Line Direction below 0 follows the network's, this its default: a keyframable float cannot be "unset".
FOLLOW_NETWORK = -1.0

# (name, kind, default, min, max, description) of the inputs in each layer's panel.
PER_LAYER_INPUTS = (
    ("Map Layout", "FLOAT", 2.0, 0.0, 2.0, "0 = maps in a line, 1 = on a circle, 2 = in a grid; between: a blend"),
    (
        "Line Direction",
        "FLOAT",
        FOLLOW_NETWORK,
        FOLLOW_NETWORK,
        1.0,
        "Where this layer's line of maps runs: 0 = across the wall, 1 = along the network; -1: as the network's",
    ),
    ("Fold", "FLOAT", 0.0, 0.0, 1.0, "0 = every channel's map, 1 = one summary map of the layer"),
    ("Channels Shown", "INT", 0, 0, None, "Show the first N channels (0: all)"),
    ("Map Fold", "FLOAT", 0.0, 0.0, 1.0, "0 = each map flat, 1 = each map folded like a concertina along its rows"),
)


def has_controls(layer):
    """Shown layers with feature maps get a panel; the others have nothing to lay out."""
    return len(layer.output_shape) == 3 and layer.count > 0


def add_layer_inputs(b, layers, groups=None):
    """Add a panel of inputs per layer; returns ``{slot: {input name: socket}}`` for ``layer_fields``.

    ``groups`` (``[(panel name, [layer indices])]``) shares one panel among
    several layers: a graph's blocks, whose units take one look; their slot is
    their place in ``groups``. Without it each shown layer with feature maps has
    its own panel, its slot its layer index.
    """
    if groups is None:
        groups = [(layer.name, [layer.layer_index]) for layer in layers]
        slots = [layer.layer_index for layer in layers]
    else:
        slots = list(range(len(groups)))
    with_maps = {layer.layer_index for layer in layers if has_controls(layer)}
    sockets = {}
    panel = None  # the last panel made: the next is a copy of it, in two changes to the tree instead of 21
    for slot, (name, members) in zip(slots, groups):
        if not with_maps & set(members):
            sockets[slot] = {}
        elif panel is None:
            panel = b.add_panel(name)
            sockets[slot] = {
                input_name: b.add_input(input_name, kind, default, low, high, description, panel=panel)
                for input_name, kind, default, low, high, description in PER_LAYER_INPUTS
            }
        else:
            panel, sockets[slot] = b.copy_panel(panel, name)
    return sockets


def layer_fields(b, sockets, slot_of_cell=None):
    """``{input name: field with each cell's value}`` from ``add_layer_inputs``'s ``sockets``: a cell takes its
    slot's (``slot_of_cell``, by default its ``layer``), or the default where the slot has no panel."""
    slot_of_cell = b.attribute("layer") if slot_of_cell is None else slot_of_cell
    return {
        name: b.index_switch(slot_of_cell, {slot: inputs.get(name, default) for slot, inputs in sockets.items()}, kind)
        for name, kind, default, *_rest in PER_LAYER_INPUTS
    }


def line_direction(b, own, network):
    """Each cell's Line Direction: its layer's own (``own``, a field) where 0 or more, else the network's."""
    return b.switch("FLOAT", b.less_than(own, 0.0), own, network)
