"""BatchML XML building blocks: namespaced elements, coded values, typed Values with units, record entries.

Used by fillfinish/record/export/batchml.py (the document and its Events) and batchml_views.py (the derived views).
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

NS = "http://www.mesa.org/xml/B2MML"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

UNITS: tuple[tuple[str, str], ...] = (
    ("_mw_cm2", "mW/cm2"), ("_mj_cm2", "mJ/cm2"), ("_l_min", "L/min"), ("per_m3", "1/m3"), ("_per_m3", "1/m3"),
    ("_m_s", "m/s"), ("_pa", "Pa"), ("_ul", "uL"), ("_g", "g"), ("_s", "s"), ("_hours", "h"), ("_ml", "mL"),
)
"""Unit of a data key from its suffix (the record puts units in field names)."""


def _q(tag: str) -> str:
    """Qualified B2MML tag name."""
    return f"{{{NS}}}{tag}"


def _add(parent: etree._Element, tag: str, text: Any = None, **attrs: str) -> etree._Element:
    """Append a B2MML child with optional text and attributes; return it."""
    child = etree.SubElement(parent, _q(tag), {k: v for k, v in attrs.items() if v is not None})
    if text is not None:
        child.text = _clean(str(text))
    return child


def _clean(text: str) -> str:
    """Text without the control characters XML 1.0 cannot carry (they are written as \\uXXXX)."""
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else f"\\u{ord(c):04x}" for c in text)


def _coded(parent: etree._Element, tag: str, value: str) -> etree._Element:
    """An enumerated code element; 'Other:x' becomes <tag OtherValue="x">Other</tag>."""
    if value.startswith("Other:"):
        return _add(parent, tag, "Other", OtherValue=value.split(":", 1)[1])
    return _add(parent, tag, value)


def unit_of(key: str) -> str | None:
    """The unit a data key names in its suffix (e.g. dose_mj_cm2 -> mJ/cm2), or None."""
    for suffix, unit in UNITS:
        if key.endswith(suffix):
            return unit
    return None


def _data_type(value: Any) -> str:
    """BatchML DataType of a JSON value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    return "Other:json"


def _value(parent: etree._Element, tag: str, key: str, value: Any) -> None:
    """A ValueType element: ValueString (JSON for lists/objects, xsi:nil for null), DataType, UnitOfMeasure, Key."""
    elem = _add(parent, tag)
    string = _add(elem, "ValueString")
    if value is None:
        string.set(f"{{{XSI}}}nil", "true")
    elif isinstance(value, str):
        string.text = _clean(value)
    else:
        string.text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    _coded(elem, "DataType", _data_type(value))
    unit = unit_of(key) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if unit is not None:
        _add(elem, "UnitOfMeasure", unit)
    _add(elem, "Key", key)


def _attribute(parent: etree._Element, name: str, value: Any, description: str | None = None) -> None:
    """A UserAttribute with one Value."""
    attr = _add(parent, "UserAttribute")
    _add(attr, "AttributeID", name)
    if description:
        _add(attr, "Description", description)
    _value(attr, "Value", name, value)


def event_id(batch_id: str, seq: int) -> str:
    """The BatchML EntryID of record entry `seq`: 'B-20261125-0001/17'."""
    return f"{batch_id}/{seq}"


def _record_entry(parent: etree._Element, entry_id: str, object_type: str, ts: str | None = None,
                  reference: str | None = None, description: str | None = None, scheme: str | None = None) -> None:
    """The BatchProductionRecordEntryType group (EntryID, ObjectType, TimeStamp, ExternalReference, Description)."""
    _add(parent, "EntryID", entry_id)
    _add(parent, "ObjectType", object_type)
    if ts is not None:
        _add(parent, "TimeStamp", ts)
    if reference is not None:
        _add(parent, "ExternalReference", reference, schemeName=scheme)
    if description:
        _add(parent, "Description", description)
