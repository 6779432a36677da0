"""numpy arrays onto Blender geometry, through ``foreach_set`` with contiguous 32-bit data."""

import bpy
import numpy as np

_ATTRIBUTE_TYPES = {"i": ("INT", np.int32), "f": ("FLOAT", np.float32)}


def write_attributes(data, arrays, domain):
    """Store each ``{name: array}`` as a named attribute on ``domain``: INT or FLOAT, or FLOAT_VECTOR for (n, 3)."""
    for name, values in arrays.items():
        values = np.asarray(values)
        kind, dtype = _ATTRIBUTE_TYPES[values.dtype.kind]
        field = "value"
        if values.ndim == 2:
            kind, field = "FLOAT_VECTOR", "vector"
        attribute = data.attributes.get(name) or data.attributes.new(name, kind, domain)
        attribute.data.foreach_set(field, np.ascontiguousarray(values, dtype=dtype).ravel())


def points_mesh(name, count, arrays):
    """A mesh of ``count`` loose vertices carrying per-point attributes; positions come from nodes."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(count)
    write_attributes(mesh, arrays, "POINT")
    mesh.update()
    return mesh


def hair_curves(name, count, points_per_curve, curve_arrays, point_arrays=None):
    """Hair curves of ``points_per_curve`` points each, carrying per-curve and per-point attributes."""
    curves = bpy.data.hair_curves.new(name)
    if count:
        curves.add_curves([points_per_curve] * count)
        write_attributes(curves, curve_arrays, "CURVE")
        write_attributes(curves, point_arrays or {}, "POINT")
    return curves
