"""Focus the receptive-field view on a cell picked in the viewport (through the 3D cursor)."""

from __future__ import annotations

import bpy
import numpy as np
import numpy.typing as npt

from .drawn import drawn_quads
from .materials import CELL_MATERIAL
from .network import set_network_input

FOCUS_INPUTS = ("Focus Layer", "Focus Channel", "Focus Row", "Focus Column")


def cell_centres(network: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """World-space centres and ``(layer, channel, row, col)`` of the cells as drawn (evaluated).

    Cells are the quads with the cell material that belong to a layer and are
    not a folded layer's summary.
    """
    cells, _geometry = drawn_quads(network, CELL_MATERIAL)
    if not len(cells):
        return np.zeros((0, 3), dtype=np.float32), np.zeros((0, 4), dtype=np.int32)
    indices = np.stack([cells.attribute(name) for name in ("layer", "channel", "row", "col")], axis=1)
    is_cell = indices[:, 0] >= 0
    if cells.has("is_summary"):
        is_cell &= cells.attribute("is_summary") == 0
    return cells.centres()[is_cell], indices[is_cell]


def focus_nearest_cell(network: bpy.types.Object, location: npt.ArrayLike) -> tuple[int, ...] | None:
    """Set the focus inputs to the drawn cell nearest ``location`` (world space); returns its indices.

    Returns ``(layer, channel, row, col)``, or None when the network draws no cells.
    """
    centres, indices = cell_centres(network)
    if not len(centres):
        return None
    nearest = indices[int(np.argmin(np.sum((centres - np.asarray(location, dtype=np.float32)) ** 2, axis=1)))]
    for name, value in zip(FOCUS_INPUTS, nearest):
        set_network_input(network, name, int(value))
    return tuple(int(value) for value in nearest)
