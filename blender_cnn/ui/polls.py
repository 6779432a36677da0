"""When operators can run, as mixins: one definition of each condition the sidebar's buttons share."""

from ..scene.inspection import INSPECTION_TEXT_PROPERTY
from ..scene.network import is_network


class OnActiveNetwork:
    """Runs on the active object when it is a network this add-on built (greyed out otherwise)."""

    @classmethod
    def poll(cls, context):
        return is_network(getattr(context, "active_object", None))


class OnInspectedNetwork:
    """Runs when the active object shows an inspection (its numbers and text)."""

    @classmethod
    def poll(cls, context):
        active = getattr(context, "active_object", None)
        return active is not None and INSPECTION_TEXT_PROPERTY in active
