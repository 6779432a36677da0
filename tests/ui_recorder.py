"""Stand-ins for Blender's UI in tests: a UILayout that records what a panel or node draws, the panels drawn
into it, a window for operators' modal loops, and a user's clicks that several test modules share; and a fresh
Blender of a user's own, for what only an installed extension does."""

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace


class RecordingLayout:
    """Takes the calls a panel or node makes on ``UILayout`` and remembers labels, operators and properties.

    ``props`` holds each property's shown text, or its attribute name when drawn without one; ``prop_data`` the
    ``(data, attribute, shown text)`` of each, as a click or a keyframe would reach it. ``operator_texts`` holds
    each button's text (its ``text``, else the operator's label), ``lists`` the ``(list class, data, property)``
    of each ``template_list``.
    """

    def __init__(self, record=None):
        self.record = record if record is not None else {"labels": [], "operators": [], "props": []}
        for key in ("operator_texts", "prop_data", "lists"):
            self.record.setdefault(key, [])

    def column(self, **_options):
        return RecordingLayout(self.record)

    row = box = column

    def split(self, **_options):
        return RecordingLayout(self.record)

    def separator(self, **_options):
        pass

    def label(self, text="", **_options):
        self.record["labels"].append(text)

    def operator(self, idname, text=None, **_options):
        self.record["operators"].append(idname)
        self.record["operator_texts"].append(text if text is not None else _operator_label(idname))
        return SimpleNamespace()

    def operator_menu_enum(self, idname, _property, **_options):
        self.record["operators"].append(idname)

    def prop(self, data, attribute, text="", index=-1, **_options):
        value = getattr(data, attribute)  # a property that does not exist raises, as Blender's layout would
        if index >= 0:
            value[index]
        self.record["props"].append(text or attribute)
        self.record["prop_data"].append((data, attribute, text or attribute))

    def template_list(self, list_type, _list_id, data, attribute, active_data, active_attribute, **_options):
        getattr(data, attribute), getattr(active_data, active_attribute)  # both must exist, as in Blender
        self.record["lists"].append((list_type, data, attribute))


def _operator_label(idname):
    """The label Blender shows on an operator's button drawn without a text."""
    import bpy

    module, _dot, name = idname.partition(".")
    return getattr(getattr(bpy.ops, module), name).get_rna_type().name


# ---------------------------------------------------------------- panels


def draw_network_panel(bpy):
    """What the sidebar's CNN tab shows in the current context, every panel it shows drawn into one record:
    {"labels", "operators", "props", ...} (see ``RecordingLayout``)."""
    layout = RecordingLayout()
    for panel_class in shown_sidebar_panels(bpy):
        panel_class.draw(SimpleNamespace(layout=layout), bpy.context)
    return layout.record


def shown_sidebar_panels(bpy):
    """The CNN tab's panel classes whose poll passes (a sub-panel only under a shown parent), in sidebar order."""
    from blender_cnn.ui.panels import classes

    shown = []
    for panel_class in classes:
        parent = getattr(panel_class, "bl_parent_id", "")
        if parent and parent not in {shown_class.bl_idname for shown_class in shown}:
            continue
        if not hasattr(panel_class, "poll") or panel_class.poll(bpy.context):
            shown.append(panel_class)
    return shown


def draw_sidebar_panels(bpy):
    """Each shown panel of the CNN tab drawn on its own: {panel label: record}."""
    records = {}
    for panel_class in shown_sidebar_panels(bpy):
        layout = RecordingLayout()
        panel_class.draw(SimpleNamespace(layout=layout), bpy.context)
        records[panel_class.bl_label] = layout.record
    return records


def draw_designer_panel(bpy, tree):
    """What the node editor's designer panel shows with ``tree`` (or None) open."""
    from blender_cnn.designer.panel import BCNN_PT_designer

    layout = RecordingLayout()
    panel = SimpleNamespace(layout=layout, draw_design=BCNN_PT_designer.draw_design)
    context = SimpleNamespace(
        space_data=SimpleNamespace(edit_tree=tree, tree_type="BCNN_DesignTree"), view_layer=bpy.context.view_layer
    )
    BCNN_PT_designer.draw(panel, context)
    return layout.record


def node_lines(node):
    """The labels a designer node draws under its properties (its shape and parameters, or its problem)."""
    layout = RecordingLayout()
    node.draw_buttons(None, layout)
    return layout.record["labels"]


# ---------------------------------------------------------------- clicks


def new_tree_from_preset(bpy, preset):
    """New Design from Preset (``builtin:<name>`` or ``user:<name>``): the node tree it made."""
    before = set(bpy.data.node_groups)
    assert bpy.ops.bcnn.new_design_from_preset(preset=preset) == {"FINISHED"}
    (tree,) = set(bpy.data.node_groups) - before
    return tree


def inspect_at(bpy, location):
    """Inspect Cell with the 3D cursor at ``location``."""
    bpy.context.scene.cursor.location = tuple(float(v) for v in location)
    return bpy.ops.bcnn.inspect_cell()


# ---------------------------------------------------------------- a window for modal operators


class FakeWindowManager:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):  # event_timer_add/remove, progress_begin/update/end, modal_handler_add
        return lambda *args, **kwargs: self.calls.append((name, args))


class FakeWorkspace:
    def __init__(self):
        self.status = []

    def status_text_set(self, text):
        self.status.append(text)


TIMER = SimpleNamespace(type="TIMER", value="NOTHING")
ESCAPE = SimpleNamespace(type="ESC", value="PRESS")


def modal_driver(operator_class, job=None, **properties):
    """An operator's own methods on a stand-in: the modal loop needs a window, which tests lack.

    ``job`` is what ``run_job`` was given (the driver's modal loop starts at once);
    without it, ``execute`` starts the job as the operator would. ``job_finished``
    is the operator's unless the test replaces it.
    """
    attributes = {}
    for cls in reversed(operator_class.__mro__):  # the add-on's own classes: Blender's need a registered struct
        if cls.__module__.startswith("blender_cnn"):
            attributes.update({name: value for name, value in vars(cls).items() if not name.startswith("__")})
    driver_class = type("Driver", (), attributes)
    driver = driver_class()
    driver.reports, driver.run_in_background = [], True
    driver.report = lambda kind, text: driver.reports.append((kind, text))
    driver.is_repeat = lambda: False
    for name, value in properties.items():
        setattr(driver, name, value)
    if job is not None:
        driver._job = job
    return driver


def modal_context(bpy=None):
    """A stand-in context with a window: the real scene and view layer when ``bpy`` is given."""
    if bpy is None:
        return SimpleNamespace(window=object(), window_manager=FakeWindowManager(), workspace=FakeWorkspace())
    return SimpleNamespace(
        window=object(),
        window_manager=FakeWindowManager(),
        workspace=FakeWorkspace(),
        scene=bpy.context.scene,
        view_layer=bpy.context.view_layer,
        preferences=bpy.context.preferences,
        space_data=None,
    )


def run_modal(driver, context, timeout=120):
    """Send timer events until the operator ends; returns its result."""
    deadline = time.monotonic() + timeout
    while (result := driver.modal(context, TIMER)) == {"PASS_THROUGH"} and time.monotonic() < deadline:
        time.sleep(0.05)
    return result


# ---------------------------------------------------------------- a fresh Blender


def run_in_fresh_blender(script, marker, user_folder, *args, timeout=600, python=sys.executable):
    """Run ``script`` (code that imports bpy) with ``args`` in a new ``python`` (by default this one) whose Blender
    user folder is ``user_folder`` (none of this process' BLENDER_USER_* settings); the JSON it printed last after
    ``marker``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("BLENDER_USER_")}
    environment["BLENDER_USER_RESOURCES"] = str(user_folder)
    completed = subprocess.run(
        [str(python), "-c", script, *map(str, args)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(marker)]
    assert completed.returncode == 0 and lines, (
        f"Blender subprocess failed (exit {completed.returncode})\n"
        f"--- stdout ---\n{completed.stdout[-4000:]}\n--- stderr ---\n{completed.stderr[-4000:]}"
    )
    return json.loads(lines[-1].removeprefix(marker))
