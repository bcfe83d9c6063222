"""The batch's steps, one per phase of the sequence (fillfinish/machine/phases.py), in the table `STEPS`."""

from fillfinish.batch.steps.base import STEPS, Step

__all__ = ["STEPS", "Step"]
