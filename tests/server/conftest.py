"""Test double of ControllerView for the OPC UA server and HMI tests: PackML rules from the real transition table;
the record's accounts on a temporary SQLite database; certificates made once per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from argon2 import PasswordHasher

from fillfinish.control import AlarmView, StatusView
from fillfinish.people.users import UserStore
from fillfinish.record.store import RecordStore
from fillfinish.server import ControllerServer, ServerSecurity
from fillfinish.machine.packml import (
    NEXT,
    CommandRefused,
    State,
    after_state_complete,
    parse_command,
    valid_commands_in,
)


@dataclass
class FakeController:
    """A ControllerView double: follows the PackML table (acting states complete at once) and records every call."""

    state: State = State.Stopped
    unit_mode: int = 1
    batch_id: str | None = "B-2026-001"
    product: str | None = "mAb-7 10 mg/mL"
    phase: str | None = "fill"
    planned: int = 100
    processed: int = 42
    defective: int = 1
    uv_dose: float = 61.5
    stop_reason: str = ""
    alarms: list[AlarmView] = field(default_factory=list)
    environment: dict[str, float] = field(
        default_factory=lambda: {"particles_0_5um_per_m3": 120.0, "downflow_m_s": 0.45, "hepa_dp_pa": 125.0}
    )
    refuse_with: str | None = None  # refuse every command with this reason (a controller-level refusal)
    fail_status: bool = False
    hold_cause: str = ""
    commands: list[tuple[str, str, str]] = field(default_factory=list)
    signatures: list[dict[str, Any]] = field(default_factory=list)
    acks: list[tuple[int, str]] = field(default_factory=list)

    def status(self) -> StatusView:
        """The current snapshot."""
        if self.fail_status:
            raise RuntimeError("status snapshot failed")
        return StatusView(
            state=int(self.state),
            state_name=self.state.name,
            unit_mode=self.unit_mode,
            batch_id=self.batch_id,
            product=self.product,
            phase=self.phase,
            planned=self.planned,
            processed=self.processed,
            defective=self.defective,
            uv_dose_mj_cm2=self.uv_dose,
            stop_reason=self.stop_reason,
            valid_commands=tuple(c.name for c in valid_commands_in(self.state)),
            alarms=tuple(self.alarms),
            environment=dict(self.environment),
            hold_cause=self.hold_cause,
            uv_target_mj_cm2=120.0,
        )

    async def command(self, command: str, actor: str, reason: str = "", signature: dict[str, Any] | None = None) -> str:
        """Apply a command by the PackML table; raise CommandRefused when it is not valid."""
        self.commands.append((command, actor, reason))
        if signature:
            self.signatures.append(signature)
        cmd = parse_command(command)
        if self.refuse_with is not None:
            raise CommandRefused(cmd, self.state, self.refuse_with, actor=actor)
        dest = NEXT.get((cmd.name, self.state))
        if dest is None:
            raise CommandRefused(cmd, self.state, actor=actor)
        self.state = after_state_complete(dest) or dest
        return self.state.name

    async def acknowledge(self, alarm_id: int, actor: str) -> None:
        """Mark an alarm acknowledged; KeyError for an unknown id."""
        for i, alarm in enumerate(self.alarms):
            if alarm.alarm_id == alarm_id:
                self.acks.append((alarm_id, actor))
                self.alarms[i] = replace(alarm, acknowledged=True, acknowledged_by=actor)
                return
        raise KeyError(f"no alarm with id {alarm_id}")

    def reset(self) -> None:
        """Back to the initial state between tests sharing one server."""
        fresh = FakeController()
        for name in fresh.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))


def alarm(alarm_id: int, severity: str = "action", message: str = "HEPA dp 20.0 Pa outside 80-200 Pa") -> AlarmView:
    """An unacknowledged alarm for tests."""
    return AlarmView(alarm_id, severity, "hepa_dp", message, "2026-11-25T10:00:00+00:00")


@pytest.fixture
def make_alarm() -> object:
    """The alarm factory (conftest helpers are reached through fixtures, not imports)."""
    return alarm


@pytest.fixture(scope="module")
def controller() -> FakeController:
    """One test double per test module (shared with the module's server)."""
    return FakeController()


@pytest.fixture(autouse=True)
def _fresh_controller(controller: FakeController) -> None:
    """Every test starts from the same double state."""
    controller.reset()


PASSWORDS = {"op1": "op1-password-1", "sup1": "sup1-password-1", "qa1": "qa1-password-12", "mes": "mes-password-12",
             "root": "root-password-1", "victim": "victim-password"}
ROLES = {"op1": "operator", "sup1": "supervisor", "qa1": "qa", "mes": "service", "root": "admin",
         "victim": "operator"}
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def server_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The controller's certificate folder, shared by every server of the session (made once, by the first)."""
    return tmp_path_factory.mktemp("server-pki")


@pytest.fixture(scope="session")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The console's certificate folder, shared by every client of the session."""
    return tmp_path_factory.mktemp("client-pki")


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    """A record database with the test accounts (module scope, like the server)."""
    store = RecordStore(f"sqlite:///{tmp_path_factory.mktemp('record') / 'record.db'}")
    people = UserStore(store, hasher=FAST_HASHER)
    for name, role in ROLES.items():
        people.add(name, name.title(), role, PASSWORDS[name], actor="setup")
    yield store
    store.close()


@pytest.fixture(scope="module")
def users(record: RecordStore) -> UserStore:
    """The accounts of the test record."""
    return UserStore(record, hasher=FAST_HASHER)


@pytest.fixture
def passwords() -> dict[str, str]:
    """User id -> password of the test accounts."""
    return dict(PASSWORDS)


def make_server(controller: Any, record: RecordStore, users: UserStore, pki: Path, **kw: Any) -> ControllerServer:
    """A ControllerServer on a free loopback port with the test accounts."""
    security = ServerSecurity(pki_dir=pki, users=users, store=record,
                              allow_anonymous_read=kw.pop("allow_anonymous_read", False))
    return ControllerServer(controller, security=security, update_interval_s=kw.pop("update_interval_s", 0.05), **kw)


@pytest.fixture(scope="session")
def server_factory() -> Any:
    """make_server as a fixture (test modules cannot import conftest)."""
    return make_server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(controller: FakeController, record: RecordStore, users: UserStore,
                 server_pki: Path) -> AsyncIterator[ControllerServer]:
    """A ControllerServer on a free loopback port (module scope: asyncua start takes about a second)."""
    srv = make_server(controller, record, users, server_pki)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
def login(client_pki: Path, passwords: dict[str, str]) -> Any:
    """login(endpoint, user) -> a ControllerClient for that test account (not yet connected)."""
    from fillfinish.hmi.client import ControllerClient

    def make(endpoint: str, user: str, password: str | None = None, **kw: Any) -> ControllerClient:
        # a request may wait seconds on a busy 2-core machine: the tests say when they want a short time-out. The
        # health probe too: with asyncua's 1 s, a stall of the test process under two CPU burners dropped a console's
        # session between its signature and its command, which then went out as "NOT SENT" (stress s15, 2026-12-01)
        kw.setdefault("timeout_s", 20.0)
        kw.setdefault("link_check_s", 10.0)
        return ControllerClient(endpoint, user=user, password=passwords.get(user, "") if password is None else password,
                                pki_dir=client_pki, **kw)

    return make
