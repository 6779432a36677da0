"""The numbers a network writes beside its cells (a sweep's, Inspect's, All Calculations'), read back.

``nodes/annotations.py`` draws them as glyphs on dark plates, both instances
(the network realizes them for final renders); every glyph and plate carries
which text it belongs to (``annotation``, ``annotation_item``), and the glyphs
the cell they stand by and their first numbers as shown. This reads them from
the evaluated network, one entry per text, for tests and tools.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

from ..nodes.annotations import NUMBERS_STORED
from .drawn import DrawnQuads, evaluated_geometry
from .materials import ANNOTATION_MATERIAL, ANNOTATION_PLATE_MATERIAL


@dataclass(frozen=True)
class DrawnText:
    """One text as drawn: its kind (``nodes/annotations.py``'s ``ANNOTATION_*``), which one, where, its numbers."""

    kind: int
    item: int
    cell: int
    numbers: tuple[float, ...]
    centre: np.ndarray  # world centre of its plates (each line's plate is centred on the line, or starts with it)
    glyphs: int  # characters drawn


def drawn_texts(network: bpy.types.Object, kind: int | None = None) -> list[DrawnText]:
    """Every text the network draws (of ``kind``), sorted by kind and item; the lines of one text are one entry."""
    geometry = evaluated_geometry(network)
    glyphs = DrawnQuads(geometry, network.matrix_world, ANNOTATION_MATERIAL)
    plates = DrawnQuads(geometry, network.matrix_world, ANNOTATION_PLATE_MATERIAL)
    # The plates' material's name starts with the glyphs'.
    glyphs.chosen = np.setdiff1d(glyphs.chosen, plates.chosen)
    if not len(glyphs.chosen) or not glyphs.has("annotation"):
        return []
    kinds, items = glyphs.attribute("annotation"), glyphs.attribute("annotation_item")
    cells = glyphs.attribute("annotation_cell")
    numbers = np.stack([glyphs.attribute(f"annotation_n{k}") for k in range(NUMBERS_STORED)], axis=1)
    plate_keys = (
        np.stack([plates.attribute("annotation"), plates.attribute("annotation_item")], axis=1)
        if len(plates)
        else np.zeros((0, 2))
    )
    plate_centres = plates.centres() if len(plates) else np.zeros((0, 3))
    glyph_centres = glyphs.centres()
    texts = []
    keys = np.stack([kinds, items], axis=1)
    for key in np.unique(keys, axis=0):
        text_kind, item = (int(value) for value in key)
        if text_kind <= 0 or (kind is not None and text_kind != kind):
            continue
        chosen = np.flatnonzero((keys == key).all(axis=1))
        own_plates = plate_centres[(plate_keys == key).all(axis=1)]
        centre = own_plates.mean(axis=0) if len(own_plates) else glyph_centres[chosen].mean(axis=0)
        first = chosen[0]
        texts.append(
            DrawnText(text_kind, item, int(cells[first]), tuple(float(v) for v in numbers[first]), centre, len(chosen))
        )
    return texts
