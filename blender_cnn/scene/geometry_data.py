"""numpy arrays onto Blender geometry, through ``foreach_set`` with contiguous 32-bit data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, cast

import bpy
import numpy as np
import numpy.typing as npt

from ..core import attributes

AttributeKind = Literal["INT", "FLOAT", "FLOAT_VECTOR"]
AttributeDomain = Literal["POINT", "EDGE", "FACE", "CORNER", "CURVE", "INSTANCE"]


def write_attributes(
    data: bpy.types.Mesh | bpy.types.Curves | bpy.types.PointCloud,
    arrays: Mapping[str, npt.ArrayLike],
    domain: AttributeDomain,
) -> None:
    """Store each ``{name: array}`` as a named attribute on ``domain``, at the type ``core/attributes.py`` declares
    for ``name`` (INT, FLOAT, or FLOAT_VECTOR for (n, 3) arrays)."""
    for name, values in arrays.items():
        declared = attributes.spec(name)
        kind, dtype = cast(AttributeKind, declared.data_type), declared.dtype
        field = "vector" if kind == "FLOAT_VECTOR" else "value"
        attribute = data.attributes.get(name) or data.attributes.new(name, kind, domain)
        # The ignore: bpy's stubs give ``data`` only to Attribute's subclasses (IntAttribute...), which this is.
        attribute.data.foreach_set(field, np.ascontiguousarray(values, dtype=dtype).ravel())  # type: ignore[attr-defined]


def points_mesh(name: str, count: int, arrays: Mapping[str, npt.ArrayLike]) -> bpy.types.Mesh:
    """A mesh of ``count`` loose vertices carrying per-point attributes; positions come from nodes."""
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(count)
    # Adding vertices selects none of them, in an array of its own that every drawn cell would carry on.
    selection = mesh.attributes.get(".select_vert")
    if selection is not None:
        mesh.attributes.remove(selection)
    write_attributes(mesh, arrays, "POINT")
    mesh.update()
    return mesh


def hair_curves(
    name: str,
    count: int,
    points_per_curve: int,
    curve_arrays: Mapping[str, npt.ArrayLike],
    point_arrays: Mapping[str, npt.ArrayLike] | None = None,
) -> bpy.types.Curves:
    """Hair curves of ``points_per_curve`` points each, carrying per-curve and per-point attributes."""
    curves = bpy.data.hair_curves.new(name)
    if count:
        curves.add_curves([points_per_curve] * count)
        write_attributes(curves, curve_arrays, "CURVE")
        write_attributes(curves, point_arrays or {}, "POINT")
    return curves
