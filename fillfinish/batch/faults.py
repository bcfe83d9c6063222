"""How a run leaves its steps early: the exceptions the controller's loop and its steps raise to one another."""

from __future__ import annotations


class BatchEnded(Exception):
    """The run loop leaves because the machine is stopping or aborting."""


class DeviceFault(RuntimeError):
    """A device failed in a way that needs a person (the machine holds)."""


class CompleteRequested(Exception):
    """A person issued Complete during Execute: end the filling early and go through Completing."""
