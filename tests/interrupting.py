"""Ctrl-C for a child process, as a terminal sends it."""

import signal
from contextlib import contextmanager


@contextmanager
def children_take_ctrl_c():
    """Children started inside handle SIGINT as Python does by default, even where the tests run with SIGINT
    ignored: a job a shell starts in the background without job control ignores it, and a child inherits an
    ignored signal through exec but not a handled one."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
