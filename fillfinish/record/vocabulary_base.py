"""The record vocabulary's base: the entry model every kind derives from, the kind table and `@entry_kind`.

Kept apart from the kinds so that every module declaring kinds (vocabulary_machine, _measures, _alarms, _qa,
_registries, and modules that own a kind) imports one small module; fillfinish.record.vocabulary re-exports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field

Scalar = Union[bool, int, float, str, None]
Number = Union[int, float]


class VocabularyError(ValueError):
    """Entry data that the vocabulary does not allow: an unknown kind, an unknown field, a wrong type."""


class EntryData(BaseModel):
    """Base of every entry kind: frozen, strict about field names (extra fields refused), units in field docs."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    KIND: ClassVar[str] = ""
    MEANING: ClassVar[str] = ""


VOCABULARY: dict[str, type[EntryData]] = {}
"""Entry kind -> its model. Filled by `@entry_kind`."""

M = TypeVar("M", bound=type[EntryData])


def entry_kind(kind: str, meaning: str) -> Callable[[M], M]:
    """Declare `kind` with its meaning; the decorated model is its one definition (a second one is an error)."""

    def register(model: M) -> M:
        """Put `model` in VOCABULARY under `kind` with its meaning."""
        if kind in VOCABULARY and VOCABULARY[kind] is not model:
            raise RuntimeError(f"entry kind {kind!r} is declared twice ({VOCABULARY[kind].__name__}, {model.__name__})")
        model.KIND = kind
        model.MEANING = meaning
        VOCABULARY[kind] = model
        return model

    return register


def _f(description: str, default: Any = ..., **kw: Any) -> Any:
    """A documented field (the description names the unit where there is one)."""
    return Field(default, description=description, **kw)
