"""The record's vocabulary: one typed definition per entry kind, validated on write, read back typed by consumers.

Each kind is a frozen pydantic model whose fields say what they hold, in which unit; extra fields are refused, so a
misspelt field or an undeclared kind fails at write time (RecordWriteError) instead of silently breaking a reader
(the old `t` field that the hold-time check read and the controller never wrote). `typed(entry)` gives consumers the
model back. docs/record-vocabulary.md is generated from these models (`python -m fillfinish.record.vocabulary`) and a
test keeps it equal. Modules that own a kind may declare it next to their code with `@entry_kind`.

This module is the vocabulary's one public face: the base (vocabulary_base) and the kinds, declared by area in
vocabulary_machine, vocabulary_measures, vocabulary_alarms, vocabulary_qa and vocabulary_registries, are all
importable from here; it adds validation (`validate_entry`, `typed`) and the data dictionary.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from fillfinish.record.vocabulary_base import (  # noqa: F401 - re-exported: declaring modules import these from here
    VOCABULARY,
    EntryData,
    Number,
    Scalar,
    VocabularyError,
    _f,
    entry_kind,
)
from fillfinish.record.vocabulary_machine import (  # noqa: F401 - re-exported: consumers import the kinds from here
    StateChange,
    CommandRefusedData,
    OperatorCommand,
    PhaseEvent,
    RunStart,
    MasterData,
    MaterialReconciliation,
    LineCheck,
    MonitoringEvent,
    PostFillMonitoring,
    Intent,
    Outcome,
    SafeState,
    Shutdown,
    AccessRefused,
)
from fillfinish.record.vocabulary_measures import (  # noqa: F401 - re-exported: consumers import the kinds from here
    Measurement,
    UvStart,
    UvCycle,
    TipStep,
    VialJudgement,
    Reconciliation,
    RetainedSample,
)
from fillfinish.record.vocabulary_alarms import (  # noqa: F401 - re-exported: consumers import the kinds from here
    AlarmRaised,
    AlarmClear,
    AlarmAck,
    Warning_,
    ExceptionEvent,
    DeviationEvent,
    Recovery,
)
from fillfinish.record.vocabulary_qa import (  # noqa: F401 - re-exported: consumers import the kinds from here
    DispositionData,
    Signature,
    Release,
)

__all__ = [
    "EntryData",
    "VocabularyError",
    "VOCABULARY",
    "entry_kind",
    "validate_entry",
    "typed",
    "data_dictionary",
    # the kinds, for consumers that read entries typed
    "StateChange", "CommandRefusedData", "OperatorCommand", "PhaseEvent", "RunStart", "MasterData",
    "MaterialReconciliation", "LineCheck", "MonitoringEvent", "PostFillMonitoring", "Intent", "Outcome",
    "SafeState", "Shutdown", "AccessRefused", "Measurement", "UvStart", "UvCycle", "TipStep", "VialJudgement",
    "Reconciliation", "RetainedSample", "AlarmRaised", "AlarmClear", "AlarmAck", "Warning_", "ExceptionEvent",
    "DeviationEvent", "Recovery", "DispositionData", "Signature", "Release",
]


def validate_entry(kind: str, data: Mapping[str, Any]) -> EntryData:
    """Check `data` against `kind`'s definition; VocabularyError names the kind, the field and what is allowed."""
    model = VOCABULARY.get(kind)
    if model is None:
        raise VocabularyError(f"unknown entry kind {kind!r}; allowed: {', '.join(sorted(VOCABULARY))} "
                              "(declare a new kind with fillfinish.record.vocabulary.entry_kind)")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(data)"
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
                problems.append(f"{where}: not a field of {kind!r}; allowed: {allowed}")
            else:
                problems.append(f"{where}: {err['msg']}")
        raise VocabularyError(f"{kind!r} entry: " + "; ".join(problems)) from None


def typed(entry: Any) -> EntryData:
    """An Entry's data as its kind's model (VocabularyError for a kind or field the vocabulary does not know)."""
    return validate_entry(entry.kind, entry.data)


def _type_name(annotation: Any) -> str:
    """A short readable type for the data dictionary."""
    text = str(annotation).replace("typing.", "")
    for long, short in (("Union[int, float]", "number"), ("Union[bool, int, float, str, NoneType]", "scalar"),
                        ("NoneType", "null"), ("Optional[", "optional["), ("Literal", "one of")):
        text = text.replace(long, short)
    return text.replace("<class '", "").replace("'>", "")


def data_dictionary() -> str:
    """docs/record-vocabulary.md: every entry kind, its meaning and its fields (generated; do not edit by hand)."""
    lines = ["# Record vocabulary (data dictionary)", "",
             "Generated from `fillfinish/record/vocabulary.py` by `python -m fillfinish.record.vocabulary`; a test keeps",
             "it equal to the code. Every entry of the record is one of these kinds; a write with an unknown kind or",
             "field is refused. Units are in the field descriptions.", ""]
    for kind in sorted(VOCABULARY):
        model = VOCABULARY[kind]
        lines += [f"## `{kind}`", "", model.MEANING, "", "| field | type | required | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            required = "yes" if field.is_required() else "no"
            desc = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{field.alias or name}` | {_type_name(field.annotation).replace('|', '/')} | "
                         f"{required} | {desc} |")
        lines.append("")
    return "\n".join(lines)


from fillfinish.record import vocabulary_registries as _registry_kinds  # noqa: E402,F401 - declares the registry kinds

if __name__ == "__main__":  # run as a script: use the package module, where every kind (registries too) is declared
    from fillfinish.record.vocabulary import data_dictionary as _dictionary

    sys.stdout.write(_dictionary())
