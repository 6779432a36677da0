"""Preferences, operators and panels: thin wrappers over the functions in ``scene`` and ``extract.runner``."""

from . import operators, panels, preferences

_modules = (preferences, operators, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
