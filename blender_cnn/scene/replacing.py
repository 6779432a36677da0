"""Replacing a built network with a new build of it: what carries over, and removing the old one.

Both the designer's Build Scene (a design built again) and Watch Run (a live
run's network rebuilt with more epochs) make the network anew and carry over
what the user set: the modifier inputs that hold plain values and the
animation. The old network goes with everything built for it.
"""

from __future__ import annotations

from typing import Any

import bpy

from ..core.errors import BlenderCNNError
from ..nodes.builder import PART_PROPERTY, tree_parts
from ..nodes.network import input_identifiers
from .network import get_network_input, network_modifier, set_network_input

# Modifier inputs never carried over: data objects of the network's own, and Epoch, which the new build sets (a
# design's one epoch, a live run's newest).
NOT_CARRIED = ("Cells", "History", "Epoch")


def plain_inputs(network: bpy.types.Object) -> dict[str, Any]:
    """``{input name: value}`` of the network's modifier inputs that hold numbers, flags, text or vectors."""
    values: dict[str, Any] = {}
    for name in input_identifiers(network_modifier(network).node_group):
        if name in NOT_CARRIED:
            continue
        try:
            value = get_network_input(network, name)
        except (AttributeError, KeyError, TypeError):
            continue
        if isinstance(value, (bool, int, float, str)):
            values[name] = value
        elif hasattr(value, "__len__") and not isinstance(value, bpy.types.ID):
            values[name] = tuple(value)
    return values


def write_inputs(network: bpy.types.Object, values: dict[str, Any]) -> int:
    """Set the inputs of ``values`` the network still has, as it holds them; returns how many were set."""
    identifiers = input_identifiers(network_modifier(network).node_group)
    count = 0
    for name, value in values.items():
        if name not in identifiers:
            continue
        try:
            set_network_input(network, name, value)
            count += 1
        except (BlenderCNNError, TypeError, ValueError, AttributeError):
            continue  # an input the new network holds differently keeps its built value
    return count


def take_animation(old: bpy.types.Object, new: bpy.types.Object) -> None:
    """Give the new network the old one's action: its node tree is built alike, so the keyed paths still fit."""
    animation = old.animation_data
    if animation is None or animation.action is None:
        return
    target = new.animation_data_create()
    assert target is not None  # bpy stubs: it makes one when there is none
    target.action = animation.action
    if animation.action_slot is not None:
        target.action_slot = animation.action_slot


def own_collection(network: bpy.types.Object) -> bpy.types.Collection | None:
    """The collection the build made for the network (``CNN <name>``, unless the user renamed it): the one that
    also holds the cells it draws."""
    cells = get_network_input(network, "Cells")
    for collection in network.users_collection:
        if cells is not None and cells.name in collection.objects:
            return collection
    return next((collection for collection in network.users_collection if collection.name.startswith("CNN ")), None)


def remove_network(network: bpy.types.Object) -> None:
    """Remove a network built by the add-on: its collection's objects, their data, its collection and node tree."""
    own = own_collection(network)
    collections = [own] if own is not None else []
    objects = {obj for collection in collections for obj in collection.all_objects} | {network}
    trees = {
        modifier.node_group
        for obj in objects
        for modifier in obj.modifiers
        if isinstance(modifier, bpy.types.NodesModifier) and modifier.node_group is not None
    }
    trees |= {part for tree in trees for part in tree_parts(tree)}
    data = [obj.data for obj in objects if obj.data is not None]
    for obj in objects:
        bpy.data.objects.remove(obj)
    owners: tuple[tuple[type, Any], ...] = (
        (bpy.types.Mesh, bpy.data.meshes),
        (bpy.types.Curves, bpy.data.hair_curves),
        (bpy.types.Curve, bpy.data.curves),
    )
    for block in data:
        for kind, owner in owners:
            if isinstance(block, kind) and block.users == 0:
                owner.remove(block)
                break
    for collection in collections:
        for child in list(collection.children_recursive):
            if not child.all_objects:
                bpy.data.collections.remove(child)
        bpy.data.collections.remove(collection)
    for tree in sorted(trees, key=lambda tree: bool(tree.get(PART_PROPERTY))):  # the parts, once their tree is gone
        if tree.users == 0 and tree.name.startswith("BCNN Network"):
            bpy.data.node_groups.remove(tree)
