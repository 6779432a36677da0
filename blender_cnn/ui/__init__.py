"""Preferences, operators and panels: thin wrappers over the functions in ``scene``, ``core.jobs`` and ``extract``."""

import bpy

# Registered in this order (preferences and operators before the panels that show them), unregistered in reverse.
register, unregister = bpy.utils.register_submodule_factory(
    __name__,
    (
        "preferences",
        "operators",
        "focus",
        "layer_list",
        "connections",
        "animation",
        "render",
        "web",
        "style",
        "live",
        "composition",
        "panels",
    ),
)
