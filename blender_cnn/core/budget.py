"""How much memory a network's scene will take, and which channels to leave out to stay within a budget.

Pure numpy. The scene's memory grows with its cells: each carries its
indices, colors and placement while Geometry Nodes evaluate it, plus one
activation and one pooling winner per stored epoch and sample. VGG16 at
224x224 (15.2 million cells, one epoch and sample) peaked at 5.8 GB in
``scripts/bench_scene.py``: about 380 bytes per cell, which ``BYTES_PER_CELL``
rounds up.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .bundle import LayerInfo

BYTES_PER_CELL = 400
BYTES_PER_STORED_VALUE = 8  # an activation and a winner per cell, epoch and sample
DEFAULT_BUDGET_GB = 6.0


@dataclass(frozen=True)
class ChannelPlan:
    """``{layer name: channels shown}`` for the layers that get cells, and what the choice costs."""

    shown: dict[str, int]
    cells: int
    estimated_bytes: int
    capped: tuple[str, ...]  # names of the layers showing fewer channels than they have
    cap: int  # the most channels any layer shows (0: none capped)


def layer_cell_counts(output_shape: Sequence[int], channels: int) -> int:
    """Cells of one layer showing ``channels`` maps: its maps plus the two summary maps of a feature-map layer."""
    if len(output_shape) == 3:
        rows, cols = int(output_shape[0]), int(output_shape[1])
        return rows * cols * (channels + 2)
    return int(math.prod(output_shape))


def estimated_bytes(cells: int, epochs: int = 1, samples: int = 1) -> int:
    return cells * (BYTES_PER_CELL + BYTES_PER_STORED_VALUE * epochs * samples)


def plan_channels(
    layers: Sequence[LayerInfo], shown_names: Collection[str], budget_bytes: float, epochs: int = 1, samples: int = 1
) -> ChannelPlan:
    """The channels each shown layer keeps so the scene stays within ``budget_bytes``.

    ``layers`` are the bundle's (name, output_shape); ``shown_names`` those
    that get cells. Every layer keeps all its channels when that fits;
    otherwise wide layers keep their first ``cap`` channels, the largest cap
    that fits (at least one channel each), so narrow layers stay whole.
    """
    shown_layers = [layer for layer in layers if layer.name in shown_names]

    def total(cap: int) -> int:
        return sum(layer_cell_counts(layer.output_shape, _capped(layer, cap)) for layer in shown_layers)

    widest = max([1, *(int(layer.output_shape[2]) for layer in shown_layers if len(layer.output_shape) == 3)])
    per_cell = BYTES_PER_CELL + BYTES_PER_STORED_VALUE * epochs * samples
    cap = widest
    if total(widest) * per_cell > budget_bytes:
        low, high = 1, widest  # the largest cap in [1, widest) whose total fits
        while low < high:
            middle = (low + high + 1) // 2
            if total(middle) * per_cell <= budget_bytes:
                low = middle
            else:
                high = middle - 1
        cap = low
    shown = {layer.name: _capped(layer, cap) for layer in shown_layers}
    capped = tuple(
        layer.name
        for layer in shown_layers
        if len(layer.output_shape) == 3 and shown[layer.name] < int(layer.output_shape[2])
    )
    cells = total(cap)
    return ChannelPlan(shown, cells, cells * per_cell, capped, cap if capped else 0)


def _capped(layer: LayerInfo, cap: int) -> int:
    if len(layer.output_shape) == 3:
        return min(int(layer.output_shape[2]), cap)
    return 1
