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
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from lxml import etree

from fillfinish.record.chain import canonical_json, format_ts
from fillfinish.record.export.batchml_views import _data_sets, _materials, _personnel, _samples
from fillfinish.record.export.batchml_xml import (  # noqa: F401 - NS, XSI, unit_of are part of this module's API
    NS,
    XSI,
    _add,
    _attribute,
    _coded,
    _q,
    _record_entry,
    _value,
    event_id,
    unit_of,
)
from fillfinish.record.export.summary import RecordSnapshot, final_state, is_person, review
from fillfinish.record.models import Entry
from fillfinish.record.typed_entries import of_type, read_typed, typed_or_unreadable
from fillfinish.record.vocabulary import AlarmAck, AlarmClear, AlarmRaised, DispositionData, EntryData

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

REFERENCE_FIELDS = ("intent", "alarm_entry", "last_seq")
"""Vocabulary fields whose integer value is the seq of another entry of the same batch (Outcome.intent,
DeviationEvent.alarm_entry, Recovery.last_seq)."""


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
