"""What changes over training and between input samples, as named arrays the scene stores.

Pure numpy, no bpy. The scene keeps one attribute per epoch (and per sample
where the input matters) and the node groups pick and blend them from the
network's Epoch and Sample inputs, so an animation renders with no Python:

- on the cells: ``activation_e{E}_s{S}`` and ``winner_cell_e{E}_s{S}``;
- on the connection curves and the kernel points: ``weight_e{E}``;
- on the history points (one per epoch): ``epoch`` (the epoch's number) and
  the training metrics.

``E`` is the position on the bundle's epoch axis; ``S`` a sample *slot*: the
bundle's sample index, or a later slot for an input run through the network
afterwards (an image file).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .cells import cell_activations
from .errors import BlenderCNNError
from .operations import winner_cells

if TYPE_CHECKING:
    from .bundle import Bundle
    from .cells import LayerCells

# Cells x epochs x samples stored at most: beyond it fewer samples are kept (the shown one always).
STORED_VALUES_BUDGET = 16_000_000
HISTORY_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


def activation_name(epoch_index: int, slot: int) -> str:
    return f"activation_e{epoch_index}_s{slot}"


def winner_name(epoch_index: int, slot: int) -> str:
    return f"winner_cell_e{epoch_index}_s{slot}"


def weight_name(epoch_index: int) -> str:
    return f"weight_e{epoch_index}"


def stored_samples(bundle: Bundle, cell_count: int, shown: int = 0, budget: int = STORED_VALUES_BUDGET) -> list[int]:
    """The sample indices whose activations are stored for every epoch: as many as the budget allows, ``shown`` first."""
    if not 0 <= shown < bundle.sample_count:
        raise BlenderCNNError(bundle.path, f"has {bundle.sample_count} samples; sample {shown} does not exist")
    fitting = max(1, budget // max(1, cell_count * len(bundle.epochs)))
    others = [sample for sample in range(bundle.sample_count) if sample != shown]
    return sorted([shown, *others[: fitting - 1]])


def sample_timeline(
    bundle: Bundle,
    layers: Sequence[LayerCells],
    slot: int,
    activations_of_epoch: Callable[[int], Mapping[str, np.ndarray]],
) -> dict[str, np.ndarray]:
    """``{attribute name: array}`` for one sample slot over all epochs.

    ``activations_of_epoch(epoch number)`` returns ``{layer name: output}`` of that sample.
    """
    arrays: dict[str, np.ndarray] = {}
    for index, epoch in enumerate(bundle.epochs):
        activations = activations_of_epoch(epoch)
        arrays[activation_name(index, slot)] = cell_activations(layers, activations)["activation"]
        arrays[winner_name(index, slot)] = winner_cells(bundle, layers, activations)
    return arrays


def cell_timeline(bundle: Bundle, layers: Sequence[LayerCells], samples: Iterable[int]) -> dict[str, np.ndarray]:
    """The per-epoch activations and pooling winners of the bundle's ``samples``, by attribute name."""
    arrays: dict[str, np.ndarray] = {}
    for sample in samples:
        # A def rather than a lambda: mypy cannot infer a lambda's type with a default argument.
        def activations_of_epoch(epoch: int, sample: int = sample) -> dict[str, np.ndarray]:
            return {cells.name: bundle.activations(cells.name, epoch, sample) for cells in layers}

        arrays.update(sample_timeline(bundle, layers, sample, activations_of_epoch))
    return arrays


def history_table(bundle: Bundle) -> dict[str, np.ndarray]:
    """One row per epoch: ``epoch`` (its number) and the metrics the bundle has (NaN where unknown)."""
    table = {"epoch": np.asarray(bundle.epochs, dtype=np.float32)}
    for name in HISTORY_METRICS:
        values = bundle.metric(name)
        if values is not None:
            table[name] = np.asarray(values, dtype=np.float32)
    return table
