"""Colormaps as stops in linear RGB, shared by the node groups and by numpy.

Geometry Nodes' Color Ramp interpolates its stops linearly in the values it
stores (scene-linear RGB), so ``sample`` does the same: the colors a test
computes here are the colors the scene shows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# (position in 0..1, (r, g, b) linear)
Stop = tuple[float, tuple[float, ...]]

# Perceptual maps as sRGB stops (matplotlib's viridis, magma and plasma; Moreland's cool-warm).
_SRGB_STOPS = {
    # Sequential, for activations. viridis and plasma keep their low end visible on a dark background;
    # magma starts at black, so zero activations fade away.
    "viridis": ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"],
    "plasma": ["#0d0887", "#4c02a1", "#7e03a8", "#a92395", "#cc4778", "#e56b5d", "#f89540", "#fdc527", "#f0f921"],
    "magma": ["#000004", "#1c1044", "#4f127b", "#812581", "#b5367a", "#e55064", "#fb8861", "#fec287", "#fcfdbf"],
    # Diverging, centred on zero, for weights. The dark middle lets weights near zero fade into the
    # background; cool-warm's light middle suits a light background.
    "dark_diverging": ["#2c7bd8", "#1d4a7a", "#262626", "#8a2d1c", "#ef5a33"],
    "coolwarm": ["#3b4cc0", "#7b9ff9", "#dddddd", "#f49a7b", "#b40426"],
}
ACTIVATION_COLORMAPS = ("viridis", "plasma", "magma")
WEIGHT_COLORMAPS = ("dark_diverging", "coolwarm")

COLORMAPS: dict[str, list[Stop]] = {}


def _srgb_to_linear(channel: np.ndarray) -> np.ndarray:
    return np.where(channel <= 0.04045, channel / 12.92, ((channel + 0.055) / 1.055) ** 2.4)


def _stops_from_hex(hex_colors: Sequence[str]) -> list[Stop]:
    positions = np.linspace(0.0, 1.0, len(hex_colors))
    srgb = np.array([[int(h[i : i + 2], 16) / 255.0 for i in (1, 3, 5)] for h in hex_colors])
    linear = _srgb_to_linear(srgb)
    return [(float(p), tuple(float(v) for v in rgb)) for p, rgb in zip(positions, linear)]


COLORMAPS.update({name: _stops_from_hex(hex_colors) for name, hex_colors in _SRGB_STOPS.items()})

ACTIVATION_COLORMAP = ACTIVATION_COLORMAPS[0]
WEIGHT_COLORMAP = WEIGHT_COLORMAPS[0]


def stops(name: str) -> list[Stop]:
    """``[(position, (r, g, b)), ...]`` of a colormap, linear RGB."""
    return COLORMAPS[name]


def sample(name: str, values: npt.ArrayLike) -> np.ndarray:
    """Linear RGB (..., 3) float32 for ``values`` in [0, 1] (clamped), as the Color Ramp computes."""
    positions = np.array([p for p, _ in COLORMAPS[name]], dtype=np.float64)
    colors = np.array([c for _, c in COLORMAPS[name]], dtype=np.float64)
    values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    channels = [np.interp(values, positions, colors[:, i]) for i in range(3)]
    return np.stack(channels, axis=-1).astype(np.float32)
