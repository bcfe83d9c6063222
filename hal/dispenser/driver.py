"""CavroPump: the driver of a Tecan Cavro XCalibur / XLP 6000 syringe pump over one serial link (DT or OEM).

Every exchange goes through the link (so the wire log holds it). Moves are sent with R, then Q is polled until the
pump is ready or a deadline passes: deadline = (expected move time x safety) / clock_speed + reply timeout, in real
seconds. `clock_speed` is the simulated-clock speed of an emulator (1.0 for a real pump): the emulator moves that many
times faster than the wall clock. A dispense is never resent: a timeout, garbled answer or link loss after D was sent
raises DispenseOutcomeUnknown. The plunger position is the pump's answer to `?`; the driver reuses that answer only
while nothing but status and report questions went to the pump since (no move, no setting, no terminate).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Callable

import structlog

from hal.dispenser.base import Dispenser
from hal.dispenser.errors import (
    DispenseOutcomeUnknown,
    DispenseTerminated,
    ProtocolError,
    PumpError,
    PumpLinkLost,
    PumpTimeout,
    PumpUsageError,
    VolumeOutOfRange,
    error_for_code,
)
from hal.dispenser.protocol import (
    DT_TERMINATOR,
    MICROSTEPS,
    OEM_EXTRA,
    OEM_TERMINATOR,
    PumpStatus,
    Reply,
    build_dt_command,
    build_oem_block,
    next_sequence,
    parse_dt_reply,
    parse_oem_reply,
    steps_per_stroke,
    steps_to_volume,
    validate_address,
    volume_to_steps,
)
from hal.dispenser.pump_reports import PumpReports
from hal.dispenser.pump_setup import PumpSetup, _int_in
from hal.transport.errors import LinkClosed, LinkError, LinkTimeout
from hal.transport.serial_link import SerialLink
from hal.transport.wirelog import WireLog

PROTOCOLS = ("dt", "oem")
VALVE_COMMANDS = {"input": "I", "output": "O", "bypass": "B"}
QUESTIONS = frozenset("?Q&F")  # commands that only ask (status, reports, firmware, buffer): nothing moves
RAMP_MARGIN_S = 0.25  # device seconds added to steps / top speed for acceleration and deceleration ramps


def _positive(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise PumpUsageError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class CavroPump(PumpSetup, PumpReports, Dispenser):
    """One Cavro XCalibur / XLP 6000 pump at `address` on `link` (a SerialLink, or a ReplayLink in tests)."""

    def __init__(
        self,
        link: Any,
        *,
        address: str = "1",
        syringe_ul: float,
        model: str = "xcalibur",
        resolution: str = "N0",
        protocol: str = "dt",
        poll_interval_s: float = 0.005,
        reply_timeout_s: float = 0.1,
        retries: int = 2,
        speed_pulses_s: int = 1400,
        clock_speed: float = 1.0,
        move_safety: float = 2.0,
        init_timeout_s: float = 20.0,
        valve_timeout_s: float = 2.0,
        pause: Callable[[float], Any] | None = None,
    ) -> None:
        """`pause(real_s)`: how the driver waits between status questions (default: a real wait that terminate()
        cuts short); a simulator on a shared timeline passes one that moves simulated time instead."""
        self.link = link
        self._pause = pause
        self.address = validate_address(address)
        self.syringe_ul = _positive("syringe_ul", syringe_ul)
        steps_per_stroke(model, resolution)  # validates both
        self.model = model
        self.resolution = resolution
        if protocol not in PROTOCOLS:
            raise PumpUsageError(f"pump protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        self.protocol = protocol
        self.poll_interval_s = _positive("poll_interval_s", poll_interval_s)
        self.reply_timeout_s = _positive("reply_timeout_s", reply_timeout_s)
        self.retries = _int_in("retries", retries, 0, 10)
        self.top_speed = _int_in("speed_pulses_s", speed_pulses_s, 5, 6000)
        self.clock_speed = _positive("clock_speed", clock_speed)
        self.move_safety = _positive("move_safety", move_safety)
        self.init_timeout_s = _positive("init_timeout_s", init_timeout_s)
        self.valve_timeout_s = _positive("valve_timeout_s", valve_timeout_s)
        self._seq = 0  # last OEM sequence number sent (1..7 cycling)
        self._cmd_lock = threading.RLock()  # one command (with its resends) at a time; the link locks per exchange
        self._terminated = threading.Event()
        self._position_seen: int | None = None  # the last `?` answer, dropped by any command that is not a question
        self.log = structlog.get_logger("hal.dispenser").bind(device=getattr(link, "device", "pump"), address=address)

    @classmethod
    def open(
        cls,
        port: str,
        *,
        baudrate: int = 9600,
        device: str = "pump",
        wire_log: WireLog | None = None,
        exclusive: bool = False,
        **kw: Any,
    ) -> "CavroPump":
        """A pump on serial port `port` (device path or pyserial URL); kw go to the constructor."""
        return cls(SerialLink(port, device=device, baudrate=baudrate, wire_log=wire_log, exclusive=exclusive), **kw)

    # -- geometry --------------------------------------------------------------------------------------------------
    @property
    def steps_per_stroke(self) -> int:
        """Steps of a full stroke at the current resolution."""
        return steps_per_stroke(self.model, self.resolution)

    @property
    def ul_per_step(self) -> float:
        """Volume of one plunger step at the current resolution."""
        return steps_to_volume(1, self.syringe_ul, self.steps_per_stroke)

    def steps_for(self, volume_ul: float) -> int:
        """Steps for `volume_ul`; VolumeOutOfRange (nothing sent) if it does not fit the stroke."""
        return volume_to_steps(volume_ul, self.syringe_ul, self.steps_per_stroke)

    def move_seconds(self, steps: int) -> float:
        """Longest expected device seconds of a plunger move of `steps`: steps / top speed plus ramps."""
        return self.motion_seconds(steps) + RAMP_MARGIN_S

    def motion_seconds(self, steps: int) -> float:
        """Device seconds of a plunger move of `steps` at top speed, without ramps (when to ask first)."""
        return abs(steps) / MICROSTEPS[self.resolution] / self.top_speed

    # -- one command -----------------------------------------------------------------------------------------------
    def command(self, text: str, *, retry: bool = False, check: bool = True) -> Reply:
        """Send one command string, return the parsed answer; raises the typed error for error bits if `check`.

        `retry`: the command may be resent after a lost or garbled answer (only for commands that move nothing).
        In OEM mode every command is resent with the repeat bit, which the pump answers without executing again.
        """
        oem = self.protocol == "oem"
        attempts = 1 + self.retries if (retry or oem) else 1
        with self._cmd_lock:
            if text[:1] not in QUESTIONS:
                self._position_seen = None  # it may move the plunger: the next position is asked again
            if oem:
                self._seq = next_sequence(self._seq)
            failure: PumpError | None = None
            for attempt in range(attempts):
                if oem:
                    request = build_oem_block(self.address, self._seq, text, repeat=attempt > 0)
                else:
                    request = build_dt_command(self.address, text)
                try:
                    if oem:
                        raw = self.link.exchange(
                            request, terminator=OEM_TERMINATOR, extra=OEM_EXTRA, timeout=self.reply_timeout_s
                        )
                        reply = parse_oem_reply(raw)
                    else:
                        raw = self.link.exchange(request, terminator=DT_TERMINATOR, timeout=self.reply_timeout_s)
                        reply = parse_dt_reply(raw)
                    break
                except LinkTimeout:
                    failure = PumpTimeout(f"no answer to {text!r} within {self.reply_timeout_s} s (attempt {attempt + 1})")
                except ProtocolError as exc:
                    failure = exc
                except LinkClosed as exc:
                    self.log.error("pump.link_lost", command=text, error=str(exc))
                    raise PumpLinkLost(f"serial line lost during {text!r}: {exc}") from exc
                except LinkError as exc:
                    raise PumpLinkLost(f"serial link failed during {text!r}: {exc}") from exc
                self.log.warning("pump.no_valid_answer", command=text, attempt=attempt + 1, of=attempts, error=str(failure))
            else:
                assert failure is not None
                raise failure
        self.log.debug("pump.answer", command=text, ready=reply.status.ready, error=reply.status.error_code, data=reply.data)
        if check and reply.status.error_code:
            self.log.warning("pump.error", command=text, code=reply.status.error_code)
            raise error_for_code(reply.status.error_code, f"answer to {text!r}")
        return reply

    def _report(self, text: str) -> str:
        return self.command(text, retry=True).data

    def _report_int(self, text: str) -> int:
        data = self._report(text)
        try:
            return int(data)
        except ValueError:
            raise ProtocolError(f"answer to {text!r} is not an integer: {data!r}") from None

    def wait_ready(self, device_seconds: float, what: str, expected_s: float = 0.0) -> PumpStatus:
        """Wait for ready; PumpTimeout past (device_seconds x safety) / clock_speed + reply timeout (real s).

        No fixed poll granule: the driver sleeps until the move's expected end (`expected_s` device seconds, e.g.
        steps / top speed; a terminate() wakes it at once), then asks Q back to back, so the line's own answer time
        paces the polling (about 16 ms a Q at 9600 baud) and completion is seen as soon as the pump reports it.
        """
        start = time.monotonic()
        deadline = start + device_seconds * self.move_safety / self.clock_speed + self.reply_timeout_s
        wake = start + max(0.0, expected_s) / self.clock_speed
        if self._pause is not None and expected_s > 0:
            # a pause hook's time is the machine's (a simulator's shared timeline): the real time this process spent
            # since the command went out is not machine time, so the whole expected motion is paused
            self._pause(expected_s / self.clock_speed)
            wake = time.monotonic()
        while True:
            pause = wake - time.monotonic()
            if pause > 0:
                (self._pause or self._terminated.wait)(pause)
            status = self.command("Q", retry=True).status
            if status.ready:
                return status
            if time.monotonic() > deadline:
                raise PumpTimeout(f"{what}: pump still busy past its deadline ({device_seconds:.2f} s device time)")
            wake = time.monotonic() + self.poll_interval_s / 10  # past the expected end: a short yield per Q

    # -- moves -----------------------------------------------------------------------------------------------------
    def valve(self, port: str | int) -> None:
        """Turn the valve to "input", "output", "bypass" or distribution port n (I<n>)."""
        if isinstance(port, str) and port in VALVE_COMMANDS:
            text = VALVE_COMMANDS[port]
        elif isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 12:
            text = f"I{port}"
        else:
            raise PumpUsageError(f"valve port must be input, output, bypass or 1..12, got {port!r}")
        self.command(text + "R")
        self.wait_ready(self.valve_timeout_s, f"valve to {port}")

    def move_absolute(self, steps: int) -> None:
        """Move the plunger to absolute position `steps` (0 = top of the stroke)."""
        if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= self.steps_per_stroke:
            raise VolumeOutOfRange(f"plunger position must be 0..{self.steps_per_stroke}, got {steps!r}")
        start = self.position_steps()
        self.command(f"A{steps}R")
        self.wait_ready(self.move_seconds(steps - start), "absolute move", self.motion_seconds(steps - start))

    def aspirate(self, volume_ul: float) -> float:
        """Draw `volume_ul` (P, relative pick-up) through the current valve port; returns the volume moved."""
        steps = self.steps_for(volume_ul)
        position = self.position_steps()
        if position + steps > self.steps_per_stroke:
            free = steps_to_volume(self.steps_per_stroke - position, self.syringe_ul, self.steps_per_stroke)
            raise VolumeOutOfRange(f"cannot aspirate {volume_ul} uL: only {free:.3f} uL of the stroke is free")
        self.log.info("pump.aspirate", volume_ul=volume_ul, steps=steps)
        self.command(f"P{steps}R")
        self.wait_ready(self.move_seconds(steps), "aspirate", self.motion_seconds(steps))
        return steps * self.ul_per_step

    def dispense(self, volume_ul: float, *, rate_ul_s: float | None = None,
                 inhibit: threading.Event | None = None) -> float:
        """Push `volume_ul` out (D, relative dispense); returns the volume delivered (from plunger positions).

        Never resent. DispenseOutcomeUnknown on timeout, garbled answer or link loss after D went out;
        DispenseTerminated(delivered_ul) if terminate() (or anything else) stopped it short. `inhibit` (set by an
        interlock) is checked under the command lock just before D is sent, so an interlock that fires between the
        caller's last check and D either stops D from being sent or is followed by its T.
        """
        steps = self.steps_for(volume_ul)
        self._rate(rate_ul_s)
        before = self.position_steps()
        if steps > before:
            held = before * self.ul_per_step
            raise VolumeOutOfRange(f"cannot dispense {volume_ul} uL: the syringe holds {held:.3f} uL")
        self._terminated.clear()
        self.log.info("pump.dispense", volume_ul=volume_ul, steps=steps, position=before)
        try:
            with self._cmd_lock:  # terminate() needs this lock: it cannot slip in between the check and D
                if inhibit is not None and inhibit.is_set():
                    raise DispenseTerminated(f"dispense of {volume_ul} uL not started: inhibited by an interlock",
                                             delivered_ul=0.0, requested_ul=volume_ul)
                self.command(f"D{steps}R")
            self.wait_ready(self.move_seconds(steps), "dispense", self.motion_seconds(steps))
            after = self.position_steps(fresh=True)
        except (PumpTimeout, ProtocolError, PumpLinkLost) as exc:
            self.log.error("pump.dispense_outcome_unknown", volume_ul=volume_ul, error=str(exc))
            raise DispenseOutcomeUnknown(f"dispense of {volume_ul} uL: outcome unknown ({exc})") from exc
        delivered = (before - after) * self.ul_per_step
        if self._terminated.is_set() or after != before - steps:
            self.log.warning("pump.dispense_terminated", requested_ul=volume_ul, delivered_ul=delivered)
            raise DispenseTerminated(
                f"dispense of {volume_ul} uL stopped after {delivered:.3f} uL",
                delivered_ul=delivered,
                requested_ul=volume_ul,
            )
        return delivered

    def terminate(self) -> None:
        """T: stop a running plunger move at once (safe to call from another thread during a dispense)."""
        self._terminated.set()
        self.command("T", retry=True)
        self.log.warning("pump.terminate")  # after T went out: nothing delays the stop

    # -- domain verbs (the Dispenser interface) ------------------------------------------------------------------
    @property
    def capacity_ul(self) -> float:
        """The syringe's volume (uL)."""
        return self.syringe_ul

    def pulses_for(self, rate_ul_s: float) -> int:
        """Top speed in pulses/s for a plunger rate in uL/s at the current resolution (clamped to 5..6000)."""
        return max(5, min(6000, round(_positive("rate_ul_s", rate_ul_s) / self.ul_per_step)))

    def _rate(self, rate_ul_s: float | None) -> None:
        """Set the top speed for `rate_ul_s` unless it is already set (None: keep the current one)."""
        if rate_ul_s is not None and self.pulses_for(rate_ul_s) != self.top_speed:
            self.set_speed(self.pulses_for(rate_ul_s))

    def reinitialise(self) -> None:
        """Z with the force for the syringe (full force above 500 uL, half below), valve to the output."""
        self.initialise(force=0 if self.syringe_ul > 500 else 1)
        self.valve("output")

    def draw(self, volume_ul: float, *, rate_ul_s: float) -> float:
        """Valve to the reservoir (input), aspirate at the rate, valve back to the output."""
        self.steps_for(volume_ul)  # VolumeOutOfRange before the valve turns
        self.valve("input")
        self._rate(rate_ul_s)
        got = self.aspirate(volume_ul)
        self.valve("output")
        return got

    def empty_to_waste(self, *, rate_ul_s: float) -> None:
        """Wait out a move still running (the speed it runs at is unknown: allow a full stroke at the slowest top
        speed), set a known speed, valve to the output, plunger to the top of the stroke."""
        slowest_stroke_s = self.steps_per_stroke / MICROSTEPS[self.resolution] / 5.0 + 100.0
        self.wait_ready(slowest_stroke_s, "pump busy before emptying to waste")
        self.set_speed(self.pulses_for(rate_ul_s))
        self.valve("output")
        self.move_absolute(0)

    def close(self) -> None:
        """Close the serial link."""
        self.link.close()


__all__ = ["CavroPump"]
