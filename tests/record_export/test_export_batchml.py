"""BatchML export: valid against the shipped MESA XSD, holds the header and every entry (re-verifiable)."""

from __future__ import annotations

from dataclasses import replace

from lxml import etree

from fillfinish.record import RecordStore
from fillfinish.record.chain import entry_hash
from fillfinish.record.export import load_snapshot, render
from fillfinish.record.export.batchml import NS, SCHEMA_DIR, batchml_bytes, batchml_tree, validate

N = {"b": NS}


def _attr(event: etree._Element, name: str) -> str:
    """The ValueString of an event's UserAttribute `name`."""
    return event.xpath(f"b:UserAttribute[b:AttributeID='{name}']/b:Value/b:ValueString/text()", namespaces=N)[0]


def test_schemas_ship_with_the_package() -> None:
    """The 34 XSD files, the README and MESA's LICENSE are inside the package."""
    assert len(list(SCHEMA_DIR.glob("*.xsd"))) == 34
    assert "courtesy of MESA International" in (SCHEMA_DIR / "LICENSE").read_text()
    assert (SCHEMA_DIR / "README.md").is_file()


def test_batchml_validates(full_record: tuple[RecordStore, str], clean_record: tuple[RecordStore, str]) -> None:
    """Both records give documents valid against BatchML-BatchProductionRecord.xsd."""
    for store, batch in (full_record, clean_record):
        data = batchml_bytes(load_snapshot(store, batch))
        assert data.startswith(b"<?xml")
        assert validate(data) == []


def test_batchml_has_header_and_every_entry(full_record: tuple[RecordStore, str]) -> None:
    """Batch id, product, lot in the document; one Event per entry with kind, time and a recomputable hash."""
    store, batch = full_record
    header, entries = store.batch(batch), store.entries(batch)
    root = etree.fromstring(batchml_bytes(load_snapshot(store, batch)))
    assert root.findtext("b:ID", namespaces=N) == batch and root.findtext("b:BatchID", namespaces=N) == batch
    assert root.findtext("b:LotID", namespaces=N) == header.lot
    assert root.findtext("b:MaterialDefinitionID", namespaces=N) == header.product_code
    assert root.xpath("string(.//b:ControlRecipe/b:Header/b:ProductName)", namespaces=N) == header.product
    assert root.xpath("string(.//b:ControlRecipe/b:Version)", namespaces=N) == header.recipe_version
    events = root.findall("b:Events/b:Event", namespaces=N)
    assert [e.findtext("b:EntryID", namespaces=N) for e in events] == [f"{batch}/{x.seq}" for x in entries]
    prev = header.header_hash
    for event, entry in zip(events, entries, strict=True):
        assert event.findtext("b:Category", namespaces=N) == entry.kind
        ts = event.findtext("b:TimeStamp", namespaces=N)
        digest = event.findtext("b:ExternalReference", namespaces=N)
        assert _attr(event, "prev_hash") == prev
        recomputed = entry_hash(prev, batch_id=batch, seq=int(_attr(event, "seq")), ts=ts, kind=entry.kind,
                                actor=_attr(event, "actor"), data=__import__("json").loads(_attr(event, "data")))
        assert recomputed == digest == entry.hash
        prev = digest
    alarm = next(e for e in events if e.findtext("b:Category", namespaces=N) == "alarm")
    assert alarm.findtext("b:EventType", namespaces=N) == "Alarm"
    assert alarm.findtext("b:AlarmData/b:Priority", namespaces=N) == "action"
    deviation = next(e for e in events if e.findtext("b:Category", namespaces=N) == "deviation")
    assert deviation.findtext("b:AssociatedEventID", namespaces=N) == alarm.findtext("b:EntryID", namespaces=N)
    samples = root.findall("b:Samples/b:Sample", namespaces=N)
    assert len(samples) == 4  # weighed vials 1, 2, 3, 6
    assert {s.findtext(".//b:TestDisposition", namespaces=N) for s in samples} == {"accepted", "rejected"}
    names = root.xpath(".//b:PersonnelIdentificationManifest/b:Name/text()", namespaces=N)
    assert {"alice", "bob", "carol", "Dana QA"} <= set(names)


def test_validation_catches_a_broken_document(clean_record: tuple[RecordStore, str]) -> None:
    """validate() reports an element the XSD does not allow (so a bad mapping cannot slip out)."""
    store, batch = clean_record
    tree = batchml_tree(load_snapshot(store, batch))
    root = tree.getroot()
    root.remove(root.find("b:ID", namespaces=N))
    problems = validate(tree)
    assert problems and "ID" in problems[0]
    assert validate(b"<not-xml") and validate(b"<a/>")


def test_unicode_and_control_characters_stay_valid(clean_record: tuple[RecordStore, str]) -> None:
    """Names in any script and control characters in data still give a valid, well-formed document."""
    store, batch = clean_record
    store.append(batch, "operator", {"command": "Hold", "reason": "Łukasz: Δ check\x07 done"}, "Łukasz")
    snap = load_snapshot(store, batch)
    assert validate(render(snap, "batchml")) == []
    assert validate(batchml_bytes(replace(snap, integrity=None, ledger=None))) == []
