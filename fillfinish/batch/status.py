"""The run's status as the console and the OPC UA server show it (fillfinish/control.py:StatusView)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fillfinish.control import StatusView
from fillfinish.machine.packml import State

if TYPE_CHECKING:
    from fillfinish.batch.controller import BatchController

UNIT_MODES = {"production": 1, "media_fill": 4}
"""PackML unit modes of the recipe's modes."""


def status_view(self: BatchController) -> StatusView:
    """What the console and the OPC UA tags show of run `self` now."""
    c, live = self.history.counts, self.live
    env = {k: v for k, v in (self.monitor.latest.items() if self.monitor else []) if isinstance(v, (int, float))}
    return StatusView(
        state=int(self.machine.state), state_name=self.machine.state.name,
        unit_mode=UNIT_MODES.get(self.r.recipe.mode, 1), batch_id=self.batch_id, product=self.r.recipe.product_name,
        phase=self.phases.current.value if self.phases.current else None, planned=self.planned,
        processed=c["accepted"], defective=c["rejected"] + c["uncertain"],
        uv_dose_mj_cm2=round(live.uv["uv_cycle"].dose_mj_cm2 if "uv_cycle" in live.uv else live.uv_live, 2),
        stop_reason=self.stop_reason, valid_commands=tuple(cmd.name for cmd in self.machine.valid_commands()),
        alarms=tuple(self.alarms), environment=env, environment_limits=_env_limits(self),
        hold_cause=(live.hold_cause or "") if self.machine.state in (State.Held, State.Holding) else "",
        uv_target_mj_cm2=float(self.r.uv.target_dose_mj_cm2),
    )


def _env_limits(self: BatchController) -> dict[str, tuple[float | None, float | None]]:
    """The recipe's action limits and ranges, keyed like the environment values (for the console)."""
    e = self.r.environment
    return {"particles_0_5um_per_m3": (None, e.particles_0_5um_action_per_m3),
            "particles_5um_per_m3": (None, e.particles_5um_action_per_m3),
            "hepa_dp_pa": (e.hepa_dp_min_pa, e.hepa_dp_max_pa),
            "downflow_m_s": (e.downflow_min_m_s, e.downflow_max_m_s),
            "particle_flow_l_min": (e.min_sample_flow_l_min, None)}
