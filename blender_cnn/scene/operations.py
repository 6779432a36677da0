"""The hidden meshes that hold how layers are computed: the layer table and the kernel weights."""

import bpy

from ..core.operations import layer_table
from .geometry_data import points_mesh, write_attributes


def add_operation_objects(name, data, collection):
    """Two hidden point meshes from ``core.operations.OperationData``, linked to ``collection``.

    Returns ``{"Operations": layer table object, "Kernels": kernel weights object, "table": the table}``.
    """
    objects = {"table": data.layer_table}
    for key, count, arrays in (("Operations", len(data.layer_table["op_kind"]), data.layer_table),
                               ("Kernels", len(data.kernel_weights), {"weight": data.kernel_weights})):
        obj = bpy.data.objects.new(f"{name} {key.lower()}", points_mesh(f"{name} {key.lower()}", count, arrays))
        # Data only: the network object draws what they describe.
        obj.hide_render = obj.hide_viewport = obj.hide_select = True
        collection.objects.link(obj)
        objects[key] = obj
    return objects


def write_kernel_weights(kernels_object, bundle, layers, epoch):
    """Rewrite the kernel points with ``epoch``'s weights (the table, and so the count, stays the same)."""
    _table, weights = layer_table(bundle, layers, epoch)
    if kernels_object is None or len(kernels_object.data.vertices) != len(weights):
        return False
    write_attributes(kernels_object.data, {"weight": weights}, "POINT")
    kernels_object.data.update()
    return True
