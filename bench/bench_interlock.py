"""Interlock reaction: from the PLC variable changing in the simulator to the pump's T (and the lamp off) arriving.

Three trips, each >= 200 trials while a real dispense runs (pump on a pty, worker thread polling its status):
- door: Door.Closed written False -> T at the pump emulator, and LampCommand False at the simulated PLC;
- particles: the SampleSeq of an action-level sample written -> T;
- HEPA: HEPA.DifferentialPressure written below the recipe's minimum -> T.
Ours is the controller's whole path: PlcDriver subscription -> EnvironmentMonitor -> AlarmHandling.on_alarm -> SafeState.terminate_now ->
CavroPump.terminate in a worker thread -> SerialLink -> pty; with the batch record (SQLite WAL + FULL) written as in
production. Timestamps come from wrappers on the simulator's instances (server write, pump emulator command, lamp
command), perf_counter in one process.
Raw floor, measured in the same run on the same variables: a raw asyncua client (its own thread and loop, the same
publishing interval) is notified of the same server write, and one raw pyserial Q round trip to a second pump
emulator; floor sample = notification + round trip.
Run: .venv/bin/python -m bench.bench_interlock [--trials 200] [--speed 2000]
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import serial
from asyncua import Client

from bench.common import REPO, Figure, Stats, base_parser, fmt, positive_float, positive_int, print_figures
from bench.common import print_table, quiet_logging, write_figures
from fillfinish.batch.controller import BatchController
from fillfinish.batch.monitoring import start_monitoring, stop_monitoring
from fillfinish.batch.recorder import BatchRecorder
from fillfinish.config import load_site_config
from fillfinish.recipes.loader import load_recipe
from fillfinish.session import controller_session
from hal.dispenser.errors import PumpError
from hal.plc.errors import PlcError
from sim.dispenser import PumpEmulator
from sim.pki import CONTROLLER_APPLICATION_URI
from sim.runner import Simulator

RECIPE = REPO / "recipes" / "fgf2.toml"
PUBLISHING_INTERVAL_MS = 20.0  # the PlcDriver's subscription interval; the raw client uses the same
PHASE = random.Random(20261201)
"""The trigger write's random delay (0 to one publishing interval): the simulated PLC writes on a grid (its 20 ms
mirror pass; particle samples every 30 real ms at speed 2,000), and against the two 20 ms publishing timers a grid
locks each subscription to a few phases for a whole run, which made the floor a lottery (a particles floor p99 of
13.5 ms, below the interval itself, 2026-12-01). Delayed by a uniform random time, each trial's write lands at any
phase of both timers; the change is timed at the write, so the delay is in neither figure."""
# trip name -> (fault injected in the world, trigger variable on the server, the monitor's alarm source)
TRIPS: dict[str, tuple[str, str, str]] = {
    "door": ("door.open", "door_closed", "door"),
    "particles": ("particles.burst", "particle_sample_seq", "particles_0_5um"),
    "HEPA": ("hepa.pressure_drop", "hepa_dp_pa", "hepa_dp"),
}


@dataclass
class Marks:
    """Real times (perf_counter) seen by the wrappers on the simulator, cleared before each trial."""

    armed: bool = False
    change: float | None = None  # the trigger variable written with its bad value
    terminate: float | None = None  # T reached the pump emulator
    lamp_off: float | None = None  # LampCommand False reached the simulated PLC
    raw_notified: float | None = None  # the raw asyncua client's handler saw the change
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget the last trial's times."""
        with self.lock:
            self.change = self.terminate = self.lamp_off = self.raw_notified = None

    def set(self, name: str) -> None:
        """Note the first time of `name` in this trial."""
        now = time.perf_counter()
        with self.lock:
            if self.armed and getattr(self, name) is None:
                setattr(self, name, now)


def is_bad(trigger: str, value: Any, hepa_min_pa: float) -> bool:
    """True if `value` written to `trigger` is the trip's bad value."""
    if trigger == "door_closed":
        return value is False
    if trigger == "hepa_dp_pa":
        return isinstance(value, float) and value < hepa_min_pa
    return trigger == "particle_sample_seq"  # the first sample number written after the burst starts


def instrument(sim: Simulator, marks: Marks, trip: dict[str, str], hepa_min_pa: float,
               action_0_5um: float) -> None:
    """Wrap the simulator's server write, pump command handler and lamp command to timestamp each trial."""
    server = sim.plc._server
    assert server is not None
    by_node = {node: signal for signal, node in sim.plc._nodes.items()}
    write = server.write_attribute_value
    counts = {"particles_0_5um_per_m3": 0.0}

    async def timed_write(nodeid: Any, datavalue: Any, *args: Any, **kw: Any) -> Any:
        """The server write, with the trial's change noted first."""
        signal = by_node.get(nodeid)
        if signal == "particles_0_5um_per_m3":
            counts[signal] = datavalue.Value.Value
        if signal is not None and signal == trip.get("trigger") and marks.change is None and marks.armed:
            burst = signal != "particle_sample_seq" or counts["particles_0_5um_per_m3"] >= action_0_5um
            if burst and is_bad(signal, datavalue.Value.Value, hepa_min_pa):
                await asyncio.sleep(PHASE.uniform(0.0, PUBLISHING_INTERVAL_MS / 1000))  # any phase of the timers
                marks.set("change")
        return await write(nodeid, datavalue, *args, **kw)

    server.write_attribute_value = timed_write  # type: ignore[method-assign]
    handle = sim.pump._handle

    def timed_handle(text: str) -> Any:
        """The pump emulator's command handler, with T noted."""
        if text == "T":
            marks.set("terminate")
        return handle(text)

    sim.pump._handle = timed_handle  # type: ignore[method-assign]
    set_lamp = sim.world.set_lamp

    def timed_lamp(on: bool) -> None:
        """The PLC's lamp output, with a switch-off noted."""
        if not on:
            marks.set("lamp_off")
        set_lamp(on)

    sim.world.set_lamp = timed_lamp  # type: ignore[method-assign]


class RawClient:
    """A raw asyncua client in its own thread and loop, subscribed to the trigger variables."""

    def __init__(self, endpoint: str, node_ids: dict[str, str], marks: Marks, trip: dict[str, str],
                 hepa_min_pa: float) -> None:
        """A client for `endpoint` watching `node_ids` (signal -> node id); marks go to `marks`."""
        self.endpoint, self.node_ids, self.marks, self.trip, self.hepa_min_pa = endpoint, node_ids, marks, trip, hepa_min_pa
        self.pki: Any = None  # the simulator's PLC certificates and user (sim/pki.py), set before start()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="raw-opcua", daemon=True)
        self.client: Client | None = None

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        """asyncua handler: note the change of the current trip's trigger."""
        signal = self.names.get(node.nodeid.to_string())
        if signal == self.trip.get("trigger") and is_bad(signal, value, self.hepa_min_pa):
            if self.marks.change is not None:
                self.marks.set("raw_notified")

    async def _start(self) -> None:
        """Connect and subscribe at the driver's publishing interval, with a queue like the driver's."""
        self.client = Client(self.endpoint)
        if self.pki is not None:  # the simulator's PLC is secured like a real one: the same session as the driver's
            self.client.application_uri = CONTROLLER_APPLICATION_URI
            await self.client.set_security_string(
                f"Basic256Sha256,SignAndEncrypt,{self.pki.client_certificate},{self.pki.client_key}")
            self.client.set_user(self.pki.username)
            self.client.set_password(self.pki.password)
        await self.client.connect()
        sub = await self.client.create_subscription(PUBLISHING_INTERVAL_MS, self)
        nodes = [self.client.get_node(n) for n in self.node_ids.values()]
        self.names = {n.nodeid.to_string(): s for n, s in zip(nodes, self.node_ids)}
        await sub.subscribe_data_change(nodes, sampling_interval=0.0, queuesize=64)

    def start(self) -> None:
        """Connect and subscribe (blocks until done)."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    def stop(self) -> None:
        """Disconnect and stop the thread."""
        if self.client is not None:
            asyncio.run_coroutine_threadsafe(self.client.disconnect(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def raw_round_trip(port: serial.Serial) -> float:
    """One raw pyserial Q round trip (write, read to the DT terminator), in seconds."""
    t0 = time.perf_counter()
    port.write(b"/1Q\r")
    buf = b""
    while not buf.endswith(b"\x03\r\n"):
        buf += port.read(port.in_waiting or 1)
    return time.perf_counter() - t0


async def until(predicate: Callable[[], bool], timeout: float, step: float = 0.0005) -> bool:
    """Wait (real time, bounded: this is a benchmark, not a test) until predicate holds; False on timeout."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(step)
    return True


@dataclass
class TripResult:
    """Latencies of one kind of trip, in seconds."""

    ours_t: list[float] = field(default_factory=list)
    ours_lamp: list[float] = field(default_factory=list)
    raw_notify: list[float] = field(default_factory=list)
    raw_serial: list[float] = field(default_factory=list)
    missed: int = 0

    def floor(self) -> list[float]:
        """Raw floor samples: notification + serial round trip, paired by trial."""
        return [a + b for a, b in zip(self.raw_notify, self.raw_serial)]


async def run_trips(sim: Simulator, folder: Path, trials: int) -> dict[str, TripResult]:
    """Run every trip `trials` times against a controller on `sim`; return the latencies."""
    recipe = load_recipe(RECIPE)
    hepa_min = recipe.recipe.environment.hepa_dp_min_pa
    site = load_site_config(sim.write_site_config(folder / "site.toml", f"sqlite:///{folder / 'record.db'}"))
    marks, trip = Marks(), {"trigger": ""}
    instrument(sim, marks, trip, hepa_min, recipe.recipe.environment.particles_0_5um_action_per_m3)
    raw_pump = PumpEmulator(sim.world, address="1", syringe_ul=1000.0)
    raw_port = serial.Serial(raw_pump.start(), 9600, timeout=1.0)
    raw = RawClient(sim.plc.endpoint, {s: sim.plc.nodes[s] for _, s, _ in TRIPS.values()}, marks, trip, hepa_min)
    raw.pki = sim.pki
    raw.start()
    results = {name: TripResult() for name in TRIPS}
    try:
        async with controller_session(site, recipe) as c:
            await prepare(c)
            for name, (fault, trigger, source) in TRIPS.items():
                trip["trigger"] = trigger
                print(f"  {name}: {trials} trials", flush=True)
                for i in range(trials):
                    try:
                        await one_trial(c, sim, marks, results[name], fault, source, door=name == "door")
                    except (PumpError, PlcError) as exc:  # e.g. a reply later than 0.1 s on a loaded machine
                        print(f"    trial {i + 1}: {type(exc).__name__}: {exc}; counted as missed", flush=True)
                        results[name].missed += 1
                        sim.world.faults.clear()
                        c.live.dispensing = False
                        await c.line.call(c.line.pump.initialise, 0)
                        await refill(c)
                        continue
                    results[name].raw_serial.append(raw_round_trip(raw_port))
            await stop_monitoring(c)
    finally:
        raw.stop()
        raw_port.close()
        raw_pump.stop()
    return results


async def prepare(c: BatchController) -> None:
    """A batch in the record, monitoring started, the pump initialised over waste with a full syringe."""
    c.planned, c.operator = 10, "op.bench"
    c.batch_id = c.store.create_batch(
        product="bench", product_code="BENCH", recipe_name=c.r.recipe.name, recipe_version=str(c.r.recipe.version),
        recipe_hash=c.loaded.sha256, recipe_snapshot=c.loaded.text, lot="L-INTERLOCK", planned_vials=10,
        operator="op.bench", mode="production", site_config={"bench": "interlock"},
    )
    c.rec = BatchRecorder(c.store, c.batch_id, on_failure=c.fail)
    await start_monitoring(c)
    pump = c.line.pump
    await c.line.plc.move_positioner(0, timeout_s=30.0)
    await c.line.call(pump.initialise, 0)
    await refill(c)


async def refill(c: BatchController) -> None:
    """Fill the syringe from the reservoir and turn the valve to the output; slow top speed for long dispenses."""
    pump = c.line.pump
    await c.line.call(pump.set_speed, 1400)
    await c.line.call(pump.valve, "input")
    await c.line.call(pump.move_absolute, pump.steps_per_stroke)
    await c.line.call(pump.valve, "output")
    await c.line.call(pump.set_speed, 5)  # 900 uL = 2,700 steps = 540 s simulated: the trip lands inside it


async def one_trial(c: BatchController, sim: Simulator, marks: Marks, result: TripResult, fault: str, source: str,
                    door: bool) -> None:
    """Start a dispense, trip the interlock, wait for T (and the lamp off), then clear and recover."""
    pump, monitor = c.line.pump, c.monitor
    assert monitor is not None
    await until(lambda: not monitor.active, timeout=5.0)  # a clean start: no alarm in force
    if await c.line.call(pump.volume_in_syringe_ul) < 900.0:
        await refill(c)
    c.live.inhibit.clear()
    c.live.lamp_off_confirmed = not door  # the door also switches the lamp off (as in a UV cycle)
    c.live.dispensing = True
    dispense = asyncio.ensure_future(c.line.call(pump.dispense, 900.0, inhibit=c.live.inhibit))
    await until(sim.pump.busy, timeout=5.0)
    await asyncio.sleep(random.uniform(0.0, 0.02))  # land the trip anywhere in the status polling
    marks.reset()
    marks.armed = True
    sim.world.faults.inject(fault)
    done = await until(lambda: marks.terminate is not None and marks.raw_notified is not None
                       and (not door or marks.lamp_off is not None), timeout=5.0)
    marks.armed = False
    try:
        await dispense
    except PumpError:
        pass  # DispenseTerminated: what the trip is for
    c.live.dispensing = False
    sim.world.faults.clear(fault)
    if not done or marks.change is None or marks.terminate is None or marks.terminate < marks.change:
        result.missed += 1
    else:
        result.ours_t.append(marks.terminate - marks.change)
        assert marks.raw_notified is not None
        result.raw_notify.append(marks.raw_notified - marks.change)
        if door and marks.lamp_off is not None:
            result.ours_lamp.append(marks.lamp_off - marks.change)
    await until(lambda: source not in monitor.active, timeout=5.0)
    if door:
        sim.world._burst_until = -float("inf")  # skip the simulated 3-minute particle recovery after a door
    await c.line.call(pump.set_speed, 5)


def report(results: dict[str, TripResult], trials: int, speed: float) -> list[Figure]:
    """Print the detail table and return the summary figures."""
    rows, figures = [], []
    for name, r in results.items():
        if not r.ours_t:
            print(f"{name}: no complete trial", file=sys.stderr)
            continue
        ours, floor = Stats.of(r.ours_t), Stats.of(r.floor())
        notify, rt = Stats.of(r.raw_notify), Stats.of(r.raw_serial)
        rows.append([f"{name}: change -> T at the pump", len(r.ours_t), r.missed, fmt(ours.median, "s"),
                     fmt(ours.p99, "s"), fmt(floor.median, "s"), fmt(floor.p99, "s"), f"{ours.p99 / floor.p99:.2f}"])
        rows.append([f"{name}: raw notification / raw Q round trip", "", "", fmt(notify.median, "s"),
                     fmt(notify.p99, "s"), fmt(rt.median, "s"), fmt(rt.p99, "s"), ""])
        figures += [Figure(f"interlock reaction p50 ({name})", ours.median, floor.median, "s"),
                    Figure(f"interlock reaction p99 ({name})", ours.p99, floor.p99, "s")]
        if r.ours_lamp:
            lamp = Stats.of(r.ours_lamp)
            rows.append([f"{name}: change -> lamp command off", len(r.ours_lamp), "", fmt(lamp.median, "s"),
                         fmt(lamp.p99, "s"), fmt(floor.median, "s"), fmt(floor.p99, "s"),
                         f"{lamp.p99 / floor.p99:.2f}"])
            figures.append(Figure(f"interlock lamp off p99 ({name})", lamp.p99, floor.p99, "s"))
    print(f"\ninterlock reaction, {trials} trials a trip, simulator clock speed {speed:g}, publishing interval "
          f"{PUBLISHING_INTERVAL_MS:g} ms (ours and raw); floor = raw notification + raw Q round trip")
    print_table(("path", "n", "missed", "ours p50", "ours p99", "floor p50", "floor p99", "p99 ours/floor"), rows)
    return figures


def main() -> None:
    """CLI entry point."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--trials", type=positive_int, default=200, help="trials per trip (default 200)")
    parser.add_argument("--speed", type=positive_float, default=2000.0,
                        help="simulator clock speed (default 2000: a particle sample every 30 ms real)")
    args = parser.parse_args()
    quiet_logging()
    random.seed(20261130)
    sim = Simulator(args.speed).start()
    try:
        with tempfile.TemporaryDirectory(prefix="ff-bench-interlock-") as tmp:
            results = asyncio.run(run_trips(sim, Path(tmp), args.trials))
    finally:
        sim.stop()
    figures = report(results, args.trials, args.speed)
    print()
    print_figures(figures)
    if args.json:
        write_figures(args.json, figures)
    if not figures:
        sys.exit(1)


if __name__ == "__main__":
    main()
