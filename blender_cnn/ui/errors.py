"""How operators tell the user about a ``BlenderCNNError``: one ERROR report of its text, and CANCELLED."""

import functools

from ..core.errors import BlenderCNNError


def reports_user_errors(method):
    """Wrap an operator method ``(self, context)`` or ``(self, context, x)`` (execute, invoke, modal, a job's
    ``job_finished``): a ``BlenderCNNError`` it raises is reported once as an ERROR and the method returns
    ``{"CANCELLED"}``; otherwise it returns what the method returned. Any other exception passes through.

    The wrapper takes exactly the method's positional arguments: Blender checks the argument count of
    ``execute`` and ``invoke`` when it registers the class.
    """

    def call(self, *args):
        try:
            return method(self, *args)
        except BlenderCNNError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}

    count = method.__code__.co_argcount
    if count == 2:

        def wrapper(self, context):
            return call(self, context)
    elif count == 3:

        def wrapper(self, context, other):
            return call(self, context, other)
    else:
        raise TypeError(
            f"reports_user_errors wraps (self, context) or (self, context, x), "
            f"not {method.__qualname__} with {count} arguments"
        )
    return functools.wraps(method)(wrapper)
