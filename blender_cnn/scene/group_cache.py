"""The shared node groups, kept in a .blend in the user folder so that a new file gets them in milliseconds.

Building the twenty-odd shared groups (about 1,200 nodes) is most of a first network's build: Blender
updates a whole tree on every node, link and value set (CIFAR-10 greyscale: 1.1 s to build with them,
0.4 s with them appended; measured). After a file has built them they are written to a cache file,
and a file without any of them appends them from it. ``ensure_group`` still checks every group's
version, so a group changed since the cache was written is rebuilt in place and the cache rewritten.
"""

import os
import tempfile

import bpy

from ..nodes import builder
from .user_folders import user_folder


def cache_path():
    version = "-".join(str(part) for part in bpy.app.version)
    return os.path.join(user_folder("cache"), f"node_groups-blender-{version}.blend")


def _shared_groups():
    return [group for group in bpy.data.node_groups if builder.VERSION_PROPERTY in group]


def append_cached_groups():
    """Append the cached shared groups into a file that has none of them; True if it did."""
    path = cache_path()
    if _shared_groups() or not os.path.isfile(path):
        return False
    before = set(bpy.data.libraries)
    try:
        with bpy.data.libraries.load(path, link=False) as (cached, appended):
            appended.node_groups = list(cached.node_groups)
    except (OSError, RuntimeError):  # an unreadable cache is rebuilt, never an error for the user
        return False
    # Appended data is local; the library entry it came through is left over.
    for library in set(bpy.data.libraries) - before:
        bpy.data.libraries.remove(library)
    return True


def write_cached_groups():
    """Write the shared groups to the cache when this process built any of them since the last write."""
    if not builder.built_groups:
        return
    groups = set(_shared_groups())
    path = cache_path()
    # Written beside the cache and moved over it, so another Blender never reads half a file.
    handle, partial = tempfile.mkstemp(suffix=".blend", dir=os.path.dirname(path))
    os.close(handle)
    try:
        bpy.data.libraries.write(partial, groups, compress=False)
        os.replace(partial, path)
        builder.built_groups.clear()
    except (OSError, RuntimeError):
        pass  # no cache: the next file builds its groups, as without one
    finally:
        if os.path.exists(partial):
            os.remove(partial)
