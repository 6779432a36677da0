"""blender_cnn: convolutional neural networks as procedural Geometry Nodes scenes.

Folders by concern: ``core`` (bundle format, cell data, colormaps: numpy
only), ``extract`` (TensorFlow, run outside Blender when Blender has none),
``nodes`` (Geometry Nodes groups written as code), ``scene`` (bpy builders,
camera and render) and ``ui`` (operators and panels). bpy is imported only by
``register`` so that ``core`` and ``extract`` work in any Python.
"""


def register():
    from . import ui

    ui.register()


def unregister():
    from . import ui

    ui.unregister()
