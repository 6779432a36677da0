"""Where the add-on's own presets are, and where the user's files go (never the add-on's own folder).

An update of the add-on replaces its folder, and it may not be writable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import bpy

# "blender_cnn" when imported as a package, "bl_ext.<repo>.blender_cnn" when installed as an extension.
ADDON_PACKAGE = __package__.rpartition(".")[0]

# (identifier, label, description or path): an EnumProperty item, or a preset entry.
Entry = tuple[str, str, str]


def user_folder(kind: str) -> str:
    """``kind``'s folder in the extension's user folder, or under Blender's user scripts when not an extension."""
    if ADDON_PACKAGE.startswith("bl_ext."):
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path=kind, create=True)
    return bpy.utils.user_resource("SCRIPTS", path=f"blender_cnn_{kind}", create=True)


def safe_file_name(name: str, fallback: str = "design") -> str:
    """``name`` with everything but letters, digits, ``_``, ``.`` and ``-`` replaced, for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or fallback


def builtin_presets_folder() -> Path | None:
    """The presets shipped with the add-on: ``presets/`` in the extension, or in the repository."""
    here = Path(__file__).resolve().parent.parent
    for folder in (here / "presets", here.parent / "presets"):
        if folder.is_dir():
            return folder
    return None


def preset_entries(
    builtin_folder: str | os.PathLike[str] | None, user_folder_path: str | os.PathLike[str] | None
) -> list[Entry]:
    """``[(identifier, label, path)]`` of the JSON files of both folders: built-in ones, then the user's."""
    found = []
    for prefix, folder, suffix in (("builtin", builtin_folder, ""), ("user", user_folder_path, " (user)")):
        if folder and os.path.isdir(folder):
            for path in sorted(Path(folder).glob("*.json")):
                found.append((f"{prefix}:{path.stem}", f"{path.stem}{suffix}", str(path)))
    return found


def enum_items(
    entries_function: Callable[[], Iterable[Entry]], empty_label: str
) -> Callable[[object, object], list[Entry]]:
    """A dynamic EnumProperty ``items`` callback listing ``entries_function()``; it never raises."""
    kept: list[Entry] = []  # Blender needs the strings of a dynamic enum kept alive

    def items(_self: object, _context: object) -> list[Entry]:
        try:
            entries = entries_function()
        except Exception:  # noqa: BLE001 - an enum callback must not raise
            entries = []
        kept[:] = list(entries) or [("NONE", empty_label, empty_label)]
        return kept

    return items
