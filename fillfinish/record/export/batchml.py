"""The batch record as an ISA-88/ISA-95 BatchML BatchProductionRecord (B2MML V0701), valid against the MESA XSD.

Mapping (docs/exports.md has the full table): the header becomes the record's own fields (ID, BatchID, LotID,
MaterialDefinitionID, dates) and a ControlRecipeRecord (recipe name, version, SHA-256, snapshot); EVERY entry becomes
one Event, in seq order, with its time, hash, kind (Category), actor (PersonID or ComputerID), data (one Value per key
plus the canonical JSON as a UserAttribute, so the hash chain can be re-verified from the BatchML alone) and links to
the entries it refers to (AssociatedEventID). Derived views point back to those events: DataSets (particle, UV and
check-weight trends, OrderIndex = entry seq), Samples (weighed vials), PersonnelIdentification (the people) and
Comments (verify result, review by exception).

The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International.
The Batch Markup Language (BatchML) is used courtesy of MESA International.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree

from fillfinish.record.chain import canonical_json, format_ts
from fillfinish.record.export.plots import particle_series, uv_series, weight_series
from fillfinish.record.export.summary import RecordSnapshot, final_state, is_person, review, signatures
from fillfinish.record.models import Entry
from fillfinish.record.typed_entries import TypedEntry, of_type, read_typed, typed_or_unreadable
from fillfinish.record.vocabulary import (
    AlarmAck,
    AlarmClear,
    AlarmRaised,
    DispositionData,
    EntryData,
    MasterData,
    MaterialReconciliation,
    Measurement,
    VialJudgement,
)

NS = "http://www.mesa.org/xml/B2MML"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "batchml"
SCHEMA_FILE = SCHEMA_DIR / "BatchML-BatchProductionRecord.xsd"
MAPPING_VERSION = "fillfinish-batchml/1"
"""Written as BatchProductionRecordSpec: names this mapping of the record onto BatchML (bump when it changes)."""

EVENT_TYPES: dict[str, tuple[str, str]] = {
    "state": ("Procedural Execution", "State Change"),
    "phase": ("Procedural Execution", "Status Change"),
    "run_start": ("Procedural Execution", "State Command"),
    "monitoring": ("Procedural Execution", "Status Change"),
    "post_fill_monitoring": ("Procedural Execution", "Status Change"),
    "uv_start": ("Procedural Execution", "Process"),
    "uv_cycle": ("Procedural Execution", "Process"),
    "tip_step": ("Material", "Consume"),
    "line_check": ("Equipment", "Status Change"),
    "intent": ("Equipment", "Other:intent"),
    "outcome": ("Equipment", "Other:outcome"),
    "safe_state": ("Equipment", "State Change"),
    "measurement": ("General", "Process Data"),
    "alarm": ("Alarm", "Other:alarm"),
    "alarm_ack": ("Alarm", "Prompt Response"),
    "alarm_clear": ("Alarm", "Status Change"),
    "interlock": ("Alarm", "Other:interlock"),
    "vial": ("Material", "Produce"),
    "reconciliation": ("Material", "Reconciliation"),
    "master_data": ("Material", "Other:master data checked at start"),
    "material_reconciliation": ("Material", "Reconciliation"),
    "operator": ("Operator", "State Command"),
    "command_refused": ("Operator", "Security"),
    "signature": ("Operator", "Other:signature"),
    "exception": ("Message", "System"),
    "deviation": ("Message", "Other:deviation"),
    "disposition": ("General", "Status Change"),
    "recovery": ("General", "System"),
}
"""Record kind -> (EventType, EventSubType); 'Other:x' is written as Other with OtherValue="x". Unknown kinds map to
Other/Other with OtherValue = the kind."""

BATCH_STATUS = {"Execute": "Running", "Complete": "Complete", "Holding": "Holding", "Held": "Held",
                "Stopping": "Stopping", "Stopped": "Stopped", "Aborting": "Aborting", "Aborted": "Aborted",
                "Idle": "Idle", "Suspending": "Pausing", "Suspended": "Paused", "Unholding": "Restarting",
                "Unsuspending": "Restarting"}
"""PackML state -> BatchML BatchStatus (anything else: Other with OtherValue = the PackML state)."""

UNITS: tuple[tuple[str, str], ...] = (
    ("_mw_cm2", "mW/cm2"), ("_mj_cm2", "mJ/cm2"), ("_l_min", "L/min"), ("per_m3", "1/m3"), ("_per_m3", "1/m3"),
    ("_m_s", "m/s"), ("_pa", "Pa"), ("_ul", "uL"), ("_g", "g"), ("_s", "s"), ("_hours", "h"), ("_ml", "mL"),
)
"""Unit of a data key from its suffix (the record puts units in field names)."""
REFERENCE_FIELDS = ("intent", "alarm_entry", "last_seq")
"""Vocabulary fields whose integer value is the seq of another entry of the same batch (Outcome.intent,
DeviationEvent.alarm_entry, Recovery.last_seq)."""


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


def _references(entry: Entry, d: EntryData) -> list[int]:
    """Seqs of other entries this entry points to (intent, alarm_entry, disposition reasons' entries, ...)."""
    refs: list[int] = []
    for name in REFERENCE_FIELDS:
        value = getattr(d, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value != entry.seq:
            refs.append(value)
    for reason in getattr(d, "reasons", None) or []:
        if isinstance(reason, Mapping):
            refs += [s for s in reason.get("entries") or [] if isinstance(s, int) and not isinstance(s, bool)]
    return sorted(set(refs))


def _event(events: etree._Element, entry: Entry) -> None:
    """One record entry as a BatchML Event (see the module docstring for the mapping). Every field is exported as
    written (the raw data is what the hash covers); the typed model `t` gives the fields with a BatchML meaning."""
    d = entry.data
    t = typed_or_unreadable(entry)
    ev = _add(events, "Event")
    _add(ev, "EntryID", event_id(entry.batch_id, entry.seq))
    _add(ev, "ObjectType", "Event")
    _add(ev, "TimeStamp", format_ts(entry.ts))
    _add(ev, "ExternalReference", entry.hash, schemeName="sha256")  # SHA-256(prev_hash + canonical entry JSON)
    summary = " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, sort_keys=True)}" for k, v in sorted(d.items()))
    _add(ev, "Description", f"{entry.kind}: {summary}" if summary else entry.kind)
    event_type, sub_type = EVENT_TYPES.get(entry.kind, (f"Other:{entry.kind}", f"Other:{entry.kind}"))
    _coded(ev, "EventType", event_type)
    _coded(ev, "EventSubType", sub_type)
    previous = {"from"} if entry.kind == "state" else set()
    for key in sorted(d):
        if key not in previous:
            _value(ev, "Value", key, d[key])
    for key in sorted(previous & set(d)):
        _value(ev, "PreviousValue", key, d[key])
    for text in (getattr(t, "message", None), getattr(t, "reason", None), getattr(t, "detail", None)):
        if isinstance(text, str) and text:
            _add(ev, "MessageText", text)
    if is_person(entry.actor):
        _add(ev, "PersonID", entry.actor)
    sig = getattr(t, "signature", None)
    if isinstance(sig, Mapping) and isinstance(sig.get("name"), str) and sig["name"] != entry.actor:
        _add(ev, "PersonID", sig["name"])
    if not is_person(entry.actor):
        _add(ev, "ComputerID", f"fillfinish/{entry.actor}")
    phase = getattr(t, "phase", None)
    if isinstance(phase, str):
        _add(ev, "ProceduralElementReference", phase)
    _add(ev, "Category", entry.kind)
    if isinstance(t, (AlarmRaised, AlarmAck, AlarmClear)):
        alarm = _add(ev, "AlarmData")
        _add(alarm, "AlarmEvent", {"alarm": "Detected", "alarm_ack": "Acknowledged", "alarm_clear": "Cleared"}[
            entry.kind])
        _add(alarm, "AlarmType", t.source)
        if isinstance(t, AlarmRaised) and t.limit is not None:
            _value(alarm, "AlarmLimit", "limit", t.limit)
        if isinstance(t, AlarmRaised):
            _add(alarm, "Priority", t.severity)
    for ref in _references(entry, t):
        _add(ev, "AssociatedEventID", event_id(entry.batch_id, ref))
    _attribute(ev, "seq", entry.seq)
    _attribute(ev, "global_seq", entry.global_seq)
    _attribute(ev, "actor", entry.actor)
    _attribute(ev, "prev_hash", entry.prev_hash, "SHA-256 of the previous entry (entry 1: the header hash)")
    _attribute(ev, "data", canonical_json(d), "the entry's data as canonical JSON, exactly as hashed")
    if isinstance(sig, Mapping):
        _attribute(ev, "signature", f"{sig.get('name', entry.actor)} ({sig.get('meaning', 'signed')})",
                   "21 CFR 11.50: printed name and meaning; date and time = TimeStamp")


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


def _comments(root: etree._Element, snap: RecordSnapshot) -> None:
    """Comments: the verify result and the review-by-exception summary at export time."""
    bid = snap.header.batch_id
    summary = review(snap)
    comments = _add(root, "Comments")
    now = format_ts(snap.generated_at)
    c = _add(comments, "Comment")
    _record_entry(c, f"{bid}/integrity", "Comment", now, description="record integrity at export")
    _add(c, "RecordReference", bid)
    _add(c, "CommentText", f"hash chain {summary.integrity_text}")
    if snap.ledger is not None:
        led = snap.ledger
        head = f"{led.head[0]}:{led.head[1]}" if led.head else "empty"
        _add(c, "CommentText", f"global ledger {'intact' if led.ok else 'NOT INTACT'}, {led.rows_checked} rows, "
                               f"head {head}")
    _add(c, "PersonID", "fillfinish")
    c = _add(comments, "Comment")
    _record_entry(c, f"{bid}/review", "Comment", now, description="review by exception (EU GMP Chapter 4, 4.20)")
    _add(c, "RecordReference", bid)
    for check in summary.checks:
        _add(c, "CommentText", f"{check.name}: {check.status.upper()}: {check.detail}")
    counts = summary.exception_counts()
    _add(c, "CommentText", "exceptions: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "none"))
    for v in summary.viable:
        _add(c, "CommentText", f"viable {v['sample_id']} {v['type']} {v['location']} grade {v['grade']}: "
                               f"{'-' if v['cfu'] is None else v['cfu']} CFU ({v['limits']}) {v['level'] or 'missing'}"
                               f"; read by {v['reader'] or '-'}, verified by {v['verified_by'] or '-'}")
    for dev in summary.deviations:
        _add(c, "CommentText", f"deviation {dev['number'] or '(not numbered)'}: {dev['title']}; {dev['state']}; "
                               f"classification {dev['classification'] or '-'}; impact {dev['impact'] or '-'}")
    if summary.media_fill:
        m = summary.media_fill
        _add(c, "CommentText", f"media fill {'passed' if m.get('passed') else 'FAILED'}: incubated {m.get('incubated')}"
                               f", growth {m.get('growth')}, not incubated {m.get('not_incubated')}")
    if summary.retained_samples:
        r = summary.retained_samples
        _add(c, "CommentText", f"retained samples: vials {r.get('vials')} at {r.get('location')}, until "
                               f"{r.get('retention_until') or 'set at QA release'}")
    _add(c, "CommentText", f"QA decision: {summary.qa_decision_text()}")
    _add(c, "PersonID", "fillfinish")


def _control_recipe(root: etree._Element, snap: RecordSnapshot, state: str) -> None:
    """ControlRecipes: the recipe the batch ran (name, version, SHA-256, TOML snapshot), product and batch size."""
    h = snap.header
    record = _add(_add(root, "ControlRecipes"), "ControlRecipeRecord")
    _record_entry(record, f"{h.batch_id}/recipe", "Control Recipe", format_ts(h.created_at), h.recipe_hash,
                  f"recipe {h.recipe_name} version {h.recipe_version}, sha256 {h.recipe_hash}", scheme="sha256")
    recipe = _add(record, "ControlRecipe")
    _add(recipe, "ID", h.recipe_name)
    _add(recipe, "Version", h.recipe_version)
    _add(recipe, "Description", f"sha256 {h.recipe_hash}")
    _add(recipe, "BatchID", h.batch_id)
    header = _add(recipe, "Header")
    _add(header, "ProductID", h.product_code)
    _add(header, "ProductName", h.product)
    size = _add(header, "BatchSize")
    _add(size, "Nominal", h.planned_vials, unitCode="vial")
    _add(size, "UnitOfMeasure", "vial")
    _coded(header, "Status", BATCH_STATUS.get(state, f"Other:{state}"))
    for ident, text in (("recipe_snapshot", h.recipe_snapshot),
                        ("site_config", json.dumps(h.site_config, sort_keys=True, ensure_ascii=False)),
                        ("mode", h.mode)):
        other = _add(recipe, "OtherInformation")
        _add(other, "ID", ident)
        _add(other, "Description", text)


def _tag(data_set: etree._Element, index: int, name: str, unit: str, description: str) -> None:
    """One TagSpecification of a DataSet."""
    tag = _add(data_set, "TagSpecification")
    _add(tag, "TagIndex", index)
    _add(tag, "DataType", "double")
    _add(tag, "UnitOfMeasure", unit)
    _add(tag, "Alias", name)
    _add(tag, "Description", description)


def _data_set(parent: etree._Element, entry_id: str, description: str,
              source: Iterable[tuple[Entry, list[float | int | None]]], tags: list[tuple[str, str, str]]) -> None:
    """A DataSet from (entry, values) pairs: one OrderedData per entry (OrderIndex = its seq), one value per tag.

    `tags` = (alias, unit, description); entries missing a numeric value for a tag are left out.
    """
    rows = []
    for entry, values in source:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            rows.append((entry, values))
    if not rows:
        return
    ds = _add(parent, "DataSet")
    _record_entry(ds, entry_id, "Data Set", format_ts(rows[0][0].ts), description=description)
    _add(ds, "StartTime", format_ts(rows[0][0].ts))
    _add(ds, "EndTime", format_ts(rows[-1][0].ts))
    for i, (alias, unit, text) in enumerate(tags, start=1):
        _tag(ds, i, alias, unit, text)
    for entry, values in rows:
        ordered = _add(ds, "OrderedData")
        _add(ordered, "OrderIndex", entry.seq)
        _add(ordered, "TimeValue", format_ts(entry.ts))
        for i, value in enumerate(values, start=1):
            dv = _add(ordered, "DataValue")
            _add(dv, "TagIndex", i)
            _add(dv, "Value", repr(float(value or 0)))


def _data_sets(root: etree._Element, snap: RecordSnapshot) -> None:
    """DataSets: particle counts, each UV cycle's irradiance and dose, check-weights (all point back to events)."""
    entries = list(snap.entries)
    rows = read_typed(entries)
    bid = snap.header.batch_id
    has_particles = particle_series(entries, snap.header.created_at).minutes
    cycles = uv_series(entries)
    has_weights = weight_series(entries).vial
    if not (has_particles or cycles or has_weights):
        return
    sets = _add(root, "DataSets")
    _data_set(sets, f"{bid}/dataset/particles", "particle counts, grade A (OrderIndex = record entry seq)",
              ((m.entry, [m.data.per_m3_0_5um, m.data.per_m3_5um]) for m in of_type(rows, Measurement)
               if m.data.signal == "particles"),
              [("particles_0_5um", "1/m3", "particles >=0.5 um per m3"),
               ("particles_5um", "1/m3", "particles >=5 um per m3")])
    for series in cycles:
        _data_set(sets, f"{bid}/dataset/{series.cycle_id}", f"UV {series.step} ({series.sensor}), target "
                  f"{series.target_mj_cm2} mJ/cm2 (OrderIndex = record entry seq)",
                  ((m.entry, [m.data.irradiance_mw_cm2, m.data.dose_mj_cm2]) for m in of_type(rows, Measurement)
                   if m.data.cycle_id == series.cycle_id),
                  [("irradiance", "mW/cm2", "UV irradiance"), ("dose", "mJ/cm2", "cumulative UV dose")])
    _data_set(sets, f"{bid}/dataset/check_weights", "net fill weight of weighed vials (OrderIndex = record entry seq)",
              ((v.entry, [v.data.vial, v.data.net_g, v.data.expected_g, v.data.tolerance_g])
               for v in of_type(rows, VialJudgement)),
              [("vial", "vial", "vial number"), ("net_weight", "g", "net weight"),
               ("expected_weight", "g", "expected weight"), ("tolerance", "g", "tolerance (+/-)")])


def _personnel(root: etree._Element, snap: RecordSnapshot) -> None:
    """PersonnelIdentification: one manifest per person named in the record (header operator, actors, signers)."""
    h = snap.header
    roles: dict[str, list[str]] = {h.operator: ["batch operator (header)"]}
    for entry in snap.entries:
        if is_person(entry.actor):
            roles.setdefault(entry.actor, [])
            if "recorded entries" not in roles[entry.actor]:
                roles[entry.actor].append("recorded entries")
    for sig in signatures(snap.entries):
        roles.setdefault(sig.name, []).append(f"signed '{sig.meaning}' at {format_ts(sig.ts)} (entry {sig.seq})")
    people = _add(root, "PersonnelIdentification")
    for name, what in roles.items():
        manifest = _add(people, "PersonnelIdentificationManifest")
        _record_entry(manifest, f"{h.batch_id}/person/{name}", "Personnel Identification Manifest")
        _add(manifest, "RecordReference", h.batch_id)
        _add(manifest, "Name", name)
        _add(manifest, "ChangeIndication", "none")
        _add(manifest, "Reason", "; ".join(what))


def _materials(root: etree._Element, snap: RecordSnapshot) -> None:
    """OperationsPerformances: the material lots of the batch (its `master_data` entry at start) as MaterialActual,
    with the vial reconciliation (used, rejected, returned) when the batch recorded one."""
    rows = read_typed(snap.entries)
    starts = of_type(rows, MasterData)
    start = starts[0] if starts else None
    lots = start.data.materials if start is not None else None
    if start is None or not lots:
        return
    recs = of_type(rows, MaterialReconciliation)
    vials = (recs[-1].data.vials if recs else None) or {}
    bid = snap.header.batch_id
    record = _add(_add(root, "OperationsPerformances"), "OperationsPerformanceRecord")
    _record_entry(record, f"{bid}/materials", "Other", format_ts(start.ts), event_id(bid, start.seq),
                  "material lots checked at start (approved, unexpired, right material) and their use")
    record.find(_q("ObjectType")).set("OtherValue", "Material Actual")  # type: ignore[union-attr]
    performance = _add(record, "OperationsPerformance")
    _add(performance, "ID", bid)
    _add(performance, "OperationsType", "Production")
    response = _add(performance, "OperationsResponse")
    _add(response, "ID", bid)
    _add(response, "OperationsType", "Production")
    segment = _add(response, "SegmentResponse")
    _add(segment, "ID", f"{bid}/fill")
    for slot, lot in sorted(lots.items()):
        if not isinstance(lot, Mapping):
            continue
        actual = _add(segment, "MaterialActual")
        _add(actual, "ID", f"{bid}/material/{slot}")
        _add(actual, "MaterialDefinitionID", slot)
        _add(actual, "MaterialLotID", str(lot.get("lot")))
        _add(actual, "Description", f"supplier {lot.get('supplier')} lot {lot.get('supplier_lot')}, expiry "
                                    f"{lot.get('expiry')}, certificate {lot.get('certificate')}, approved by "
                                    f"{lot.get('approved_by')}")
        _add(actual, "MaterialUse", "Consumed")
        if slot == "vial" and vials:
            for key in ("used", "rejected", "returned"):
                quantity = _add(actual, "Quantity")
                _add(quantity, "QuantityString", str(vials.get(key)))
                _add(quantity, "UnitOfMeasure", "pcs")
                _add(quantity, "Key", key)


def _samples(root: etree._Element, snap: RecordSnapshot) -> None:
    """Samples: every weighed vial as a check-weight sample with its test result (accepted or rejected)."""
    vials = [v for v in of_type(read_typed(snap.entries), VialJudgement) if v.data.net_g is not None]
    if not vials:
        return
    bid = snap.header.batch_id
    samples = _add(root, "Samples")
    for row in vials:
        _sample(samples, bid, row)


def _sample(samples: etree._Element, bid: str, row: TypedEntry[VialJudgement]) -> None:
    """One weighed vial as a Sample with its SampleTest and result."""
    entry, d = row.entry, row.data
    base = f"{bid}/vial/{d.vial}"
    sample = _add(samples, "Sample")
    _record_entry(sample, base, "Sample", format_ts(entry.ts), event_id(bid, entry.seq),
                  f"check-weight of vial {d.vial}")
    _add(sample, "SampleSourceID", f"vial {d.vial}")
    if d.volume_ul is not None:
        size = _add(sample, "SampleSize")
        _add(size, "QuantityString", d.volume_ul)
        _add(size, "DataType", "double")
        _add(size, "UnitOfMeasure", "uL")
    _add(sample, "SampleType", "in-process check-weight")
    test = _add(sample, "SampleTest")
    _record_entry(test, f"{base}/test", "Sample Test", format_ts(entry.ts))
    _add(test, "TestCode", "gravimetric")
    _add(test, "TestName", "net fill weight")
    result = _add(test, "SampleTestResult")
    _record_entry(result, f"{base}/result", "Sample Test Result", format_ts(entry.ts), event_id(bid, entry.seq),
                  d.reason or None)
    _add(result, "TestDisposition", d.status)
    _value(result, "Results", "net_g", d.net_g)
    for key, value in (("expected_g", d.expected_g), ("tolerance_g", d.tolerance_g)):
        if value is not None:
            _value(result, "ExpectedResults", key, value)


def batchml_tree(snap: RecordSnapshot) -> etree._ElementTree:
    """The BatchProductionRecord document of a record snapshot (element order as the XSD requires)."""
    h = snap.header
    entries = list(snap.entries)
    state = final_state(entries)
    dispositions = of_type(read_typed(entries), DispositionData)
    disposition = dispositions[-1] if dispositions else None
    root = etree.Element(_q("BatchProductionRecord"), nsmap={None: NS, "xsi": XSI})
    _add(root, "ID", h.batch_id)
    _record_entry(root, h.batch_id, "Batch Production Record", format_ts(h.created_at), h.header_hash,
                  f"{h.product} ({h.product_code}), lot {h.lot}, {h.planned_vials} vials planned, "
                  f"{h.mode.replace('_', ' ')}", scheme="sha256 header hash")
    _add(root, "Description", "Exported from the hash-chained electronic batch record of fillfinish. "
                              "The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA "
                              "International. The Batch Markup Language (BatchML) is used courtesy of MESA "
                              "International.")
    if disposition is not None:
        _add(root, "Description", f"disposition: {disposition.data.verdict}")
    _add(root, "PublishedDate", format_ts(snap.generated_at))
    _add(root, "CreationDate", format_ts(h.created_at))
    _add(root, "BatchID", h.batch_id)
    _add(root, "BatchProductionRecordSpec", MAPPING_VERSION)
    if entries:
        _add(root, "LastChangedDate", format_ts(entries[-1].ts))
    _add(root, "LotID", h.lot)
    _add(root, "MaterialDefinitionID", h.product_code)
    _add(root, "RecordStatus", "Closed" if disposition is not None else "Open")
    _comments(root, snap)
    _control_recipe(root, snap, state)
    _data_sets(root, snap)
    events = _add(root, "Events")
    for entry in entries:
        _event(events, entry)
    _personnel(root, snap)
    _materials(root, snap)
    _samples(root, snap)
    return etree.ElementTree(root)


def batchml_bytes(snap: RecordSnapshot) -> bytes:
    """The BatchML document as UTF-8 XML bytes with declaration, pretty-printed."""
    return etree.tostring(batchml_tree(snap), xml_declaration=True, encoding="UTF-8", pretty_print=True)


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    """The compiled BatchML BatchProductionRecord schema shipped in the package (MESA V0701, 34 XSD files)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(SCHEMA_FILE), parser))


def validate(document: bytes | etree._ElementTree | etree._Element) -> list[str]:
    """Validation errors of a BatchML document against the XSD ('line N: message'); [] when it is valid."""
    if isinstance(document, bytes):
        try:
            document = etree.fromstring(document, etree.XMLParser(no_network=True, resolve_entities=False))
        except etree.XMLSyntaxError as exc:
            return [f"not well-formed XML: {exc}"]
    xsd = schema()
    if xsd.validate(document):
        return []
    return [f"line {error.line}: {error.message}" for error in xsd.error_log]  # type: ignore[attr-defined]
