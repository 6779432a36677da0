"""The network designer: a "CNN Design" node tree whose nodes are layers, with live shapes and problems.

``tree`` defines the node tree type and one node per layer type, analyses
trees as they are edited and makes trees of designs, with ``convert``, which
turns designs (``core.design``) into nodes and back,
``operators`` start designs from presets, save presets, build the 3D scene
of a design and make a design of an imported network,
``tensorflow_operators`` export a design to Keras and train it, and
``panel`` is the node editor's sidebar panel.
"""

import bpy

# Registered in this order (preferences and operators before the panels that show them), unregistered in reverse.
register, unregister = bpy.utils.register_submodule_factory(
    __name__, ("tree", "operators", "tensorflow_operators", "panel")
)
