"""Layout arithmetic in numpy terms: how wide a layer's wall of maps is, to space the layers.

The node group ``BCNN Cell Layout`` places the cells; this mirrors its sizes
so that Python can choose a Layer Spacing at which neighbouring walls do not
overlap when seen from the stage's 45-degree camera.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from .cells import display_shape

LINE, CIRCLE, GRID = 0.0, 1.0, 2.0
MINIMUM_SPACING = 40.0


def wall_width(
    output_shape: Sequence[int],
    layout: float = GRID,
    map_gap: float = 2.0,
    cell_size: float = 1.0,
    channels_shown: int = 0,
) -> float:
    """The width across the wall of one layer's maps in a layout; a blend takes the wider of its two ends."""
    if layout not in (LINE, CIRCLE, GRID):
        ends = (LINE, CIRCLE) if layout < CIRCLE else (CIRCLE, GRID)
        return max(wall_width(output_shape, end, map_gap, cell_size, channels_shown) for end in ends)
    rows, cols, channels = display_shape(output_shape)
    if channels_shown:
        channels = min(channels, channels_shown)
    width, height = cols * cell_size, rows * cell_size
    if layout <= LINE:
        return channels * (width + map_gap)
    if layout <= CIRCLE:
        radius = channels * (max(width, height) + map_gap) / (2 * math.pi) if channels > 1 else 0.0
        return 2 * radius + width
    return math.ceil(math.sqrt(channels)) * (width + map_gap)


def suggested_spacing(
    output_shapes: Iterable[Sequence[int]], layout: float = GRID, channels_shown: int = 0, **sizes: float
) -> float:
    """A Layer Spacing at which the widest wall does not hide its neighbour."""
    widest = max(wall_width(shape, layout, channels_shown=channels_shown, **sizes) for shape in output_shapes)
    return max(MINIMUM_SPACING, round(0.9 * widest))


def neuron_positions(units: int, layer_x: float, cell_size: float = 1.0, neuron_scale: float = 2.5) -> np.ndarray:
    """float32 (units, 3) centres of a 1D layer's neurons, as the cell layout places them.

    Up to ``COLUMN_MAX_NEURONS`` units form one column along -Z at the larger
    neuron pitch; wider layers a near-square grid at the cell pitch, unit ``u``
    at row ``u // cols``, column ``u % cols``. Used to bundle dense connections.
    """
    rows, cols, _ = display_shape((units,))
    pitch = cell_size * neuron_scale if cols == 1 else cell_size
    unit = np.arange(units)
    row, col = unit // cols, unit % cols
    positions = np.empty((units, 3), dtype=np.float32)
    positions[:, 0] = layer_x
    positions[:, 1] = -(col - (cols - 1) / 2) * pitch
    positions[:, 2] = -(row - (rows - 1) / 2) * pitch
    return positions
