"""Test double of ControllerView for the OPC UA server and HMI tests: PackML rules from the real transition table."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from fillfinish.control import AlarmView, StatusView
from fillfinish.server import ControllerServer
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
    commands: list[tuple[str, str, str]] = field(default_factory=list)
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
        )

    async def command(self, command: str, actor: str, reason: str = "") -> str:
        """Apply a command by the PackML table; raise CommandRefused when it is not valid."""
        self.commands.append((command, actor, reason))
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


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(controller: FakeController) -> AsyncIterator[ControllerServer]:
    """A ControllerServer on a free loopback port (module scope: asyncua start takes about a second)."""
    srv = ControllerServer(controller, update_interval_s=0.05)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()
