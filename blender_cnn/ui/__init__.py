"""Preferences, operators and panels: thin wrappers over the functions in ``scene``, ``core.jobs`` and ``extract``."""

from . import animation, connections, focus, operators, panels, preferences, render, style

_modules = (preferences, operators, focus, connections, animation, render, style, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
