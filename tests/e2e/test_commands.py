"""Operator commands during a batch: Hold stops at the next safe point (no vial interrupted), Unhold continues,
Stop ends the batch in a safe state. Every command is recorded with the person."""

from __future__ import annotations

import asyncio

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.machine.packml import State
from sim.runner import Simulator

from e2e_support import finish, kinds, start_batch, stays, wait_for

pytestmark = pytest.mark.slow


async def test_operator_hold_and_unhold(controller: BatchController, simulator: Simulator, tip_lot: TipLot) -> None:
    task = start_batch(controller, lot="L-HOLD", vials=12, operator="op.anna", tip_lot=tip_lot)
    await wait_for(lambda: controller.history.counts["accepted"] >= 3, what="3 vials filled", task=task,
                   controller=controller)
    assert await controller.command("Hold", "op.anna", "visual check of the stopper bowl") == "Holding"
    await wait_for(lambda: controller.machine.state == State.Held, what="Held", task=task)
    await stays(lambda: controller.machine.state == State.Held, simulator.clock, 60.0, "Held (nothing resumes alone)")
    await controller.command("Unhold", "sup.bob", "check done")
    outcome = await finish(task)
    assert outcome.state == "Complete" and (outcome.accepted, outcome.rejected) == (12, 0)
    entries = controller.store.entries(outcome.batch_id)
    ops = kinds(entries, "operator")
    assert [(e.data["command"], e.actor) for e in ops] == [("Hold", "op.anna"), ("Unhold", "sup.bob")]
    assert not [e for e in kinds(entries, "vial") if "interrupted" in e.data.get("reason", "")]


async def test_operator_stop_ends_in_stopped_with_disposition(controller: BatchController, tip_lot: TipLot) -> None:
    task = start_batch(controller, lot="L-STOP", vials=20, operator="op.anna", tip_lot=tip_lot)
    await wait_for(lambda: controller.history.counts["accepted"] >= 2, what="2 vials filled", task=task,
                   controller=controller)
    await controller.command("Stop", "sup.bob", "reservoir contamination suspected")
    outcome = await finish(task)
    assert outcome.state == "Stopped"
    assert outcome.disposition is not None and not outcome.disposition.suitable
    entries = controller.store.entries(outcome.batch_id)
    assert kinds(entries, "safe_state")
    assert kinds(entries, "state")[-1].data["to"] == "Stopped"


async def test_commands_reach_the_controller_over_its_opc_ua_server(site, fgf2, tip_lot: TipLot, db_url: str,
                                                                   tmp_path) -> None:
    """Over the secured server: the MES's service account is refused (recorded in the batch), the operator's Hold and
    Unhold after their own Hold are accepted and recorded with the session's user."""
    from argon2 import PasswordHasher

    from fillfinish.hmi.client import CommandRejected, ControllerClient, ensure_client_certificate
    from fillfinish.people.users import UserStore
    from fillfinish.record.store import RecordStore
    from fillfinish.session import controller_session

    with RecordStore(db_url) as store:
        people = UserStore(store, hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        people.add("op.anna", "Anna Operator", "operator", "anna-password-1", actor="setup")
        people.add("mes", "Plant MES", "service", "mes-password-12", actor="setup")
    await ensure_client_certificate(tmp_path)  # RSA key generation is slow: not while the batch runs in this loop
    async with controller_session(site, fgf2, serve_port=0) as c:
        endpoint = c.endpoint  # type: ignore[attr-defined]
        # sessions open before the batch: a login verifies an argon2 hash in the controller's loop (docs/decisions/0011)
        mes = ControllerClient(endpoint, user="mes", password="mes-password-12", pki_dir=tmp_path)
        client = ControllerClient(endpoint, user="op.anna", password="anna-password-1", pki_dir=tmp_path)
        await mes.connect()
        await client.connect()
        task = start_batch(c, lot="L-MES", vials=12, operator="op.anna", tip_lot=tip_lot)
        try:
            await wait_for(lambda: c.history.counts["accepted"] >= 2, what="2 vials filled", task=task)
            assert (await mes.status())["BatchId"] == c.batch_id  # the MES reads
            with pytest.raises(CommandRejected, match="BadUserAccessDenied|access"):
                await mes.command("Hold", "MES may not")
            with pytest.raises(CommandRejected, match="Start"):
                await client.command("Start", "not valid in Execute")
            assert await client.command("Hold", "from the console") == "Holding"
            await wait_for(lambda: c.machine.state == State.Held, what="Held", task=task)
            tags = await client.status()
            for _ in range(1000):  # the server publishes its tags every 0.2 s: wait for the Held one (hang guard)
                if tags["StateCurrent"] == int(State.Held):
                    break
                await asyncio.sleep(0.05)
                tags = await client.status()
            assert tags["StateCurrent"] == int(State.Held) and tags["BatchId"] == c.batch_id
            assert tags["EnvironmentLimits"]["hepa_dp_pa"] == [80.0, 250.0]  # the recipe's own range
            await client.command("Unhold", "from the console")
        finally:
            await client.close()
            await mes.close()
        outcome = await finish(task)
        entries = c.store.entries(outcome.batch_id)
    assert outcome.state == "Complete"
    assert [(e.data["command"], e.actor) for e in kinds(entries, "operator")] == [("Hold", "op.anna"),
                                                                                 ("Unhold", "op.anna")]
    (refused,) = kinds(entries, "access_refused")
    assert refused.actor == "mes" and refused.data["what"] == "call Command Hold"


async def test_suspend_unsuspend_and_early_complete(controller: BatchController, tip_lot: TipLot) -> None:
    task = start_batch(controller, lot="L-SUSP", vials=20, operator="op.anna", tip_lot=tip_lot)
    await wait_for(lambda: controller.history.counts["accepted"] >= 2, what="2 vials filled", task=task,
                   controller=controller)
    await controller.command("Suspend", "op.anna", "vial infeed starved")
    await wait_for(lambda: controller.machine.state == State.Suspended, what="Suspended", task=task)
    await controller.command("Unsuspend", "op.anna", "vials loaded")
    await wait_for(lambda: controller.history.counts["accepted"] >= 5, what="5 vials filled", task=task,
                   controller=controller, allow=("Suspended",))
    await controller.command("Complete", "sup.bob", "end the batch early")
    outcome = await finish(task)
    assert outcome.state == "Complete"
    assert 5 <= outcome.accepted < 20
    assert not outcome.disposition.suitable  # not every planned vial is reconciled
    assert any("not reconciled" in r["reason"] for r in outcome.disposition.reasons)
