"""Epoch and sample as Geometry Nodes inputs: pick and blend the stored per-epoch values.

``core/attributes.py`` declares the attributes (``activation_e{epoch}_s{slot}``, ...). The
Epoch input is an epoch *number*, keyframable, fractional between epochs;
the history points (one per epoch, attribute ``epoch``) turn it into the two
neighbouring positions on the epoch axis and a blend factor. Attribute names
are joined from strings in the tree, so the blend runs without Python:
``blender -b scene.blend -a`` renders the training on any machine.
"""

from ..core.timeline import HISTORY_METRICS
from .builder import ensure_group
from .groups import text_mesh

EPOCH_POSITION = "BCNN Epoch Position"
TRAINED_CELLS = "BCNN Trained Cells"
TRAINED_WEIGHTS = "BCNN Trained Weights"
TRAINING_OVERLAY = "BCNN Training Overlay"
IMPORTANCE = "BCNN Importance"
# Point attribute (1) on the overlay's text, which moves with the camera rather than with the network.
SCREEN_OVERLAY = "screen_overlay"

# The overlay sits this far in front of the camera, scaled for the stage camera's lens and 36 mm sensor.
OVERLAY_DISTANCE = 10.0
STAGE_LENS = 85.0
SENSOR_WIDTH = 36.0


def ensure_epoch_position():
    return ensure_group(EPOCH_POSITION, _build_epoch_position)


def ensure_trained_cells():
    return ensure_group(TRAINED_CELLS, _build_trained_cells)


def ensure_trained_weights(domain):
    """The weight blend for curves (``CURVE``) or kernel points (``POINT``)."""
    return ensure_group(f"{TRAINED_WEIGHTS} ({domain.title()})", lambda b: _build_trained_weights(b, domain))


def ensure_importance(from_table):
    """``importance`` and ``importance_class`` of the epoch and class shown: looked up in the importance table
    by ``importance_row`` (cells, ``from_table``) or read from the geometry's own attributes (connection curves)."""
    kind = "Table" if from_table else "Own"
    return ensure_group(f"{IMPORTANCE} ({kind})", lambda b: _build_importance(b, from_table))


def ensure_training_overlay():
    return ensure_group(TRAINING_OVERLAY, _build_training_overlay)


def _build_epoch_position(b):
    """Epoch number -> the positions of the epochs before and after it, and how far between them it is."""
    b.tree.description = "Turns an epoch number into two neighbouring epochs and a blend factor"
    history = b.add_input("History", "GEOMETRY")
    epoch = b.add_input("Epoch", "FLOAT", 0.0)
    for name in ("Low", "High"):
        b.add_output(name, "INT")
    b.add_output("Factor", "FLOAT")

    with b.frame("The stored epochs before and after the Epoch number"):
        number = b.attribute("epoch")
        reached = b.statistic(history, b.less_than(number, b.add(epoch, 1e-4)))["Sum"]
        last = b.int_subtract(b.point_count(history), 1)
        low = b.int_maximum(b.int_subtract(reached, 1), 0)
        high = b.int_minimum(b.int_add(low, 1), last)
    with b.frame("How far between them"):
        low_number, high_number = b.sample_index(history, number, low), b.sample_index(history, number, high)
        span = b.maximum(b.subtract(high_number, low_number), 1e-6)
        factor = b.clamp(b.divide(b.subtract(epoch, low_number), span), 0.0, 1.0)
    b.set_outputs(Low=low, High=high, Factor=factor)


def _sample_slots(b, sample):
    """(low slot, high slot, factor) of a fractional Sample input: cross-fading between two samples."""
    low = b.floor(b.maximum(sample, 0.0))
    return low, b.ceil(b.maximum(sample, 0.0)), b.subtract(b.maximum(sample, 0.0), low)


def _nearest_epoch(b, low, high, factor):
    return b.switch("INT", b.greater_than(factor, 0.5), low, high)


def _build_trained_cells(b):
    """``activation`` blended between epochs and samples, and the pooling winners of the nearest ones."""
    b.tree.description = "Picks the cells' activations of the epoch and sample shown"
    cells = b.add_input("Cells", "GEOMETRY")
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    sample = b.add_input("Sample", "FLOAT", 0.0)
    b.add_output("Cells", "GEOMETRY")

    with b.frame("Activation: two epochs of two samples, blended"):
        first_slot, second_slot, sample_factor = _sample_slots(b, sample)

        def activation(epoch, slot):
            return b.attribute("activation_e{epoch}_s{slot}", epoch=epoch, slot=slot)

        value = b.mix(
            sample_factor,
            b.mix(factor, activation(low, first_slot), activation(high, first_slot)),
            b.mix(factor, activation(low, second_slot), activation(high, second_slot)),
        )
    with b.frame("Pooling winners of the nearest epoch and sample"):
        nearest_slot = b.round(b.maximum(sample, 0.0))
        winner = b.attribute(
            "winner_cell_e{epoch}_s{slot}", epoch=_nearest_epoch(b, low, high, factor), slot=nearest_slot
        )
    b.set_outputs(Cells=b.store(b.store(cells, "activation", value), "winner_cell", winner))


def _build_trained_weights(b, domain):
    """``weight`` blended between the weights of two epochs."""
    b.tree.description = "Picks the weights of the epoch shown"
    geometry = b.add_input("Geometry", "GEOMETRY")
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    b.add_output("Geometry", "GEOMETRY")
    value = b.mix(factor, b.attribute("weight_e{epoch}", epoch=low), b.attribute("weight_e{epoch}", epoch=high))
    b.set_outputs(Geometry=b.store(geometry, "weight", value, domain=domain))


def _build_training_overlay(b):
    """Epoch, loss and accuracy as text in the top left of the active camera's view, blended between epochs."""
    b.tree.description = "Epoch, loss and accuracy in front of the camera"
    history = b.add_input("History", "GEOMETRY")
    epoch = b.add_input("Epoch", "FLOAT", 0.0)
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    size = b.add_input("Size", "FLOAT", 0.02, 0.0, description="Text height as a share of the frame's width")
    material = b.add_input("Material", "MATERIAL")
    b.add_output("Mesh", "GEOMETRY")

    with b.frame("One line: the epoch and each metric the history has, blended between epochs"):
        parts = ["epoch ", b.to_string(epoch, 1)]
        for name, label in zip(HISTORY_METRICS, ("loss", "accuracy", "val. loss", "val. accuracy")):
            value = b.mix(
                factor,
                b.sample_index(history, b.attribute(name), low),
                b.sample_index(history, b.attribute(name), high),
            )
            shown = b.to_string(b.multiply(value, 100.0), 1) if "accuracy" in name else b.to_string(value, 3)
            text = b.join_strings(f"   {label} ", shown, "%" if "accuracy" in name else "")
            # A metric the bundle lacks (or NaN for an epoch) is left out, not shown as 0 or nan.
            known = b.compare(value, "==", value, "FLOAT")
            has_column = b.statistic(history, b.attribute_exists(name))["Max"]
            show = b.all_of(known, b.greater_than(has_column, 0.5))
            parts.append(b.switch("STRING", show, "", text))
        line = b.join_strings(*parts)

    with b.frame("In the camera's view: top left, in front of it"):
        camera = b.node("GeometryNodeInputActiveCamera").outputs[0]
        placement = b.node("GeometryNodeObjectInfo", {"Object": camera}, transform_space="RELATIVE")
        frame_width = OVERLAY_DISTANCE * SENSOR_WIDTH / STAGE_LENS
        height = b.multiply(size, frame_width)
        # Camera space: X right, Y up, looking down -Z; the top-left corner of a 16:9 frame, inset a little.
        corner = (-0.46 * frame_width, 0.24 * frame_width, -OVERLAY_DISTANCE)
        text = text_mesh(b, line, height, "Left", "Top", (0.0, 0.0, 0.0), material, facing=(0.0, 0.0, 0.0))
        placed = b.transform(
            b.transform(text, translation=corner),
            translation=placement.outputs["Location"],
            rotation=placement.outputs["Rotation"],
        )
        # Marked so that framing the network leaves out text that sits at the camera.
        marked = b.store(placed, SCREEN_OVERLAY, 1)
    b.set_outputs(Mesh=marked)


def _build_importance(b, from_table):
    """Importance blended between epochs, for one class or (Class -1) all classes with the class each matters most for.

    Names as ``core/importance_timeline.py`` writes them: ``importance_e{E}_c{k}``,
    ``importance_e{E}_all`` and ``importance_top_e{E}``.
    """
    b.tree.description = "Picks the importance of the epoch and class shown"
    geometry = b.add_input("Geometry", "GEOMETRY")
    table = b.add_input("Table", "GEOMETRY") if from_table else None
    low, high = b.add_input("Epoch Low", "INT", 0), b.add_input("Epoch High", "INT", 0)
    factor = b.add_input("Epoch Factor", "FLOAT", 0.0)
    chosen = b.add_input("Class", "INT", -1, -1, description="Class shown; -1: all classes, each in its own color")
    b.add_output("Geometry", "GEOMETRY")
    domain = "POINT" if from_table else "CURVE"

    def read(name, named=None, **parts):
        value = b.attribute(name, named, **parts)
        return value if not from_table else b.sample_index(table, value, b.attribute("importance_row"))

    every_class = b.compare(chosen, "<", 0)

    def at(epoch):
        name = b.switch(
            "STRING",
            every_class,
            b.attribute_name("importance_e{epoch}_c{klass}", epoch=epoch, klass=chosen),
            b.attribute_name("importance_e{epoch}_all", epoch=epoch),
        )
        return read("importance_e{epoch}_all", named=name)

    with b.frame("Importance for the class shown (or all), blended between two epochs"):
        importance = b.mix(factor, at(low), at(high))
    with b.frame("The class: the one shown, or the one each part matters most for"):
        top = read("importance_top_e{epoch}", epoch=_nearest_epoch(b, low, high, factor))
        shown_class = b.switch("INT", every_class, chosen, top)
    stored = b.store(geometry, "importance", importance, domain=domain)
    b.set_outputs(Geometry=b.store(stored, "importance_class", shown_class, domain=domain))
