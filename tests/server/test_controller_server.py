"""ControllerServer + ControllerClient over loopback OPC UA against a ControllerView test double."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua

from fillfinish.hmi.client import (
    AcknowledgeRejected,
    CommandRejected,
    ControllerClient,
    ControllerUnavailable,
    send_command,
)
from fillfinish.machine.packml import State
from fillfinish.server import NAMESPACE_URI, ControllerServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def eventually(check: Callable[[], Any], timeout: float = 3.0) -> None:
    """Poll an async check until it stops raising AssertionError (tag updates run every 50 ms)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture(loop_scope="module")
async def client(server: ControllerServer) -> Any:
    """A connected ControllerClient (one per test: cheap, about 10 ms)."""
    c = ControllerClient(server.endpoint)
    await c.connect()
    yield c
    await c.close()


@pytest_asyncio.fixture(loop_scope="module")
async def raw(server: ControllerServer) -> Any:
    """A plain asyncua client, as an MES would use, plus the namespace index."""
    async with Client(server.endpoint) as c:
        ns = await c.get_namespace_index(NAMESPACE_URI)
        yield c, ns


# ------------------------------------------------------------------ tags


async def test_endpoint_names_the_bound_port(server: ControllerServer) -> None:
    assert server.endpoint.startswith("opc.tcp://127.0.0.1:")
    assert server.endpoint.endswith("/fillfinish/controller")
    assert server.port != 0


async def test_status_tags_show_the_snapshot(client: ControllerClient) -> None:
    status = await client.status()
    assert status["StateCurrent"] == int(State.Stopped)
    assert status["StateCurrentName"] == "Stopped"
    assert status["UnitModeCurrent"] == 1 and status["UnitModeCurrentName"] == "Production"
    assert status["BatchId"] == "B-2026-001"
    assert status["Product"] == "mAb-7 10 mg/mL"
    assert status["Phase"] == "fill"
    assert (status["PlannedCount"], status["ProdProcessedCount"], status["ProdDefectiveCount"]) == (100, 42, 1)
    assert status["UvDose_mJ_cm2"] == pytest.approx(61.5)
    assert status["ValidCommands"] == ["Reset", "Abort"]
    assert status["Environment"]["downflow_m_s"] == pytest.approx(0.45)
    assert status["Alarms"] == [] and status["AlarmCount"] == 0
    assert status["StatusError"] == ""


async def test_tags_follow_the_controller(controller: Any, client: ControllerClient) -> None:
    controller.state = State.Execute
    controller.processed = 77
    controller.stop_reason = "door opened"
    controller.environment["particles_5um_per_m3"] = 3.0

    async def check() -> None:
        s = await client.status()
        assert s["StateCurrentName"] == "Execute" and s["StateCurrent"] == 6
        assert s["ProdProcessedCount"] == 77
        assert s["StopReason"] == "door opened"
        assert s["Environment"]["particles_5um_per_m3"] == 3.0
        assert "Hold" in s["ValidCommands"]

    await eventually(check)


async def test_heartbeat_advances(client: ControllerClient) -> None:
    first = (await client.status())["Heartbeat"]

    async def check() -> None:
        assert (await client.status())["Heartbeat"] != first

    await eventually(check)


async def test_environment_values_are_typed_variables(controller: Any, raw: Any) -> None:
    c, ns = raw
    node = c.get_node(ua.NodeId("FillFinish.EnvironmentValues.hepa_dp_pa", ns))
    assert await node.read_data_type_as_variant_type() == ua.VariantType.Double
    controller.environment["hepa_dp_pa"] = 140.0

    async def check() -> None:
        assert await node.read_value() == 140.0

    await eventually(check)


async def test_status_failure_is_shown_not_fatal(controller: Any, client: ControllerClient) -> None:
    controller.fail_status = True

    async def failing() -> None:
        assert "status snapshot failed" in (await client.status())["StatusError"]

    await eventually(failing)
    controller.fail_status = False

    async def recovered() -> None:
        assert (await client.status())["StatusError"] == ""

    await eventually(recovered)


async def test_tags_refuse_writes(raw: Any) -> None:
    c, ns = raw
    node = c.get_node(ua.NodeId("FillFinish.Status.StateCurrent", ns))
    with pytest.raises(ua.UaStatusCodeError) as err:
        await node.write_value(ua.DataValue(ua.Variant(6, ua.VariantType.Int32)))
    assert err.value.code == ua.StatusCodes.BadUserAccessDenied
    assert await node.read_value() == int(State.Stopped)


async def test_username_logins_are_refused(server: ControllerServer) -> None:
    """Only anonymous sessions: nobody can log in as asyncua's built-in admin and bypass the read-only tags."""
    c = Client(server.endpoint)
    c.set_user("admin")
    c.set_password("admin")
    with pytest.raises(ua.UaStatusCodeError) as err:
        await c.connect()
    assert err.value.code == ua.StatusCodes.BadIdentityTokenRejected
    await c.disconnect()


# ------------------------------------------------------------------ commands


async def test_command_accepted_returns_new_state(controller: Any, client: ControllerClient) -> None:
    assert await client.command("Reset", "alice", "start of shift") == "Idle"
    assert controller.commands == [("Reset", "alice", "start of shift")]
    status = await client.status()  # published at once, not at the next tick
    assert status["StateCurrentName"] == "Idle"
    assert status["LastCommandResult"]["accepted"] is True
    assert status["LastCommandResult"]["actor"] == "alice"


async def test_command_by_number_from_a_plain_client(controller: Any, raw: Any) -> None:
    controller.state = State.Execute
    c, ns = raw
    obj = c.get_node(ua.NodeId("FillFinish", ns))
    result = await obj.call_method(f"{ns}:Command", ua.Variant(4, ua.VariantType.Int32), "bob", "check vial")
    assert result == "Held"
    assert controller.commands == [("Hold", "bob", "check vial")]


async def test_refused_command_raises_with_the_reason(controller: Any, client: ControllerClient) -> None:
    with pytest.raises(CommandRejected) as err:
        await client.command("Hold", "alice", "")
    assert err.value.status == "BadInvalidState"
    assert err.value.command == "Hold"
    assert "Hold (4) refused in state Stopped" in err.value.text
    assert "valid commands in Stopped: Reset (1), Abort (8)" in str(err.value)
    status = await client.status()
    assert status["StateCurrentName"] == "Stopped"
    assert status["LastCommandResult"]["accepted"] is False
    assert status["LastCommandResult"]["status"] == "BadInvalidState"


async def test_controller_refusal_reason_reaches_the_client(controller: Any, client: ControllerClient) -> None:
    controller.refuse_with = "door interlock open"
    with pytest.raises(CommandRejected, match="door interlock open"):
        await client.command("Reset", "alice")


async def test_refused_command_is_a_bad_status_for_plain_clients(raw: Any) -> None:
    c, ns = raw
    obj = c.get_node(ua.NodeId("FillFinish", ns))
    with pytest.raises(ua.UaStatusCodeError) as err:
        await obj.call_method(f"{ns}:Command", "Unhold", "bob", "")
    assert err.value.code == ua.StatusCodes.BadInvalidState


async def test_unknown_command_lists_the_allowed_ones(controller: Any, client: ControllerClient) -> None:
    with pytest.raises(CommandRejected) as err:
        await client.command("Launch", "alice")
    assert err.value.status == "BadInvalidArgument"
    assert "Reset (1)" in err.value.text and "Complete (10)" in err.value.text
    assert controller.commands == []


async def test_actor_is_required(controller: Any, client: ControllerClient) -> None:
    with pytest.raises(CommandRejected, match="actor"):
        await client.command("Reset", "  ")
    assert controller.commands == []


async def test_controller_crash_is_an_internal_error(
    controller: Any, client: ControllerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(command: str, actor: str, reason: str = "") -> str:
        raise RuntimeError("record store unreachable")

    monkeypatch.setattr(controller, "command", boom)
    with pytest.raises(CommandRejected) as err:
        await client.command("Reset", "alice")
    assert err.value.status == "BadInternalError"
    assert "record store unreachable" in err.value.text


async def test_send_command_one_shot(controller: Any, server: ControllerServer) -> None:
    assert await send_command(server.endpoint, 1, "carol") == "Idle"
    assert controller.commands == [("Reset", "carol", "")]


# ------------------------------------------------------------------ alarms


async def test_acknowledge_alarm(controller: Any, client: ControllerClient, make_alarm: Any) -> None:
    controller.alarms = [make_alarm(7), make_alarm(8, "alert", "particles 0.5 um alert")]

    async def listed() -> None:
        s = await client.status()
        assert [a["alarm_id"] for a in s["Alarms"]] == [7, 8]
        assert s["AlarmCount"] == 2 and s["UnacknowledgedAlarmCount"] == 2

    await eventually(listed)
    assert "alarm 7 acknowledged by dave" == await client.acknowledge(7, "dave")
    assert controller.acks == [(7, "dave")]
    s = await client.status()
    first = s["Alarms"][0]
    assert first["acknowledged"] is True and first["acknowledged_by"] == "dave"
    assert s["UnacknowledgedAlarmCount"] == 1


async def test_acknowledge_unknown_alarm_is_refused(client: ControllerClient) -> None:
    with pytest.raises(AcknowledgeRejected, match="no alarm with id 99") as err:
        await client.acknowledge(99, "dave")
    assert err.value.status == "BadInvalidArgument"


async def test_acknowledge_needs_an_actor(client: ControllerClient, controller: Any, make_alarm: Any) -> None:
    controller.alarms = [make_alarm(1)]
    with pytest.raises(AcknowledgeRejected, match="actor"):
        await client.acknowledge(1, "")
    assert controller.acks == []


# ------------------------------------------------------------------ lifecycle and connection loss


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_endpoint_is_a_clear_error() -> None:
    client = ControllerClient(f"opc.tcp://127.0.0.1:{_free_port()}/fillfinish/controller", timeout_s=1.0)
    with pytest.raises(ControllerUnavailable, match="cannot connect to the controller at opc.tcp://127.0.0.1:"):
        await client.connect()
    with pytest.raises(ControllerUnavailable, match="not connected"):
        await client.status()


async def test_stop_leaves_no_tasks_and_clients_see_the_loss(controller: Any) -> None:
    before = set(asyncio.all_tasks())
    srv = ControllerServer(controller, update_interval_s=0.05)
    await srv.start()
    client = ControllerClient(srv.endpoint, timeout_s=1.0)
    await client.connect()
    assert (await client.status())["StateCurrentName"] == "Stopped"
    await srv.stop()
    await srv.stop()  # idempotent
    with pytest.raises(ControllerUnavailable, match="lost the controller"):
        await client.status()
    assert not client.connected
    await client.close()
    await asyncio.sleep(0)  # let cancelled tasks finish their last step
    leaked = {t for t in asyncio.all_tasks() - before if not t.done()} - {asyncio.current_task()}
    assert leaked == set(), [t.get_name() for t in leaked]
    await client.close()  # idempotent


async def test_a_second_start_is_refused(server: ControllerServer) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()
