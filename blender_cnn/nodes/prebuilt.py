"""The shared node groups, prebuilt into a .blend when the extension is built, and brought into a file from it.

Building the shared groups from code is most of a first network's build: Blender updates a whole tree on
every node, link and value set (27 groups, about 2,000 nodes). The extension build writes them, as the
code builds them, to ``assets/node_groups.blend`` (``scripts/build_node_groups.py``), and a file that has
none of them takes them from there in one read. The groups stay code: the file is a build product, and
``ensure_group`` still compares each group's version with the code's, rebuilding any that differ.

They are linked and then made local, not appended. Appending gives every group a weak reference to the
asset's absolute path, and the first save with relative paths rewrites those references; Blender tags a
data-block whose path it rewrote as changed, so the network using the groups was evaluated again inside the
save (VGG16: 11 s; ``bpy.ops.file.make_paths_relative`` does the same). Making a linked group local leaves no
such reference, and the saved file keeps no link to the asset.
"""

from __future__ import annotations

from pathlib import Path

import bpy

ASSET_PATH = Path(__file__).resolve().parent.parent / "assets" / "node_groups.blend"
BUILTIN_FONT = "<builtin>"  # the file path of the font Blender has built in, as text nodes use it
# False builds every group from code, as before the asset: the benchmarks compare the two ways.
enabled = True


def append_prebuilt_groups(path: Path | None = None) -> bool:
    """Bring every group of ``path`` (the add-on's asset by default) into this file, local; False (and nothing
    added) when the file is missing or unreadable, was written by a newer Blender, or this file already has a
    group of one of its names, and False when a group could not be made local."""
    path = ASSET_PATH if path is None else path
    if not enabled or not path.is_file():
        return False
    libraries = set(bpy.data.libraries)
    # Loaded before the link, so that it is this file's own and not the asset's.
    builtin_font = bpy.data.fonts.load(BUILTIN_FONT, check_existing=True)
    try:
        with bpy.data.libraries.load(str(path), link=True) as (source, target):
            # A group of a name this file has would come in renamed, and the groups that use it with it.
            refused = any(name in bpy.data.node_groups for name in source.node_groups)
            if not refused:
                target.node_groups = list(source.node_groups)
    except (OSError, RuntimeError):
        refused = True
    added = [library for library in bpy.data.libraries if library not in libraries]
    # A library's version is the (major, minor, file subversion) of the Blender that wrote it.
    if refused or any(tuple(library.version) > tuple(bpy.app.version_file) for library in added):
        for library in added:  # removes whatever came through it
            bpy.data.libraries.remove(library)
        return False
    linked = [group for group in target.node_groups if group is not None]
    names = [group.name for group in linked]
    _make_local(linked)
    for library in added:
        _keep_what_else_came(library, builtin_font)
        bpy.data.libraries.remove(library)
    # Whatever was not made local went with the library.
    kept = [bpy.data.node_groups.get(name) for name in names]
    return all(group is not None and group.library is None for group in kept)


def _keep_what_else_came(library: bpy.types.Library, builtin_font: bpy.types.VectorFont) -> None:
    """Make local the other data-blocks the groups use (removing the library would leave them pointing to
    nothing), but use this file's own built-in font for the asset's: the text nodes of groups built from code
    point to it, and a second "Bfont Regular" would be a copy of what Blender has built in."""
    for used in list(library.users_id):
        if isinstance(used, bpy.types.VectorFont) and used.filepath == BUILTIN_FONT:
            used.user_remap(builtin_font)
        else:
            used.make_local()


def _make_local(linked: list[bpy.types.NodeTree]) -> None:
    """Make the linked groups local in place, each after every linked group that uses it.

    A linked group that another linked group still uses is copied by ``make_local`` rather than made local,
    and the copy's users keep the linked original, which goes with the library. Blender 5.3 links a group that
    nothing uses yet indirectly, and ``make_local`` leaves an indirectly linked group as it is (the groups then
    went with the library, and every group was built from code): a fake user links each one directly for the
    while.
    """
    for group in linked:
        group.use_fake_user = True
    pending = set(linked)
    while pending:
        users = bpy.data.user_map(subset=pending)
        ready = [group for group in pending if not users[group] & pending]
        assert ready, "node groups cannot use each other in a cycle"
        for group in ready:
            group.make_local()
            pending.discard(group)
    for group in linked:
        group.use_fake_user = False


def write_prebuilt_groups(path: Path | None = None) -> list[str]:
    """Build every shared group from code in an empty file and write them to ``path``; returns their names.

    Meant for a fresh process (``scripts/build_node_groups.py``): it resets the open file.
    """
    from .network import ensure_shared_groups

    global enabled
    bpy.ops.wm.read_homefile(app_template="")
    was_enabled, enabled = enabled, False  # the groups as the code builds them, never from an older asset
    try:
        groups = ensure_shared_groups()
    finally:
        enabled = was_enabled
    path = ASSET_PATH if path is None else path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Uncompressed: read in 51 ms instead of 60 (medians of 5), of a first network's 0.4 s. The file is 8.7 MB
    # instead of 0.5, and the extension's zip compresses it about as well as Blender would.
    bpy.data.libraries.write(str(path), set(groups.values()), compress=False)
    return sorted(groups)
