"""The hidden meshes that hold how layers are computed: the layer table and the kernel weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import bpy
import numpy as np

from ..core.inspection_annotations import after_sum
from ..core.operations import layer_table
from ..core.timeline import weight_name
from ..nodes.operations import LAYER_WORDS
from .geometry_data import points_mesh
from .materials import ensure_annotation_materials

if TYPE_CHECKING:
    from ..core.bundle import Bundle
    from ..core.cells import LayerCells
    from ..core.operations import OperationData


def add_operation_objects(
    name: str, data: OperationData, bundle: Bundle, layers: Sequence[LayerCells], collection: bpy.types.Collection
) -> dict[str, Any]:
    """Two hidden point meshes from ``core.operations.OperationData``, linked to ``collection``.

    The kernel points hold every epoch's weights (``weight_e{E}``). Returns
    ``{"Operations": layer table object, "Kernels": kernel weights object, "table": the table}``, the numbers'
    materials and what a sweep writes for each layer (``nodes/operations.py``'s ``LAYER_WORDS``).
    """
    units = data.units or {}
    objects: dict[str, Any] = {
        "table": data.layer_table,
        "number materials": ensure_annotation_materials(),
        LAYER_WORDS: {
            cells.layer_index: (cells.name, after_sum(bundle, cells.name, units.get(cells.name)))
            for cells in layers
            if cells.count
        },
    }
    for key, count, arrays in (
        ("Operations", len(data.layer_table["op_kind"]), data.layer_table),
        ("Kernels", len(data.kernel_weights), kernel_timeline(bundle, layers, data.units)),
    ):
        obj = bpy.data.objects.new(f"{name} {key.lower()}", points_mesh(f"{name} {key.lower()}", count, arrays))
        # Data only: the network object draws what they describe.
        obj.hide_render = obj.hide_viewport = obj.hide_select = True
        collection.objects.link(obj)
        objects[key] = obj
    return objects


def kernel_timeline(
    bundle: Bundle, layers: Sequence[LayerCells], units: Mapping[str, Sequence[str]] | None = None
) -> dict[str, np.ndarray]:
    """``{weight_e{E}: the kernel points' weights at epoch E}`` for every epoch of the bundle."""
    return {
        weight_name(index): layer_table(bundle, layers, epoch, units)[1] for index, epoch in enumerate(bundle.epochs)
    }
