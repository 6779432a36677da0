"""Apply and save scene style presets: thin operators over ``scene.style``."""

import bpy
from bpy.props import EnumProperty, StringProperty

from ..core.errors import BlenderCNNError
from ..scene.style import apply_style, current_style, load_style, save_style, style_path, style_presets
from ..scene.user_folders import enum_items
from .errors import reports_user_errors
from .polls import OnActiveNetwork

_style_items = enum_items(lambda: style_presets(), "No styles")


class BCNN_OT_apply_style(OnActiveNetwork, bpy.types.Operator):
    """Give the active network and the scene the look of a style preset (colormaps, background, light, materials)"""

    bl_idname = "bcnn.apply_style"
    bl_label = "Apply Style"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "style"

    style: EnumProperty(name="Style", items=_style_items, description="The style preset to apply")

    @reports_user_errors
    def execute(self, context):
        path = style_path(self.style)
        style = apply_style(context.active_object, load_style(path), context.scene, where=path)
        self.report({"INFO"}, f"Applied the style {self.style.partition(':')[2] or self.style}{_render_note(style)}")
        return {"FINISHED"}


def _render_note(style):
    """What a look sets for rendering, in a few words (the engine and size a render should use)."""
    parts = []
    if "engine" in style:
        parts.append(style["engine"].title())
    if "resolution" in style or "print_size" in style:
        render = bpy.context.scene.render
        size = f"{render.resolution_x} x {render.resolution_y} px"
        if "print_size" in style:
            size += f" ({style['print_size'][0]:g} x {style['print_size'][1]:g} in at {style['dpi']:g} dpi)"
        parts.append(size)
    if style.get("bloom_strength", 0.0) > 0.0:
        parts.append("bloom")
    if style.get("depth_of_field", 0.0) > 0.0:
        parts.append("depth of field")
    return f": {', '.join(parts)}" if parts else ""


class BCNN_OT_save_style(OnActiveNetwork, bpy.types.Operator):
    """Save the active network's and the scene's look as a style preset in your user folder"""

    bl_idname = "bcnn.save_style"
    bl_label = "Save Style"
    bl_options = {"REGISTER"}

    name: StringProperty(name="Name", default="my style", description="Name of the style preset file")

    def invoke(self, context, _event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        if not self.name.strip():
            self.report({"ERROR"}, "A style needs a name")
            return {"CANCELLED"}
        try:
            path = save_style(current_style(context.active_object, context.scene), self.name.strip())
        except (BlenderCNNError, OSError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Saved the style {path}")
        return {"FINISHED"}


classes = (BCNN_OT_apply_style, BCNN_OT_save_style)
register, unregister = bpy.utils.register_classes_factory(classes)
