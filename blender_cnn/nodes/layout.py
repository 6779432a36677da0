"""Where a group's nodes stand in the node editor: in columns by depth, left to right, frames kept apart.

Frames are the logical parts of a group (``TreeBuilder.frame``); a node
outside frames whose consumers all lie in one frame joins it. Each frame is a
block of columns of its own, its nodes in columns by their depth along the
links inside it. The blocks (and the nodes outside frames) stand after every
block that feeds them, then move right up to the first block that reads
them, so every link runs left to right and a value is computed next to where
it is used. The Group Input opens the first column, the Group Output closes
the last; columns are as wide as their widest node.

Vertically, each frame, and each column's nodes outside frames, is a *unit*;
units are packed into shelves, top to bottom, a unit going to the first shelf
where no other unit takes its columns. So frames never overlap each other or a
node outside them, and parts that follow each other read along one shelf.

Node sizes are estimated from their sockets and options (Blender computes the
real ones only when it draws the editor). ``positions`` is plain arithmetic on
the graph; ``lay_out`` reads a tree and writes the locations with one
``foreach_set``, since setting them node by node costs a tree update each.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import bpy

COLUMN_GAP = 60.0  # between the widest node of a column and the next column
NODE_GAP = 20.0  # between nodes stacked in a column
SHELF_GAP = 60.0  # between shelves
FRAME_HEADER = 40.0  # room for a frame's label above its nodes
FRAME_MARGIN = 20.0  # around a frame's nodes

HEADER_HEIGHT = 36.0
SOCKET_HEIGHT = 22.0
OPTION_HEIGHT = 26.0
VECTOR_FIELDS_HEIGHT = 3 * 22.0  # an unlinked vector input shows X, Y and Z under its name
BOTTOM_MARGIN = 10.0


@dataclass
class Unit:
    """A frame's nodes, or one column's nodes outside frames: stacked per column, placed as one."""

    frame: int | None
    members: list[int] = field(default_factory=list)
    top: float = 0.0

    def span(self, column: np.ndarray) -> tuple[int, int]:
        columns = [column[i] for i in self.members]
        return min(columns), max(columns)


def positions(
    count: int,
    links: Sequence[tuple[int, int]],
    widths: Sequence[float],
    heights: Sequence[float],
    frame_of: Sequence[int | None],
    first: Collection[int] = (),
    last: Collection[int] = (),
) -> tuple[np.ndarray, dict[int, tuple[float, float, float, float]], list[int | None]]:
    """Top-left corners ``(count, 2)`` of ``count`` nodes, ``{frame: (x, y, width, height)}`` and each node's frame.

    ``links`` are ``(from node, to node)`` pairs, ``frame_of[i]`` the frame
    node ``i`` is in (None: in none; frame nodes themselves are not among
    the ``count``), ``first`` the nodes that open the leftmost column (the
    Group Input) and ``last`` those that close the rightmost (the Group Output).
    A node outside frames whose every consumer is in one frame joins that
    frame: the returned frames say so.
    """
    frame_of = _adopted(count, links, frame_of, set(first) | set(last))
    column = _columns(count, links, frame_of, first, last)
    column_count = int(max(column, default=-1)) + 1
    column_width = np.zeros(column_count)
    for i in range(count):
        column_width[column[i]] = max(column_width[column[i]], widths[i])
    column_x = np.concatenate([[0.0], np.cumsum(column_width + COLUMN_GAP)])[:column_count]

    units = _units(count, column, frame_of)
    shelves = _shelves(units, column)
    location = np.zeros((count, 2), dtype=np.float32)
    frames: dict[int, tuple[float, float, float, float]] = {}
    top = 0.0
    for shelf in shelves:
        shelf_height = 0.0
        for unit in shelf:
            inset = FRAME_HEADER if unit.frame is not None else 0.0
            stacked: dict[int, float] = {}
            for i in unit.members:
                y = stacked.get(column[i], top - inset)
                location[i] = column_x[column[i]], y
                stacked[column[i]] = y - heights[i] - NODE_GAP
            bottom = min(stacked.values()) + NODE_GAP
            if unit.frame is not None:
                bottom -= FRAME_MARGIN
                left = min(location[i][0] for i in unit.members) - FRAME_MARGIN
                right = max(location[i][0] + widths[i] for i in unit.members) + FRAME_MARGIN
                frames[unit.frame] = (left, top, right - left, top - bottom)
            shelf_height = max(shelf_height, top - bottom)
        top -= shelf_height + SHELF_GAP
    return location, frames, frame_of


def _adopted(
    count: int, links: Sequence[tuple[int, int]], frame_of: Iterable[int | None], fixed: Collection[int]
) -> list[int | None]:
    """``frame_of`` with every node outside frames whose consumers are all in one frame moved into it."""
    frame_of = list(frame_of)
    consumers: list[list[int]] = [[] for _ in range(count)]
    for source, target in links:
        consumers[source].append(target)
    for node in reversed(_topological(count, links)):
        if frame_of[node] is None and node not in fixed and consumers[node]:
            frames = {frame_of[target] for target in consumers[node]}
            if len(frames) == 1:
                frame_of[node] = frames.pop()
    return frame_of


def _topological(count: int, links: Iterable[tuple[int, int]]) -> list[int]:
    """Node indices in an order where every link runs forward (Kahn's); nodes on a cycle (none in a valid
    tree) come last."""
    consumers: list[list[int]] = [[] for _ in range(count)]
    waiting = [0] * count
    for source, target in links:
        if source != target:
            consumers[source].append(target)
            waiting[target] += 1
    ready = [i for i in range(count) if waiting[i] == 0]
    ready.reverse()
    order = []
    while ready:
        node = ready.pop()
        order.append(node)
        for target in consumers[node]:
            waiting[target] -= 1
            if waiting[target] == 0:
                ready.append(target)
    placed = set(order)
    return order + [i for i in range(count) if i not in placed]


def _longest_paths(
    count: int, links: Iterable[tuple[int, int]], order: Sequence[int], width: Sequence[int], openers: Collection[int]
) -> np.ndarray:
    """Start columns: each after everything that feeds it (``width`` columns of each), then moved right to
    just before its first consumer, the ``openers`` staying in column 0."""
    consumers: list[list[int]] = [[] for _ in range(count)]
    for source, target in links:
        consumers[source].append(target)
    start = np.zeros(count, dtype=np.int64)
    for node in order:
        for target in consumers[node]:
            start[target] = max(start[target], start[node] + width[node])
    for node in reversed(order):
        if consumers[node] and node not in openers:
            start[node] = min(start[target] for target in consumers[node]) - width[node]
    if count:
        start -= start.min()
    for node in openers:
        start[node] = 0
    return start


def _columns(
    count: int,
    links: Sequence[tuple[int, int]],
    frame_of: Sequence[int | None],
    first: Collection[int],
    last: Collection[int],
) -> np.ndarray:
    """Each node's column. A frame's nodes take columns of their own, side by side: the frame is a block.

    Within a frame, nodes stand by their depth along the links inside it. The
    blocks (frames, and nodes outside frames) are then placed as nodes are:
    after every block that feeds them, then moved right up to their first
    consumer. Should frames feed each other both ways, each node is placed on
    its own instead.
    """
    units = sorted(
        {("frame", frame) if frame is not None else ("node", i) for i, frame in enumerate(frame_of)}, key=str
    )
    unit_index = {unit: k for k, unit in enumerate(units)}
    unit_of = [unit_index[("frame", frame) if frame is not None else ("node", i)] for i, frame in enumerate(frame_of)]
    inside = [(s, t) for s, t in links if unit_of[s] == unit_of[t] and s != t]
    depth = _longest_paths(count, inside, _topological(count, inside), [1] * count, ())
    # Depth counts within each frame from 0.
    low: dict[int, int] = {}
    for i in range(count):
        low[unit_of[i]] = min(low.get(unit_of[i], depth[i]), depth[i])
    for i in range(count):
        depth[i] -= low[unit_of[i]]
    width = [1] * len(units)
    for i in range(count):
        width[unit_of[i]] = max(width[unit_of[i]], int(depth[i]) + 1)
    between = sorted({(unit_of[s], unit_of[t]) for s, t in links if unit_of[s] != unit_of[t]})
    order = _topological(len(units), between)
    if _has_cycle(len(units), between, order):
        column = _longest_paths(count, links, _topological(count, links), [1] * count, set(first))
        return column + _ends(count, links, first, last, column)
    openers = {unit_of[i] for i in first}
    start = _longest_paths(len(units), between, order, width, openers)
    column = np.array([start[unit_of[i]] + depth[i] for i in range(count)], dtype=np.int64)
    return column + _ends(count, links, first, last, column)


def _has_cycle(count: int, links: Iterable[tuple[int, int]], order: Iterable[int]) -> bool:
    position = {node: k for k, node in enumerate(order)}
    return any(position[source] >= position[target] for source, target in links)


def _ends(
    count: int, links: Iterable[tuple[int, int]], first: Collection[int], last: Collection[int], column: np.ndarray
) -> np.ndarray:
    """What moves the ``last`` nodes into a column of their own after all others (zeros elsewhere)."""
    shift = np.zeros(count, dtype=np.int64)
    if not last:
        return shift
    closing = set(last)
    end = max((column[i] for i in range(count) if i not in closing), default=-1) + 1
    for node in last:
        shift[node] = end - column[node]
    return shift


def _units(count: int, column: np.ndarray, frame_of: Sequence[int | None]) -> list[Unit]:
    """One unit per frame, and per column for the nodes outside frames, in the order the flow meets them."""
    by_frame: dict[int, Unit] = {}
    loose: dict[int, Unit] = {}
    for i in range(count):
        frame = frame_of[i]
        if frame is None:
            loose.setdefault(int(column[i]), Unit(None)).members.append(i)
        else:
            by_frame.setdefault(frame, Unit(frame)).members.append(i)
    units = list(by_frame.values()) + list(loose.values())
    units.sort(key=lambda unit: (unit.span(column)[0], min(unit.members)))
    return units


def _shelves(units: Iterable[Unit], column: np.ndarray) -> list[list[Unit]]:
    """Units packed into shelves: each goes to the first shelf where its columns are free."""
    shelves: list[list[Unit]] = []
    taken: list[list[tuple[int, int]]] = []
    for unit in units:
        low, high = unit.span(column)
        for shelf, spans in zip(shelves, taken):
            if all(high < other_low or other_high < low for other_low, other_high in spans):
                shelf.append(unit)
                spans.append((low, high))
                break
        else:
            shelves.append([unit])
            taken.append([(low, high)])
    return shelves


# ---------------------------------------------------------------- reading and writing a bpy tree


def node_size(node: bpy.types.Node) -> tuple[float, float]:
    """``(width, height)`` of a node as the editor draws it, estimated from its sockets and options."""
    sockets = [socket for socket in (*node.inputs, *node.outputs) if socket.enabled and not socket.hide]
    height = HEADER_HEIGHT + SOCKET_HEIGHT * len(sockets) + OPTION_HEIGHT * _option_rows(node) + BOTTOM_MARGIN
    height += VECTOR_FIELDS_HEIGHT * sum(
        1
        for socket in node.inputs
        if socket.enabled
        and not socket.hide
        and socket.type == "VECTOR"
        and not socket.is_linked
        and not socket.hide_value
    )
    return float(node.width), float(height)


_BASE_PROPERTIES: dict[type, int] = {}


def _option_rows(node: bpy.types.Node) -> int:
    """Options a node draws above its sockets: its own enum and boolean properties (a group: its tree)."""
    if node.bl_idname == "GeometryNodeGroup":
        return 1
    kind = type(node)
    rows = _BASE_PROPERTIES.get(kind)
    if rows is None:
        parent = getattr(kind.__mro__[1], "bl_rna", None) if len(kind.__mro__) > 1 else None
        base = {prop.identifier for prop in parent.properties} if parent is not None else set()
        rows = sum(
            1
            for prop in node.bl_rna.properties
            if prop.identifier not in base
            and prop.type in {"ENUM", "BOOLEAN"}
            and not prop.is_readonly
            and not prop.identifier.startswith(("show_", "use_custom", "is_"))
        )
        _BASE_PROPERTIES[kind] = rows
    return rows


def lay_out(
    tree: bpy.types.NodeTree, first: Iterable[bpy.types.Node | None] = (), last: Iterable[bpy.types.Node | None] = ()
) -> None:
    """Place every node of ``tree`` (see the module's docstring); ``first``/``last`` as in ``positions``."""
    nodes = list(tree.nodes)
    frames = [node for node in nodes if node.bl_idname == "NodeFrame"]
    placed = [node for node in nodes if node.bl_idname != "NodeFrame"]
    index = {node.as_pointer(): i for i, node in enumerate(placed)}
    frame_index = {frame.as_pointer(): i for i, frame in enumerate(frames)}
    # The stubs let a link's nodes be None; a link always has both.
    links = [
        (index[link.from_node.as_pointer()], index[link.to_node.as_pointer()])
        for link in tree.links
        if link.from_node is not None
        and link.to_node is not None
        and link.from_node.as_pointer() in index
        and link.to_node.as_pointer() in index
    ]
    sizes = [node_size(node) for node in placed]
    frame_of = [frame_index.get(node.parent.as_pointer()) if node.parent is not None else None for node in placed]
    location, boxes, adopted = positions(
        len(placed),
        links,
        [w for w, _h in sizes],
        [h for _w, h in sizes],
        frame_of,
        [index[node.as_pointer()] for node in first if node is not None],
        [index[node.as_pointer()] for node in last if node is not None],
    )
    for node, frame, joined in zip(placed, frame_of, adopted):
        if joined != frame:
            assert joined is not None  # adoption only moves nodes into frames, never out of one
            node.parent = frames[joined]
    frame_of = adopted
    frame_location = np.zeros((len(frames), 2), dtype=np.float32)
    for i, frame_node in enumerate(frames):
        left, top, width, height = boxes.get(i, (0.0, 0.0, 100.0, 100.0))
        frame_location[i] = left, top
        frame_node.width, frame_node.height = width, height
    # A node in a frame is placed relative to its frame.
    for i, frame in enumerate(frame_of):
        if frame is not None:
            location[i] -= frame_location[frame]
    every = np.zeros((len(nodes), 2), dtype=np.float32)
    order = {node.as_pointer(): i for i, node in enumerate(nodes)}
    for i, node in enumerate(placed):
        every[order[node.as_pointer()]] = location[i]
    for i, frame_node in enumerate(frames):
        every[order[frame_node.as_pointer()]] = frame_location[i]
    tree.nodes.foreach_set("location", every.ravel())
