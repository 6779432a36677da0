"""A stand-in for Blender's UILayout that records what a panel or node draws, for tests of draw code."""

from types import SimpleNamespace


class RecordingLayout:
    """Takes the calls a panel or node makes on ``UILayout`` and remembers labels, operators and properties.

    ``props`` holds each property's shown text, or its attribute name when drawn without one.
    """

    def __init__(self, record=None):
        self.record = record if record is not None else {"labels": [], "operators": [], "props": []}

    def column(self, **_options):
        return RecordingLayout(self.record)

    row = box = column

    def label(self, text="", **_options):
        self.record["labels"].append(text)

    def operator(self, idname, **_options):
        self.record["operators"].append(idname)
        return SimpleNamespace()

    def operator_menu_enum(self, idname, _property, **_options):
        self.record["operators"].append(idname)

    def prop(self, data, attribute, text="", index=-1, **_options):
        value = getattr(data, attribute)  # a property that does not exist raises, as Blender's layout would
        if index >= 0:
            value[index]
        self.record["props"].append(text or attribute)
