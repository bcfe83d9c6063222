"""Crash recovery: after an unclean shutdown, bring an unfinished batch back Held with the truth in its record.

Written from the record alone (no device is touched): the monitoring gap from the last entry to now becomes an
exception, the vial whose dispense started without a recorded outcome is marked uncertain (rejected), and the
batch's state becomes Held, so nothing resumes without a person (`fillfinish batch resume` or `abort`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fillfinish.batch.disposition import decide
from fillfinish.batch.history import BatchHistory
from fillfinish.record.models import Entry
from fillfinish.record.store import RecordStore
from fillfinish.record.vocabulary import SafeState, typed

# Where an unclean shutdown leaves a batch: only a batch that was filling (or about to) comes back Held for a
# person; one that had not passed its line checks, or was being stopped or aborted, ends where the person meant.
BEFORE_EXECUTE = {"Stopped", "Resetting", "Idle", "Starting", "Clearing"}
RESUMABLE = {"Execute", "Holding", "Held", "Unholding", "Suspending", "Suspended", "Unsuspending", "Completing"}


class NothingToRecover(Exception):
    """The batch ended normally; there is nothing to recover."""


@dataclass
class RecoveryReport:
    batch_id: str
    state_before: str
    last_seq: int
    last_time: str
    gap_s: float
    uncertain_vial: int | None
    uncertain_reason: str
    vials_done: int
    state_after: str = "Held"
    already: bool = False  # recovered before and nothing happened since: nothing new was written

    def lines(self) -> list[str]:
        if self.already:
            return [f"batch {self.batch_id} was already recovered (entry {self.last_seq}) and is Held; nothing "
                    "written", "resume it or abort it"]
        out = [f"batch {self.batch_id}: unclean shutdown while {self.state_before}; record intact up to entry "
               f"{self.last_seq} ({self.last_time})",
               f"monitoring gap: {self.gap_s:,.0f} s recorded as an exception",
               f"vials judged before the crash: {self.vials_done}"]
        if self.uncertain_vial is not None:
            out.append(f"vial {self.uncertain_vial} is UNCERTAIN ({self.uncertain_reason}); it is rejected")
        else:
            out.append("no vial was in flight")
        if self.state_after == "Held":
            out.append("the batch is Held: resume (re-checks every interlock and hold time) or abort")
        else:
            out.append(f"the batch ended {self.state_after} (it had not started filling, or was being stopped); "
                       "its disposition is recorded")
        return out


def unfinished_batches(store: RecordStore, line_id: str | None = None) -> list[str]:
    """Batches whose record has no disposition (they did not end); with `line_id`, only that line's (the line is
    the one in the batch's site config snapshot; batches from before line ids belong to line-1)."""
    return [h.batch_id for h in store.batches() if (line_id is None or batch_line(h.site_config) == line_id)
            and not store.entries(h.batch_id, kinds=["disposition"])]


def batch_line(site_config: dict[str, Any]) -> str:
    """The line a batch ran on, from its header's site config snapshot."""
    line = site_config.get("line") if isinstance(site_config, dict) else None
    return str(line.get("id", "line-1")) if isinstance(line, dict) else "line-1"


def check_recoverable(store: RecordStore, batch_id: str) -> None:
    """NothingToRecover if `batch_id` ended with a disposition (checked before anything is sent to the line)."""
    history = BatchHistory.from_entries(store.entries(batch_id))
    if history.finished:
        raise NothingToRecover(f"batch {batch_id} ended ({history.state}) with a disposition; nothing to recover")


def recover(store: RecordStore, batch_id: str, now: float, actor: str = "system", cause: str = "") -> RecoveryReport:
    """Record the restart and bring `batch_id` to Held; `now` is the shared clock's time. `cause` names a controlled
    stop (e.g. a SIGTERM whose safe state the controller already made): then it is not an unclean shutdown."""
    entries = store.entries(batch_id)
    history = BatchHistory.from_entries(entries)
    if history.finished:
        raise NothingToRecover(f"batch {batch_id} ended ({history.state}) with a disposition; nothing to recover")
    if entries:
        last = entries[-1]
        last_seq, last_ts = last.seq, last.ts
        if history.state == "Held" and _is_recovery_safe_state(last):
            return RecoveryReport(batch_id, "Held", last.seq, last.ts.isoformat(), 0.0, None, "",
                                  len(history.vials), already=True)
    else:  # killed right after the header was written: nothing but the header tells when
        last_seq, last_ts = 0, store.batch(batch_id).created_at
    gap = max(0.0, now - last_ts.timestamp())
    flight = history.in_flight()
    data: dict[str, Any] = {"unclean_shutdown": not cause, "state_before": history.state, "last_seq": last_seq,
                            "last_time": last_ts.isoformat(), "restart_time": now, "gap_s": round(gap, 3),
                            "uncertain_vial": flight[0] if flight else None}
    if cause:
        data["cause"] = cause
    store.append(batch_id, "recovery", data, actor)
    if not cause:  # a controlled stop monitored up to its last entry
        store.append(batch_id, "exception", {"kind": "monitoring_gap", "from": last_ts.isoformat(),
                                             "seconds": round(gap, 3), "message": "no monitoring while the "
                                             f"controller was down ({gap:,.0f} s)"}, actor)
    if flight:
        store.append(batch_id, "vial", {"vial": flight[0], "status": "uncertain",
                                        "reason": f"in flight at the {'stop' if cause else 'crash'}: {flight[1]}"},
                     actor)
    after = resting_state(history.state)
    why = cause or "unclean shutdown"
    if history.state != after:
        store.append(batch_id, "state", {"from": history.state, "to": after, "trigger": "recovery",
                                         "reason": why + ("; awaiting a person" if after == "Held" else "")}, actor)
    if after != "Held":
        done = BatchHistory.from_entries(store.entries(batch_id))
        store.append(batch_id, "disposition", decide(done, store.batch(batch_id).planned_vials, after).as_record(),
                     actor)
    return RecoveryReport(batch_id, history.state, last_seq, last_ts.isoformat(), gap,
                          flight[0] if flight else None, flight[1] if flight else "", len(history.vials), after)


def _is_recovery_safe_state(entry: Entry) -> bool:
    """True when `entry` is the safe state a recovery recorded (the batch was already brought to rest)."""
    data = typed(entry)
    return isinstance(data, SafeState) and data.action == "recovery"


def resting_state(state: str) -> str:
    """Where a batch interrupted in `state` rests: Held once it was filling (a person decides), Aborted if it was
    being aborted, Complete if it had completed (only its disposition was missing), else Stopped (it had not
    started filling, or was being stopped)."""
    if state in RESUMABLE:
        return "Held"
    if state in ("Aborting", "Aborted"):
        return "Aborted"
    if state == "Complete":
        return "Complete"
    return "Stopped"


def not_held_reason(store: RecordStore, batch_id: str, action: str) -> str | None:
    """Why `action` (resume or abort) cannot act on `batch_id`, saying what can be done instead (None if Held)."""
    history = BatchHistory.from_entries(store.entries(batch_id))
    if history.finished:
        return (f"batch {batch_id} ended {history.state} with a disposition: nothing to {action}; see it with "
                f"`fillfinish record show {batch_id}`")
    if history.state != "Held":
        return (f"batch {batch_id} is {history.state}, not Held: nothing to {action} yet. If its controller is no "
                f"longer running, `fillfinish batch recover --config FILE {batch_id}` brings it to a resting state "
                "(Held once it was filling, else Stopped); a running batch is stopped from its controller "
                "(`fillfinish command Stop/Abort --endpoint ...`)")
    return None


def abort_without_devices(store: RecordStore, batch_id: str, operator: str, reason: str, why: str) -> None:
    """Abort a Held batch in the record when its devices cannot be reached (the safe state is not confirmed)."""
    history = BatchHistory.from_entries(store.entries(batch_id))
    if history.state != "Held" or history.finished:
        raise NothingToRecover(f"batch {batch_id} is {history.state}: only a Held, unfinished batch can be aborted")
    store.append(batch_id, "operator", {"command": "Abort", "reason": reason}, operator)
    store.append(batch_id, "state", {"from": "Held", "to": "Aborting", "trigger": "Abort", "reason": reason}, operator)
    store.append(batch_id, "exception", {"message": f"devices unreachable, safe state not confirmed: {why}"}, "system")
    store.append(batch_id, "state", {"from": "Aborting", "to": "Aborted", "trigger": "StateComplete",
                                     "reason": "aborted in the record only"}, "system")
    done = BatchHistory.from_entries(store.entries(batch_id))
    store.append(batch_id, "disposition", decide(done, store.batch(batch_id).planned_vials, "Aborted").as_record(),
                 "system")
