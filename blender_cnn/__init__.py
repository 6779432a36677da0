"""blender_cnn: convolutional neural networks as procedural Geometry Nodes scenes.

Folders by concern: ``core`` (bundle format, cell data, colormaps: numpy
only), ``extract`` (TensorFlow, run outside Blender when Blender has none),
``nodes`` (Geometry Nodes groups written as code), ``scene`` (bpy builders,
camera and render), ``ui`` (operators and panels) and ``designer`` (the node
editor in which networks are designed). bpy is imported only by
``register`` so that ``core`` and ``extract`` work in any Python.
"""


def register():
    from . import designer, ui

    ui.register()
    designer.register()


def unregister():
    from . import designer, ui

    designer.unregister()
    ui.unregister()
