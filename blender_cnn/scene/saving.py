"""Saving the open file where the project saves it itself (the demo, the benchmarks): no .blend1 beside it."""

import os

import bpy


def save_without_backup(path: str | os.PathLike[str]) -> None:
    """Save the open file as ``path`` with no backup beside it. ``save_as_mainfile`` has no switch for backups,
    the preferences' Save Versions has: it is 0 while saving, then the user's value again, and the preferences
    are left as clean as they were, so Blender does not write them back on quitting."""
    preferences = bpy.context.preferences
    assert preferences is not None  # the stubs allow a context without preferences
    versions, dirty = preferences.filepaths.save_version, preferences.is_dirty
    preferences.filepaths.save_version = 0
    try:
        bpy.ops.wm.save_as_mainfile(filepath=str(path))
    finally:
        preferences.filepaths.save_version = versions
        preferences.is_dirty = dirty
