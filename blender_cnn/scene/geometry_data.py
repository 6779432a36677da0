"""numpy arrays onto Blender geometry, through ``foreach_set`` with contiguous 32-bit data."""

import bpy
import numpy as np

_ATTRIBUTE_TYPES = {"i": ("INT", np.int32), "f": ("FLOAT", np.float32)}


def write_attributes(data, arrays, domain):
    """Store each ``{name: 1D array}`` as a named INT or FLOAT attribute on ``domain``."""
    for name, values in arrays.items():
        kind, dtype = _ATTRIBUTE_TYPES[np.asarray(values).dtype.kind]
        attribute = data.attributes.get(name) or data.attributes.new(name, kind, domain)
        attribute.data.foreach_set("value", np.ascontiguousarray(values, dtype=dtype))


def points_mesh(name, count, arrays):
    """A mesh of ``count`` loose vertices carrying per-point attributes; positions come from nodes."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(count)
    write_attributes(mesh, arrays, "POINT")
    mesh.update()
    return mesh


def hair_curves(name, count, points_per_curve, arrays):
    """Hair curves of ``points_per_curve`` points each, carrying per-curve attributes."""
    curves = bpy.data.hair_curves.new(name)
    if count:
        curves.add_curves([points_per_curve] * count)
        write_attributes(curves, arrays, "CURVE")
    return curves
