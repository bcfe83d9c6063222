"""ControllerServer + ControllerClient over loopback OPC UA (Basic256Sha256, user + password) against a ControllerView
test double; attacks included: anonymous, wrong password, roles, read-only sessions, missing signatures."""

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
    LoginRefused,
    send_command,
)
from fillfinish.machine.packml import State
from fillfinish.record.registry import registry_entries
from fillfinish.server import NAMESPACE_URI, STATUS_TAGS, ControllerServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def eventually(check: Callable[[], Any], timeout: float = 60.0) -> None:
    """Poll an async check until it stops raising AssertionError (tag updates run every 50 ms); `timeout` (real s)
    only guards against a hang, it bounds nothing."""
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
async def client(server: ControllerServer, login: Any) -> Any:
    """A ControllerClient logged in as operator op1."""
    c = login(server.endpoint, "op1")
    await c.connect()
    yield c
    await c.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def raw_certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """An application certificate for the 'other stack' client, made with asyncua's own generator."""
    from asyncua.crypto.cert_gen import setup_self_signed_certificate
    from cryptography.x509.oid import ExtendedKeyUsageOID

    root = tmp_path_factory.mktemp("mes-pki")
    cert, key = root / "mes.der", root / "mes.pem"
    await setup_self_signed_certificate(key, cert, "urn:example:mes", socket.gethostname(),
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "plant MES"})
    return str(cert), str(key)


async def raw_client(endpoint: str, certs: tuple[str, str], user: str | None, password: str | None,
                     mode: str = "SignAndEncrypt") -> Client:
    """A plain asyncua client configured as any OPC UA client is: security string, user name and password."""
    c = Client(endpoint, timeout=4)
    c.application_uri = "urn:example:mes"
    await c.set_security_string(f"Basic256Sha256,{mode},{certs[0]},{certs[1]}")
    if user is not None:
        c.set_user(user)
        c.set_password(password or "")
    return c


@pytest_asyncio.fixture(loop_scope="module")
async def raw(server: ControllerServer, raw_certs: tuple[str, str], passwords: dict[str, str]) -> Any:
    """A plain asyncua client (no project code), logged in as supervisor sup1, plus the namespace index."""
    c = await raw_client(server.endpoint, raw_certs, "sup1", passwords["sup1"])
    async with c:
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


async def test_asyncua_builtin_admin_is_refused(server: ControllerServer, raw_certs: tuple[str, str]) -> None:
    """Nobody can log in as asyncua's built-in admin and bypass the read-only tags."""
    c = await raw_client(server.endpoint, raw_certs, "admin", "admin")
    with pytest.raises(ua.UaStatusCodeError) as err:
        await c.connect()
    assert err.value.code == ua.StatusCodes.BadUserAccessDenied
    await c.disconnect()


# ------------------------------------------------------------------ commands


async def test_command_accepted_returns_new_state(controller: Any, client: ControllerClient) -> None:
    assert await client.command("Reset", "start of shift") == "Idle"
    assert controller.commands == [("Reset", "op1", "start of shift")]
    status = await client.status()  # published at once, not at the next tick
    assert status["StateCurrentName"] == "Idle"
    assert status["LastCommandResult"]["accepted"] is True
    assert status["LastCommandResult"]["actor"] == "op1"


async def test_command_by_number_from_a_plain_client(controller: Any, raw: Any) -> None:
    controller.state = State.Execute
    c, ns = raw
    obj = c.get_node(ua.NodeId("FillFinish", ns))
    result = await obj.call_method(f"{ns}:Command", ua.Variant(4, ua.VariantType.Int32), "check vial")
    assert result == "Held"
    assert controller.commands == [("Hold", "sup1", "check vial")]


async def test_the_actor_is_the_session_user_never_an_argument(controller: Any, raw: Any) -> None:
    """An old-style call (command, actor, reason) cannot choose its actor: the session's user is recorded."""
    controller.state = State.Execute
    c, ns = raw
    obj = c.get_node(ua.NodeId("FillFinish", ns))
    assert await obj.call_method(f"{ns}:Command", "Hold", "mickey.mouse") == "Held"
    assert controller.commands == [("Hold", "sup1", "mickey.mouse")]


async def test_refused_command_raises_with_the_reason(controller: Any, client: ControllerClient) -> None:
    with pytest.raises(CommandRejected) as err:
        await client.command("Hold", "")
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
        await client.command("Reset")


async def test_refused_command_is_a_bad_status_for_plain_clients(controller: Any, raw: Any) -> None:
    c, ns = raw
    obj = c.get_node(ua.NodeId("FillFinish", ns))
    with pytest.raises(ua.UaStatusCodeError) as err:
        await obj.call_method(f"{ns}:Command", "Unhold", "")
    assert err.value.code == ua.StatusCodes.BadInvalidState


async def test_unknown_command_lists_the_allowed_ones(controller: Any, client: ControllerClient) -> None:
    with pytest.raises(CommandRejected) as err:
        await client.command("Launch")
    assert err.value.status == "BadInvalidArgument"
    assert "Reset (1)" in err.value.text and "Complete (10)" in err.value.text
    assert controller.commands == []


async def test_controller_crash_is_an_internal_error(
    controller: Any, client: ControllerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(command: str, actor: str, reason: str = "", **kw: Any) -> str:
        raise RuntimeError("record store unreachable")

    monkeypatch.setattr(controller, "command", boom)
    with pytest.raises(CommandRejected) as err:
        await client.command("Reset")
    assert err.value.status == "BadInternalError"
    assert "record store unreachable" in err.value.text


async def test_send_command_one_shot(controller: Any, server: ControllerServer, client_pki: Any,
                                    passwords: dict[str, str]) -> None:
    assert await send_command(server.endpoint, 1, user="op1", password=passwords["op1"], pki_dir=client_pki) == "Idle"
    assert controller.commands == [("Reset", "op1", "")]


# ------------------------------------------------------------------ alarms


async def test_acknowledge_alarm(controller: Any, client: ControllerClient, make_alarm: Any) -> None:
    controller.alarms = [make_alarm(7), make_alarm(8, "alert", "particles 0.5 um alert")]

    async def listed() -> None:
        s = await client.status()
        assert [a["alarm_id"] for a in s["Alarms"]] == [7, 8]
        assert s["AlarmCount"] == 2 and s["UnacknowledgedAlarmCount"] == 2

    await eventually(listed)
    with pytest.raises(AcknowledgeRejected, match="may not acknowledge a action alarm; allowed: supervisor"):
        await client.acknowledge(7)  # op1 is an operator
    assert "alarm 8 acknowledged by op1" == await client.acknowledge(8)
    assert controller.acks == [(8, "op1")]
    s = await client.status()
    second = s["Alarms"][1]
    assert second["acknowledged"] is True and second["acknowledged_by"] == "op1"
    assert s["UnacknowledgedAlarmCount"] == 1


async def test_acknowledge_unknown_alarm_is_refused(client: ControllerClient) -> None:
    with pytest.raises(AcknowledgeRejected, match="no alarm with id 99") as err:
        await client.acknowledge(99)
    assert err.value.status == "BadInvalidArgument"


# ------------------------------------------------------------------ lifecycle and connection loss


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_endpoint_is_a_clear_error() -> None:
    client = ControllerClient(f"opc.tcp://127.0.0.1:{_free_port()}/fillfinish/controller", user="op1",
                              password="x" * 12, timeout_s=1.0)
    with pytest.raises(ControllerUnavailable, match="cannot connect to the controller at opc.tcp://127.0.0.1:"):
        await client.connect()
    with pytest.raises(ControllerUnavailable, match="not connected"):
        await client.status()


async def test_stop_leaves_no_tasks_and_clients_see_the_loss(controller: Any, server_factory: Any, record: Any,
                                                             users: Any, server_pki: Any, login: Any) -> None:
    before = set(asyncio.all_tasks())
    srv = server_factory(controller, record, users, server_pki)
    await srv.start()
    client = login(srv.endpoint, "op1", timeout_s=1.0)
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


# ------------------------------------------------------------------ independent clients and attacks


async def test_another_stack_browses_reads_every_tag_and_sends_hold(
    controller: Any, server: ControllerServer, raw_certs: tuple[str, str], passwords: dict[str, str]
) -> None:
    """A plain asyncua Client given a user and a password (security string + set_user/set_password), as an MES or
    any OPC UA client would be configured, browses the address space, reads every tag and sends Hold."""
    controller.state = State.Execute
    c = await raw_client(server.endpoint, raw_certs, "op1", passwords["op1"])
    async with c:
        ns = await c.get_namespace_index(NAMESPACE_URI)
        root = await c.nodes.objects.get_child(f"{ns}:FillFinish")
        names = {(await n.read_browse_name()).Name for n in await root.get_children()}
        assert {"Status", "EnvironmentValues", "Command", "AcknowledgeAlarm"} <= names
        status = await root.get_child(f"{ns}:Status")
        tags = {(await n.read_browse_name()).Name: await n.read_value() for n in await status.get_children()}
        assert set(tags) == set(STATUS_TAGS)
        assert tags["StateCurrentName"] == "Execute" and tags["UvDoseTarget_mJ_cm2"] == 120.0
        assert await root.call_method(f"{ns}:Command", "Hold", "MES: lot change") == "Held"
    assert controller.commands == [("Hold", "op1", "MES: lot change")]


async def test_no_unsecured_endpoint(server: ControllerServer) -> None:
    """Only Basic256Sha256 Sign and SignAndEncrypt endpoints: a client without security finds no endpoint."""
    endpoints = await Client(server.endpoint, timeout=2).connect_and_get_server_endpoints()
    with pytest.raises(ua.UaError, match="No matching endpoints"):
        async with Client(server.endpoint, timeout=2):
            pass
    offered = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode.name) for e in endpoints}
    assert offered == {("Basic256Sha256", "SignAndEncrypt"), ("Basic256Sha256", "Sign")}
    assert all({t.TokenType for t in e.UserIdentityTokens} == {ua.UserTokenType.UserName} for e in endpoints)


async def test_anonymous_session_is_refused_and_recorded(server: ControllerServer, raw_certs: tuple[str, str],
                                                         record: Any) -> None:
    before = len(registry_entries(record, "access"))
    c = await raw_client(server.endpoint, raw_certs, None, None)
    with pytest.raises(ua.UaStatusCodeError) as err:
        await c.connect()
    await c.disconnect()
    assert err.value.code == ua.StatusCodes.BadUserAccessDenied
    entries = registry_entries(record, "access")[before:]
    assert [(e.actor, e.data["what"]) for e in entries] == [("anonymous", "open a session")]
    assert "anonymous sessions are not allowed" in entries[0].data["why"]


async def test_wrong_password_is_refused_recorded_and_shown(server: ControllerServer, login: Any, users: Any,
                                                            client: ControllerClient) -> None:
    with pytest.raises(LoginRefused, match="login refused for 'victim'"):
        await login(server.endpoint, "victim", "not-the-password").connect()
    failed = users.events("victim")[-1]
    assert (failed.event, failed.detail["reason"], failed.detail["purpose"]) == ("login_failed", "wrong password",
                                                                              "opcua session")

    async def shown() -> None:
        events = (await client.status())["SecurityEvents"]
        assert events and events[-1]["event"] == "login_failed" and events[-1]["user"] == "victim"

    await eventually(shown)


async def test_repeated_wrong_passwords_lock_the_account(server: ControllerServer, login: Any, users: Any,
                                                         client: ControllerClient, passwords: dict[str, str]) -> None:
    users.unlock("victim", actor="test")
    for _ in range(5):
        with pytest.raises(LoginRefused):
            await login(server.endpoint, "victim", "still-not-it-1").connect()
    assert users.get("victim").locked
    with pytest.raises(LoginRefused):  # the right password no longer opens a session
        await login(server.endpoint, "victim").connect()

    async def shown() -> None:
        assert any(e["event"] == "lockout" for e in (await client.status())["SecurityEvents"])

    await eventually(shown)
    users.unlock("victim", actor="test")


async def test_operator_may_not_unhold_after_an_alarm(controller: Any, client: ControllerClient, record: Any) -> None:
    controller.state = State.Held
    controller.hold_cause = "HEPA differential pressure 20.0 Pa outside 80-250 Pa"
    before = len(registry_entries(record, "access"))
    with pytest.raises(CommandRejected, match="Unhold after an alarm needs a supervisor") as err:
        await client.command("Unhold", "looks fine")
    assert err.value.status == "BadUserAccessDenied"
    assert controller.commands == [] and controller.state == State.Held
    (entry,) = registry_entries(record, "access")[before:]
    assert entry.actor == "op1" and entry.data["what"] == "Command Unhold" and entry.data["role"] == "operator"


async def test_operator_may_unhold_after_their_own_hold(controller: Any, client: ControllerClient) -> None:
    controller.state = State.Held
    assert await client.command("Unhold", "stopper bowl checked") == "Execute"


async def test_supervisor_unhold_after_an_alarm_needs_the_signature(
    controller: Any, server: ControllerServer, login: Any, passwords: dict[str, str]
) -> None:
    controller.state = State.Held
    controller.hold_cause = "door opened during fill"
    async with login(server.endpoint, "sup1") as sup:
        with pytest.raises(CommandRejected, match="needs your electronic signature"):
            await sup.command("Unhold", "door closed and checked")
        with pytest.raises(CommandRejected, match="electronic signature refused"):
            await sup.command("Unhold", "door closed and checked", "wrong-password-1")
        assert controller.commands == []
        assert await sup.command("Unhold", "door closed and checked", passwords["sup1"]) == "Execute"
    assert controller.commands == [("Unhold", "sup1", "door closed and checked")]
    assert controller.signatures == [{"meaning": "approved resumption after an alarm", "name": "sup1",
                                      "authenticated": True}]


async def test_abort_needs_a_supervisor_and_a_signature(controller: Any, server: ControllerServer,
                                                        client: ControllerClient, login: Any,
                                                        passwords: dict[str, str]) -> None:
    controller.state = State.Execute
    with pytest.raises(CommandRejected, match="role operator may not send Abort; allowed: supervisor"):
        await client.command("Abort", "", passwords["op1"])
    async with login(server.endpoint, "sup1") as sup:
        assert await sup.command("Abort", "contamination", passwords["sup1"]) == "Aborted"
    assert controller.signatures[-1]["meaning"] == "approved abort of the batch"


async def test_signatures_need_an_encrypted_channel(controller: Any, server: ControllerServer, login: Any,
                                                    passwords: dict[str, str]) -> None:
    """A Sign-only session may send Hold, but not a password as a signature (it would cross the wire in clear)."""
    controller.state = State.Execute
    async with login(server.endpoint, "sup1", mode="Sign") as sup:
        with pytest.raises(CommandRejected, match="needs a SignAndEncrypt session") as err:
            await sup.command("Complete", "end early", passwords["sup1"])
        assert err.value.status == "BadSecurityModeInsufficient"
        assert await sup.command("Hold", "check") == "Held"


async def test_service_account_reads_only(controller: Any, server: ControllerServer, raw_certs: tuple[str, str],
                                          passwords: dict[str, str], record: Any) -> None:
    """The MES's service account browses and reads; a method call is refused before it reaches the controller."""
    controller.state = State.Execute
    before = len(registry_entries(record, "access"))
    c = await raw_client(server.endpoint, raw_certs, "mes", passwords["mes"])
    async with c:
        ns = await c.get_namespace_index(NAMESPACE_URI)
        state = c.get_node(ua.NodeId("FillFinish.Status.StateCurrentName", ns))
        assert await state.read_value() == "Execute"
        obj = c.get_node(ua.NodeId("FillFinish", ns))
        with pytest.raises(ua.UaStatusCodeError) as err:
            await obj.call_method(f"{ns}:Command", "Hold", "")
        assert err.value.code == ua.StatusCodes.BadUserAccessDenied
    assert controller.commands == []
    (entry,) = registry_entries(record, "access")[before:]
    assert (entry.actor, entry.data["what"]) == ("mes", "call Command Hold")


async def test_anonymous_read_only_when_the_site_allows_it(
    controller: Any, server_factory: Any, record: Any, users: Any, server_pki: Any, raw_certs: tuple[str, str]
) -> None:
    """allow_anonymous_read: an anonymous dashboard reads the tags; its Abort is refused and recorded."""
    srv = server_factory(controller, record, users, server_pki, allow_anonymous_read=True)
    await srv.start()
    try:
        controller.state = State.Execute
        before = len(registry_entries(record, "access"))
        c = await raw_client(srv.endpoint, raw_certs, None, None)
        async with c:
            ns = await c.get_namespace_index(NAMESPACE_URI)
            assert await c.get_node(ua.NodeId("FillFinish.Status.StateCurrentName", ns)).read_value() == "Execute"
            obj = c.get_node(ua.NodeId("FillFinish", ns))
            with pytest.raises(ua.UaStatusCodeError) as err:
                await obj.call_method(f"{ns}:Command", "Abort", "", "")
            assert err.value.code == ua.StatusCodes.BadUserAccessDenied
            node = c.get_node(ua.NodeId("FillFinish.Status.StateCurrent", ns))
            with pytest.raises(ua.UaStatusCodeError):
                await node.write_value(ua.DataValue(ua.Variant(8, ua.VariantType.Int32)))
        assert controller.commands == [] and controller.state == State.Execute
        entries = registry_entries(record, "access")[before:]
        assert [(e.actor, e.data["what"]) for e in entries] == [("anonymous", "call Command Abort"),
                                                               ("anonymous", "write a value")]
    finally:
        await srv.stop()


async def test_refusal_during_a_batch_goes_into_the_batch(controller: Any, client: ControllerClient,
                                                          record: Any) -> None:
    """When the controller takes the refusal into the running batch's record, REG-ACCESS is not written."""
    written: list[tuple[str, str, dict[str, Any]]] = []
    controller.record_refusal = lambda actor, kind, data: written.append((actor, kind, data)) or True  # type: ignore
    try:
        controller.state = State.Execute
        before = len(registry_entries(record, "access"))
        with pytest.raises(CommandRejected):
            await client.command("Complete", "done early", "whatever-pass")
        assert len(registry_entries(record, "access")) == before
    finally:
        del controller.record_refusal
    ((actor, kind, data),) = written
    assert (actor, kind, data["what"]) == ("op1", "access_refused", "Command Complete")
    assert "role operator may not send Complete" in data["why"]
