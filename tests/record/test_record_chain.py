"""Property tests of the pure hash-chain functions: canonical JSON and hashes are deterministic and change on any change."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fillfinish.record.chain import (
    CanonicalJSONError,
    canonical_json,
    entry_hash,
    format_ts,
    header_hash,
    ledger_hash,
    parse_ts,
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)
hex64 = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
entry_fields = st.fixed_dictionaries(
    {
        "batch_id": st.text(min_size=1, max_size=20),
        "seq": st.integers(min_value=1, max_value=10**9),
        "ts": st.text(min_size=1, max_size=30),
        "kind": st.text(min_size=1, max_size=16),
        "actor": st.text(min_size=1, max_size=16),
        "data": json_objects,
    }
)


@given(json_values)
def test_canonical_json_is_deterministic_and_round_trips(value: Any) -> None:
    """Same value, same text; loading it back and canonicalising again gives the same text."""
    text = canonical_json(value)
    assert text == canonical_json(value)
    assert canonical_json(json.loads(text)) == text


@given(json_objects)
def test_canonical_json_ignores_key_insertion_order(obj: dict[str, Any]) -> None:
    """Dicts with the same items in another order have the same canonical text."""
    reordered = dict(reversed(list(obj.items())))
    assert canonical_json(reordered) == canonical_json(obj)


@given(st.data(), entry_fields, hex64)
def test_entry_hash_changes_on_any_field_change(data: st.DataObject, fields: dict[str, Any], prev: str) -> None:
    """Changing prev_hash or any one of batch_id, seq, ts, kind, actor, data changes the entry hash."""
    original = entry_hash(prev, **fields)
    assert original == entry_hash(prev, **fields)
    assert len(original) == 64
    name = data.draw(st.sampled_from([*fields, "prev_hash"]))
    if name == "prev_hash":
        other = data.draw(hex64.filter(lambda h: h != prev))
        assert entry_hash(other, **fields) != original
        return
    if name == "seq":
        new_value: Any = data.draw(st.integers(min_value=1, max_value=10**9).filter(lambda s: s != fields["seq"]))
    elif name == "data":
        new_value = data.draw(json_objects.filter(lambda d: canonical_json(d) != canonical_json(fields["data"])))
    else:
        new_value = data.draw(st.text(min_size=1, max_size=20).filter(lambda t: t != fields[name]))
    assert entry_hash(prev, **{**fields, name: new_value}) != original


@given(json_objects, st.text(min_size=1, max_size=10), st.text(min_size=1, max_size=10))
def test_data_value_change_changes_hash(obj: dict[str, Any], key: str, value: str) -> None:
    """Adding or changing one key of data changes the hash."""
    changed = {**obj, key: value}
    if canonical_json(changed) == canonical_json(obj):
        return
    assert entry_hash("0" * 64, batch_id="B", seq=1, ts="t", kind="k", actor="a", data=changed) != entry_hash(
        "0" * 64, batch_id="B", seq=1, ts="t", kind="k", actor="a", data=obj
    )


@given(st.integers(min_value=1), st.text(max_size=10), st.integers(min_value=0), hex64, hex64)
def test_ledger_hash_is_deterministic(gseq: int, batch: str, seq: int, record: str, prev: str) -> None:
    """The ledger hash depends on every field."""
    h = ledger_hash(prev, global_seq=gseq, batch_id=batch, seq=seq, record_hash=record)
    assert h == ledger_hash(prev, global_seq=gseq, batch_id=batch, seq=seq, record_hash=record)
    assert h != ledger_hash(prev, global_seq=gseq + 1, batch_id=batch, seq=seq, record_hash=record)


def test_header_hash_covers_every_field() -> None:
    """Each header field changes the header hash; a missing field is an error."""
    fields: dict[str, Any] = {
        "batch_id": "B-20261125-0001", "created_at": "2026-11-25T09:30:00.000000Z", "product": "P",
        "product_code": "PC", "recipe_name": "r", "recipe_version": "1", "recipe_hash": "a" * 64,
        "recipe_snapshot": "x = 1\n", "lot": "L", "planned_vials": 10, "operator": "alice", "mode": "production",
        "site_config": {"a": 1},
    }
    base = header_hash(fields)
    for name, value in fields.items():
        other = value + 1 if isinstance(value, int) else {"a": 2} if isinstance(value, dict) else value + "x"
        assert header_hash({**fields, name: other}) != base, name
    with pytest.raises(ValueError, match="missing lot"):
        header_hash({k: v for k, v in fields.items() if k != "lot"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"x": math.nan}, "data.x"),
        ({"x": [1, math.inf]}, r"data.x\[1\]"),
        ({1: "a"}, "keys must be strings"),
        ({"when": datetime(2026, 1, 1)}, "datetime"),
        ({"raw": b"\x00"}, "bytes"),
        ({"s": {1, 2}}, "set"),
    ],
)
def test_canonical_json_refuses_what_would_not_round_trip(value: Any, message: str) -> None:
    """NaN/inf, non-str keys and non-JSON types are refused with the path named."""
    with pytest.raises(CanonicalJSONError, match=message):
        canonical_json(value)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)))
def test_timestamp_text_round_trips(moment: datetime) -> None:
    """format_ts/parse_ts round-trip with microseconds; other offsets are converted to UTC."""
    assert parse_ts(format_ts(moment)) == moment
    shifted = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert format_ts(shifted) == format_ts(moment)


def test_naive_timestamp_is_refused() -> None:
    """A naive datetime has no place in the record."""
    with pytest.raises(ValueError, match="no timezone"):
        format_ts(datetime(2026, 11, 25, 9, 30))


@given(st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7)), timezone(timedelta(minutes=330))])))
def test_format_ts_is_the_strftime_text(moment: datetime) -> None:
    """The fast path (isoformat) writes exactly the text the record has always held (strftime's)."""
    assert format_ts(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@given(secret=st.binary(min_size=1, max_size=100), message=st.text(max_size=200))
def test_site_key_mac_is_hmac_sha256(secret: bytes, message: str) -> None:
    """SiteKey.mac (from precomputed pads, keys longer than a block hashed first) is hmac.new's HMAC-SHA256."""
    import hashlib
    import hmac

    from fillfinish.record.sitekey import SiteKey

    assert SiteKey(secret, None).mac(message) == hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()
