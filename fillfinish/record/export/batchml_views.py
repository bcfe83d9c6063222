"""BatchML derived views that point back to the record's Events: DataSets (particle, UV and check-weight trends),
PersonnelIdentification, the material lots (OperationsPerformances) and Samples (weighed vials).

Read typed (fillfinish.record.typed_entries): each kind's model, not string keys into the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from lxml import etree

from fillfinish.record.chain import format_ts
from fillfinish.record.export.batchml_xml import _add, _q, _record_entry, _value, event_id
from fillfinish.record.export.plots import particle_series, uv_series, weight_series
from fillfinish.record.export.summary import RecordSnapshot, is_person, signatures
from fillfinish.record.models import Entry
from fillfinish.record.typed_entries import TypedEntry, of_type, read_typed
from fillfinish.record.vocabulary import MasterData, MaterialReconciliation, Measurement, VialJudgement


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
