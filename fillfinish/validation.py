"""Turn file, TOML and pydantic errors into plain messages: "FILE: field.path: what was wrong; allowed: ...".

Shared by the recipe loader and the site config loader, so that every bad input file a person wrote is answered
with the file, the field and what would have been accepted, never with a traceback.
"""

from __future__ import annotations

import datetime
import re
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BaseModel, ValidationError

__all__ = [
    "FileProblemsError",
    "ReadToml",
    "RuleViolations",
    "field_allowed",
    "pydantic_problems",
    "problem",
    "read_toml_file",
]

_MAX_SHOWN = 60  # characters of a bad value shown back to the user


class FileProblemsError(Exception):
    """An input file was rejected; `problems` lists every reason, each "FILE: field: message; allowed: ..."."""

    def __init__(self, path: str | Path, problems: Sequence[str]) -> None:
        self.path = Path(path)
        self.problems: list[str] = list(problems) or [problem(path, "-", "rejected", "a valid file")]
        super().__init__("\n".join(self.problems))


class RuleViolations(ValueError):
    """Raised by a model validator for cross-field rules: each item is (field name, what is wrong, what is allowed)."""

    def __init__(self, items: Sequence[tuple[str, str, str]]) -> None:
        self.items = list(items)
        super().__init__("; ".join(f"{f}: {m}" for f, m, _ in self.items))


def problem(path: str | Path, field: str, message: str, allowed: str) -> str:
    """One problem line in the house style."""
    return f"{path}: {field}: {message}; allowed: {allowed}"


@dataclass(frozen=True)
class ReadToml:
    """A TOML file read from disk: the exact bytes, the decoded text and the parsed document."""

    data: bytes
    text: str
    document: dict[str, Any]


def read_toml_file(path: str | Path, what: str) -> ReadToml:
    """Read and parse a TOML file; raise FileProblemsError for a missing, empty, non-UTF-8 or non-TOML file.

    `what` names the expected content in messages (e.g. "a TOML recipe").
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise FileProblemsError(p, [problem(p, "file", "file not found", f"the path of an existing file ({what})")])
    except IsADirectoryError:
        raise FileProblemsError(p, [problem(p, "file", "is a directory, not a file", f"a file ({what})")])
    except PermissionError:
        raise FileProblemsError(p, [problem(p, "file", "permission denied", f"a readable file ({what})")])
    except OSError as exc:
        raise FileProblemsError(p, [problem(p, "file", f"cannot read ({exc.strerror or exc})", f"a readable file ({what})")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise FileProblemsError(
            p,
            [problem(p, f"line {line}, column {col}", f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                     f"UTF-8 text ({what})")],
        )
    if text.startswith("\ufeff"):  # a byte-order mark some editors write; TOML itself does not allow it
        text = text[1:]
    if not text.strip():
        raise FileProblemsError(p, [problem(p, "file", "file is empty", what)])
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileProblemsError(p, [_toml_problem(p, exc)])
    except (RecursionError, MemoryError, ValueError) as exc:
        raise FileProblemsError(p, [problem(p, "file", f"not valid TOML ({type(exc).__name__})", what)])
    return ReadToml(data=data, text=text, document=document)


_TOML_POS = re.compile(r"^(?P<msg>.*?)\s*\(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)\s*$")


M = typing.TypeVar("M", bound=BaseModel)


def load_toml_model(
    path: str | Path, model: type[M], what: str, error: type[FileProblemsError]
) -> tuple[M, ReadToml]:
    """Read a TOML file and validate it as `model`; raise `error(path, problems)` listing every problem found."""
    p = Path(path)
    try:
        read = read_toml_file(p, what)
    except FileProblemsError as exc:
        raise error(p, exc.problems) from None
    try:
        return model.model_validate(read.document), read
    except ValidationError as exc:
        raise error(p, pydantic_problems(p, exc, model)) from None


def _toml_problem(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """A TOML syntax error with its line and column."""
    raw = str(exc)
    m = _TOML_POS.match(raw)
    if m and m.group("line"):
        where, msg = f"line {m.group('line')}, column {m.group('col')}", m.group("msg")
    elif m:
        where, msg = "end of file", m.group("msg")
    else:
        where, msg = "file", raw
    return problem(path, where, f"not valid TOML: {msg}",
                   'TOML syntax: [section] headers and key = value lines, text in "quotes"')


# ---------------------------------------------------------------------------------------------- pydantic errors


def pydantic_problems(path: str | Path, exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """Every error of a pydantic ValidationError as a problem line, using `model` to describe what is allowed."""
    out: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        ctx = err.get("ctx") or {}
        cause = ctx.get("error")
        if isinstance(cause, RuleViolations):
            for field, message, allowed in cause.items:
                out.append(problem(path, _dotted(loc + tuple(field.split("."))), message, allowed))
            continue
        out.append(_one_problem(path, loc, err, model))
    return out


def _one_problem(path: str | Path, loc: tuple[Any, ...], err: Mapping[str, Any], model: type[BaseModel]) -> str:
    """One pydantic error as a problem line."""
    kind = str(err.get("type", ""))
    value = err.get("input")
    ctx = err.get("ctx") or {}
    field = _dotted(loc) if loc else "file"
    if kind == "extra_forbidden":
        parent = _walk(model, loc[:-1])
        parent_cls = parent if isinstance(parent, type) and issubclass(parent, BaseModel) else _annotation_model(parent)
        names = _field_list(parent_cls, top=len(loc) == 1) if parent_cls is not None else "no further fields"
        what = "unknown section" if len(loc) == 1 and isinstance(value, dict) else "unknown field"
        return problem(path, field, f"{what} (check the spelling)", names)
    target = _walk(model, loc)
    allowed = field_allowed(target) if target is not None else _ctx_allowed(kind, ctx)
    if kind == "missing":
        section = _annotation_model(target)
        what = f"missing section [{field}]" if section is not None else "missing required field"
        return problem(path, field, what, allowed)
    if kind == "value_error":
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        return problem(path, field, f"{msg} (got {_show(value)})", allowed)
    return problem(path, field, f"{_message(kind, err)} (got {_show(value)})", allowed)


def _message(kind: str, err: Mapping[str, Any]) -> str:
    """A short, plain statement of what was wrong."""
    ctx = err.get("ctx") or {}
    plain = {
        "int_type": "not a whole number",
        "int_parsing": "not a whole number",
        "int_from_float": "not a whole number",
        "float_type": "not a number",
        "float_parsing": "not a number",
        "finite_number": "not a finite number",
        "bool_type": "not true or false",
        "bool_parsing": "not true or false",
        "string_type": "not text",
        "date_type": "not a date",
        "date_parsing": "not a date",
        "date_from_datetime_inexact": "a date and time, not a date",
        "model_type": "not a table",
        "model_attributes_type": "not a table",
        "dict_type": "not a table",
        "literal_error": "not one of the allowed values",
        "string_pattern_mismatch": "wrong format",
        "string_too_short": "too short",
        "string_too_long": "too long",
        "too_short": "too few entries",
        "greater_than": f"must be > {ctx.get('gt')}",
        "greater_than_equal": f"must be >= {ctx.get('ge')}",
        "less_than": f"must be < {ctx.get('lt')}",
        "less_than_equal": f"must be <= {ctx.get('le')}",
    }
    return plain.get(kind, str(err.get("msg", "invalid value")))


def _ctx_allowed(kind: str, ctx: Mapping[str, Any]) -> str:
    """What is allowed, from the error's own context when the field cannot be found in the model."""
    if "expected" in ctx:
        return str(ctx["expected"])
    for key, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx:
            return f"a value {sym} {ctx[key]}"
    if "pattern" in ctx:
        return f"text matching {ctx['pattern']}"
    return "see docs/recipes.md"


def _show(value: Any) -> str:
    """A bad value shown back, short, with its TOML type."""
    kinds = {bool: "true/false", int: "whole number", float: "number", str: "text", dict: "table", list: "array"}
    kind = next((name for t, name in kinds.items() if type(value) is t), type(value).__name__)
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return f"{text}, {kind}"


def _dotted(loc: Iterable[Any]) -> str:
    """('fill', 'fill_volume_ul') -> 'fill.fill_volume_ul'."""
    return ".".join(str(x) for x in loc)


# ------------------------------------------------------------------------------ describing what a field allows


def _annotation_model(target: Any) -> type[BaseModel] | None:
    """The model class a field or annotation holds, if any."""
    ann = getattr(target, "annotation", target)
    for t in (ann, *_union_args(ann)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _union_args(ann: Any) -> tuple[Any, ...]:
    """Members of an Optional/Union annotation other than None."""
    if get_origin(ann) in (typing.Union, types.UnionType):
        return tuple(a for a in get_args(ann) if a is not type(None))
    return ()


def _walk(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The FieldInfo at `loc` in `model` (or the model class for an empty loc); None if it is not a model field."""
    current: Any = model
    for i, step in enumerate(loc):
        cls = current if isinstance(current, type) and issubclass(current, BaseModel) else _annotation_model(current)
        if cls is not None:
            info = cls.model_fields.get(str(step))
            if info is None:
                return None
            current = info
            continue
        ann = getattr(current, "annotation", None)
        if get_origin(ann) is dict and i == len(loc) - 1:
            return get_args(ann)[1]  # a value of a name -> value table
        return None
    return current


def _field_list(cls: type[BaseModel], top: bool) -> str:
    """The fields (or sections, at top level) a model accepts."""
    names = [f"[{n}]" if top and _annotation_model(f) else n for n, f in cls.model_fields.items()]
    return ", ".join(names)


def field_allowed(target: Any) -> str:
    """Describe what a field accepts: type, range, description (unit and meaning)."""
    cls = target if isinstance(target, type) and issubclass(target, BaseModel) else _annotation_model(target)
    if cls is not None:
        return f"a table with {_field_list(cls, top=False)}"
    ann = getattr(target, "annotation", target)
    metadata = list(getattr(target, "metadata", []) or [])
    description = getattr(target, "description", None)
    if get_origin(ann) is typing.Annotated:  # e.g. the value type of a name -> value table
        ann, *extras = get_args(ann)
        for extra in extras:
            metadata.extend(getattr(extra, "metadata", []) or [extra])
            description = description or getattr(extra, "description", None)
            pattern = getattr(extra, "pattern", None) or next(
                (getattr(m, "pattern", None) for m in getattr(extra, "metadata", []) if getattr(m, "pattern", None)),
                None)
            if pattern and not description:
                description = f"matching {pattern}"
    text = _type_phrase(ann)
    bounds = []
    for m in metadata:
        if isinstance(m, annotated_types.Gt):
            bounds.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.Ge):
            bounds.append(f">= {m.ge}")
        elif isinstance(m, annotated_types.Lt):
            bounds.append(f"< {m.lt}")
        elif isinstance(m, annotated_types.Le):
            bounds.append(f"<= {m.le}")
        elif isinstance(m, annotated_types.MinLen) and m.min_length > 0:
            bounds.append("not empty")
    if bounds:
        text += " " + " and ".join(bounds)
    if description:
        text += f" ({description})"
    return text


def _type_phrase(ann: Any) -> str:
    """A plain name for a type annotation."""
    args = _union_args(ann)
    if args:
        return " or ".join(_type_phrase(a) for a in args)
    origin = get_origin(ann)
    if origin is typing.Annotated:
        return _type_phrase(get_args(ann)[0])
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(ann))
    if origin is dict:
        return 'a table of name = "text" lines'
    phrases = {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        str: "text",
        datetime.date: "a date (YYYY-MM-DD)",
        Path: "a file path",
    }
    return phrases.get(ann, getattr(ann, "__name__", str(ann)))
