"""Batch execution: drives the phases through hal, under the PackML machine, writing the record as it goes."""
