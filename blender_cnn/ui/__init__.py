"""Operators and panels: thin wrappers over the functions in ``scene``."""

from . import operators, panels

_modules = (operators, panels)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
