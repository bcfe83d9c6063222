"""Attacks on people and signatures (issue 6 points 4-7): SQL role escalation, a swapped password hash, a forged or
copied signature, a forged release, a simulated batch sent to release, user ids that carry control characters."""

from __future__ import annotations

import datetime as dt

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from fillfinish.people import (
    AuthenticationError,
    ReleaseRefused,
    UserError,
    UserStore,
    manifestations,
    readiness,
    release,
    sign,
)
from fillfinish.people.cli import user_app
from fillfinish.quality.cli import qa_app
from fillfinish.people.trail import check_accounts, trail
from fillfinish.record import RecordStore
from fillfinish.record.export.summary import load_snapshot, review
from people_helpers import BATCH_FIELDS, PASSWORDS, run_batch

runner = CliRunner()
EXPIRY = dt.date(2028, 6, 30)

app = typer.Typer()
app.add_typer(user_app, name="user")
app.add_typer(qa_app, name="qa")


def _sql(store: RecordStore, statement: str, **params: object) -> None:
    """Plain SQL as someone with database access (app_user allows UPDATE by design)."""
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def test_every_account_change_is_in_the_keyed_trail(store: RecordStore, users: UserStore) -> None:
    """Created, role, disabled, unlocked, password set: each an entry with old/new values, actor and reason."""
    users.set_role("olga", "supervisor", actor="root", reason="promoted")
    users.disable("olga", actor="root", reason="left the site")
    users.set_password("sam", "another-pass-2", actor="root")
    events = [(e.data["user"], e.data["event"]) for e in trail(store)]
    assert ("olga", "created") in events and ("olga", "role") in events and ("olga", "disabled") in events
    assert ("sam", "password_set") in events
    role = next(e for e in trail(store, "olga") if e.data["event"] == "role")
    assert (role.actor, role.data["old"], role.data["new"], role.data["reason"]) == (
        "root", {"role": "operator"}, {"role": "supervisor"}, "promoted")
    assert "password_hash" not in str(role.data) and check_accounts(store).ok
    assert store.verify().ok  # the trail is a keyed chain like any batch


def test_sql_role_escalation_is_reported_and_refused(store: RecordStore, users: UserStore) -> None:
    """UPDATE app_user SET role='qa': verify reports it, the account cannot log in, so it cannot release."""
    batch = run_batch(store, alarm=False)
    _sql(store, "UPDATE app_user SET role = 'qa' WHERE username = 'sam'")
    report = store.verify()
    assert not report.ok and report.accounts is not None and not report.accounts.ok
    assert any("sam: role 'supervisor' in the trail, 'qa' now" in line for line in report.lines())
    with pytest.raises(AuthenticationError, match="differs from its audit trail"):
        users.authenticate("sam", PASSWORDS["sam"])
    with pytest.raises(AuthenticationError):
        release(store, batch, "sam", PASSWORDS["sam"], users=users, expiry=EXPIRY)
    assert store.entries(batch, kinds=["release"]) == []
    assert users.events("sam")[-1].event == "login_refused"


def test_swapped_password_hash_is_refused(store: RecordStore, users: UserStore) -> None:
    """Copying quinn's password hash onto sam's account (to log in as sam with quinn's password) is seen."""
    _sql(store, "UPDATE app_user SET password_hash = (SELECT password_hash FROM app_user WHERE username = 'quinn') "
                "WHERE username = 'sam'")
    with pytest.raises(AuthenticationError, match="password changed"):
        users.authenticate("sam", PASSWORDS["quinn"])
    assert not check_accounts(store).ok
    users.authenticate("quinn", PASSWORDS["quinn"])  # other accounts are not affected


def test_user_log_shows_the_trail_and_the_mismatch(db_url: str, store: RecordStore, users: UserStore) -> None:
    """`fillfinish user log NAME` lists the changes; a changed account is named NOT MATCHING, exit 1."""
    users.set_role("olga", "supervisor", actor="root", reason="promoted")
    result = runner.invoke(app, ["user", "log", "olga", "--db", db_url])
    assert result.exit_code == 0, result.output
    assert "olga  created  by setup" in result.output and "role: 'operator' -> 'supervisor' reason: promoted" in \
        result.output
    _sql(store, "UPDATE app_user SET active = false WHERE username = 'olga'")
    result = runner.invoke(app, ["user", "log", "--db", db_url])
    assert result.exit_code == 1 and "NOT MATCHING: account 'olga'" not in result.output
    assert "NOT MATCHING: olga: active True in the trail, False now" in result.output


def test_signature_written_without_a_password_is_not_valid(store: RecordStore, users: UserStore) -> None:
    """A 'released' signature appended through the record API (no password, no proof) fails verify and shows NOT
    VALID; the release entry next to it does not count as a release."""
    batch = run_batch(store, alarm=False)
    head = store.last_entry(batch)
    assert head is not None
    forged = store.append(batch, "signature", {"name": "Quinn Q. Assurance", "user_id": "quinn", "role": "qa",
                                               "meaning": "released", "signed_hash": head.hash,
                                               "signed_seq": head.seq, "reason": ""}, "quinn")
    store.append(batch, "release", {"verdict": "suitable", "released_by": "quinn", "name": "Quinn Q. Assurance",
                                    "signature_entry": forged.seq, "signature_hash": forged.hash},
                 "quinn")
    result = store.verify(batch).result(batch)
    assert not result.ok and result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (forged.seq, "signature not valid")
    assert result.invalid_signatures == (forged.seq,)
    [shown] = manifestations(store, batch)
    assert shown.bound and not shown.valid and "NOT VALID" in shown.line()
    state = readiness(store, batch)
    assert state.released is None and not state.ready  # not "already released": the record does not verify
    summary = review(load_snapshot(store, batch))
    doc = summary.as_dict()
    assert [s.valid for s in summary.signatures if s.seq == forged.seq] == [False]
    assert any(s.get("status") == "NOT VALID" for s in doc["signatures"])  # the JSON export carries it


def test_signature_copied_to_another_batch_is_not_valid(store: RecordStore, users: UserStore) -> None:
    """A real signature's data copied into a second batch (with signed_hash pointed at that batch's head) carries a
    proof for the first batch only."""
    first, second = run_batch(store, alarm=False), run_batch(store, alarm=False)
    original = sign(store, first, "quinn", PASSWORDS["quinn"], "reviewed", users=users)
    head = store.last_entry(second)
    assert head is not None
    copy = store.append(second, "signature", {**original.data, "signed_hash": head.hash, "signed_seq": head.seq},
                        "quinn")
    result = store.verify(second).result(second)
    assert not result.ok and result.problem is not None and result.problem.kind == "signature not valid"
    assert "proof" in result.problem.detail and result.invalid_signatures == (copy.seq,)
    assert [m.valid for m in manifestations(store, first)] == [True]
    assert store.verify(first).result(first).ok


def test_release_of_a_simulated_batch_is_refused(store: RecordStore, users: UserStore) -> None:
    """A batch recorded in mode simulation (fillfinish demo, the simulator's site config) is never released."""
    batch = store.create_batch(**{**BATCH_FIELDS, "mode": "simulation"})
    store.append(batch, "disposition", {"verdict": "suitable for cell therapy grade", "suitable": True,
                                        "reasons": [], "reconciliation": {}, "proposal": True, "pending": []}, "system")
    with pytest.raises(ReleaseRefused, match="simulation mode; a simulation is never released"):
        release(store, batch, "quinn", PASSWORDS["quinn"], users=users, expiry=EXPIRY)
    assert store.entries(batch, kinds=["release", "signature"]) == []


@pytest.mark.parametrize("name", ["olga\nqa", "olga ", "ol\x1bga", "\u202eolga"])
def test_user_ids_with_control_characters_are_refused(users: UserStore, name: str) -> None:
    """User ids are single-line printable names wherever they enter (add, login)."""
    with pytest.raises(UserError):
        users.add(name, "Someone", "operator", "long-enough-pass", actor="root")
    with pytest.raises(AuthenticationError, match="not a valid user id"):
        users.authenticate(name, "whatever-pass")
