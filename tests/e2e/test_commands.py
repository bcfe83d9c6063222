"""Operator commands during a batch: Hold stops at the next safe point (no vial interrupted), Unhold continues,
Stop ends the batch in a safe state. Every command is recorded with the person."""

from __future__ import annotations

import asyncio

import pytest

from fillfinish.batch.controller import BatchController, TipLot
from fillfinish.machine.packml import State

from e2e_support import kinds, wait_for

pytestmark = pytest.mark.slow


async def test_operator_hold_and_unhold(controller: BatchController, tip_lot: TipLot) -> None:
    task = asyncio.create_task(controller.run_new(lot="L-HOLD", vials=12, operator="op.anna", tip_lot=tip_lot))
    await wait_for(lambda: controller.history.counts["accepted"] >= 3, what="3 vials filled", task=task,
                   controller=controller)
    assert await controller.command("Hold", "op.anna", "visual check of the stopper bowl") == "Holding"
    await wait_for(lambda: controller.machine.state == State.Held, what="Held", task=task)
    await asyncio.sleep(0.2)
    assert controller.machine.state == State.Held, "nothing resumes by itself"
    await controller.command("Unhold", "sup.bob", "check done")
    outcome = await asyncio.wait_for(task, 120)
    assert outcome.state == "Complete" and (outcome.accepted, outcome.rejected) == (12, 0)
    entries = controller.store.entries(outcome.batch_id)
    ops = kinds(entries, "operator")
    assert [(e.data["command"], e.actor) for e in ops] == [("Hold", "op.anna"), ("Unhold", "sup.bob")]
    assert not [e for e in kinds(entries, "vial") if "interrupted" in e.data.get("reason", "")]


async def test_operator_stop_ends_in_stopped_with_disposition(controller: BatchController, tip_lot: TipLot) -> None:
    task = asyncio.create_task(controller.run_new(lot="L-STOP", vials=20, operator="op.anna", tip_lot=tip_lot))
    await wait_for(lambda: controller.history.counts["accepted"] >= 2, what="2 vials filled", task=task,
                   controller=controller)
    await controller.command("Stop", "sup.bob", "reservoir contamination suspected")
    outcome = await asyncio.wait_for(task, 60)
    assert outcome.state == "Stopped"
    assert outcome.disposition is not None and not outcome.disposition.suitable
    entries = controller.store.entries(outcome.batch_id)
    assert kinds(entries, "safe_state")
    assert kinds(entries, "state")[-1].data["to"] == "Stopped"


async def test_commands_reach_the_controller_over_its_opc_ua_server(site, fgf2, tip_lot: TipLot) -> None:
    from fillfinish.hmi.client import CommandRejected, ControllerClient
    from fillfinish.session import controller_session

    async with controller_session(site, fgf2, serve_port=0) as c:
        task = asyncio.create_task(c.run_new(lot="L-MES", vials=12, operator="op.anna", tip_lot=tip_lot))
        await wait_for(lambda: c.history.counts["accepted"] >= 2, what="2 vials filled", task=task, controller=c)
        client = ControllerClient(c.endpoint)  # type: ignore[attr-defined]
        await client.connect()
        try:
            with pytest.raises(CommandRejected, match="Start"):
                await client.command("Start", "mes", "not valid in Execute")
            assert await client.command("Hold", "op.anna", "from the console") == "Holding"
            await wait_for(lambda: c.machine.state == State.Held, what="Held", task=task)
            await asyncio.sleep(0.5)  # the server publishes its tags every 0.2 s
            tags = await client.status()
            assert tags["StateCurrent"] == int(State.Held) and tags["BatchId"] == c.batch_id
            assert tags["EnvironmentLimits"]["hepa_dp_pa"] == [80.0, 250.0]  # the recipe's own range
            await client.command("Unhold", "sup.bob", "from the console")
        finally:
            await client.close()
        outcome = await asyncio.wait_for(task, 120)
    assert outcome.state == "Complete"


async def test_suspend_unsuspend_and_early_complete(controller: BatchController, tip_lot: TipLot) -> None:
    task = asyncio.create_task(controller.run_new(lot="L-SUSP", vials=20, operator="op.anna", tip_lot=tip_lot))
    await wait_for(lambda: controller.history.counts["accepted"] >= 2, what="2 vials filled", task=task,
                   controller=controller)
    await controller.command("Suspend", "op.anna", "vial infeed starved")
    await wait_for(lambda: controller.machine.state == State.Suspended, what="Suspended", task=task)
    await controller.command("Unsuspend", "op.anna", "vials loaded")
    await wait_for(lambda: controller.history.counts["accepted"] >= 5, what="5 vials filled", task=task,
                   controller=controller, allow=("Suspended",))
    await controller.command("Complete", "sup.bob", "end the batch early")
    outcome = await asyncio.wait_for(task, 120)
    assert outcome.state == "Complete"
    assert 5 <= outcome.accepted < 20
    assert not outcome.disposition.suitable  # not every planned vial is reconciled
    assert any("not reconciled" in r["reason"] for r in outcome.disposition.reasons)
