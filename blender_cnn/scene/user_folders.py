"""Where the add-on's own presets are, and where the user's files go (never the add-on's own folder).

An update of the add-on replaces its folder, and it may not be writable.
"""

import re
from pathlib import Path

import bpy

# "blender_cnn" when imported as a package, "bl_ext.<repo>.blender_cnn" when installed as an extension.
ADDON_PACKAGE = __package__.rpartition(".")[0]


def user_folder(kind):
    """``kind``'s folder in the extension's user folder, or under Blender's user scripts when not an extension."""
    if ADDON_PACKAGE.startswith("bl_ext."):
        return bpy.utils.extension_path_user(ADDON_PACKAGE, path=kind, create=True)
    return bpy.utils.user_resource("SCRIPTS", path=f"blender_cnn_{kind}", create=True)


def safe_file_name(name, fallback="design"):
    """``name`` with everything but letters, digits, ``_``, ``.`` and ``-`` replaced, for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or fallback


def builtin_presets_folder():
    """The presets shipped with the add-on: ``presets/`` in the extension, or in the repository."""
    here = Path(__file__).resolve().parent.parent
    for folder in (here / "presets", here.parent / "presets"):
        if folder.is_dir():
            return folder
    return None
