"""The hidden meshes that hold how layers are computed: the layer table and the kernel weights."""

import bpy

from ..core.operations import layer_table
from ..core.timeline import weight_name
from .geometry_data import points_mesh


def add_operation_objects(name, data, bundle, layers, collection):
    """Two hidden point meshes from ``core.operations.OperationData``, linked to ``collection``.

    The kernel points hold every epoch's weights (``weight_e{E}``). Returns
    ``{"Operations": layer table object, "Kernels": kernel weights object, "table": the table}``.
    """
    objects = {"table": data.layer_table}
    for key, count, arrays in (("Operations", len(data.layer_table["op_kind"]), data.layer_table),
                               ("Kernels", len(data.kernel_weights), kernel_timeline(bundle, layers, data.units))):
        obj = bpy.data.objects.new(f"{name} {key.lower()}", points_mesh(f"{name} {key.lower()}", count, arrays))
        # Data only: the network object draws what they describe.
        obj.hide_render = obj.hide_viewport = obj.hide_select = True
        collection.objects.link(obj)
        objects[key] = obj
    return objects


def kernel_timeline(bundle, layers, units=None):
    """``{weight_e{E}: the kernel points' weights at epoch E}`` for every epoch of the bundle."""
    return {weight_name(index): layer_table(bundle, layers, epoch, units)[1]
            for index, epoch in enumerate(bundle.epochs)}
