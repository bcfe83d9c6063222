"""The whole simulator: one world, the pump and balance emulators on ptys, the PLC's OPC UA server on loopback.

`Simulator.start()` brings everything up (the OPC UA server in its own asyncio loop thread) and `site_config_toml()`
writes the site config that points a controller at it. Used by `fillfinish sim`, `fillfinish demo` and test fixtures.
The PLC is secured by default like a real one (Basic256Sha256 SignAndEncrypt, one user; sim/pki.py), and the emitted
site config carries the controller's certificate, the pinned PLC certificate and the user.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Coroutine

from sim.balance import BalanceEmulator
from sim.clock import SimClock, Timeline
from sim.dispenser import PumpEmulator
from sim.pki import PlcPki, make_plc_pki
from sim.plc import PlcServer
from sim.world import World, WorldSettings

PLC_REQUEST_TIMEOUT_S = 10.0
PLC_LINK_CHECK_S = 5.0
"""The simulator's PLC link limits, written into its site config (decision 0026) and used by the tests' drivers:
the emulated PLC is a thread of a shared PC, whose stalls are not the machine's (a real PLC keeps 2 s and 0.5 s)."""


class Simulator:
    """Starts and stops every emulator on one World and SimClock."""

    def __init__(
        self,
        speed: float = 1.0,
        *,
        settings: WorldSettings | None = None,
        syringe_ul: float = 1000.0,
        pump_model: str = "xcalibur",
        pump_address: str = "1",
        plc_port: int = 0,
        faults_file: Path | None = None,
        secure: bool = True,
        pki_dir: Path | None = None,
        timeline: Path | None = None,
        opcua_shelf: Path | None = None,
    ) -> None:
        """`timeline`: a file for `--speed max` (docs/simulator.md): simulated time then stands still while the
        software works and moves only when a wait on the machine asks, at most `speed` simulated s per real s.
        `opcua_shelf`: a ready copy of OPC UA's standard address space for the PLC's server (a fast start)."""
        if timeline is not None:
            Timeline(timeline, create=True, rate=speed).close()
        self.clock = SimClock(speed=speed, timeline=timeline)
        self.world = World(self.clock, settings)
        self.syringe_ul = syringe_ul
        self.pump_model = pump_model
        self.pump_address = pump_address
        self.pump = PumpEmulator(self.world, address=pump_address, syringe_ul=syringe_ul, model=pump_model)
        self.balance = BalanceEmulator(self.world)
        self.opcua_shelf = opcua_shelf
        self.plc = PlcServer(self.world, port=plc_port, shelf=opcua_shelf)
        self.plc_port = plc_port
        self.secure = secure
        self.pki: PlcPki | None = None
        self._pki_dir = Path(pki_dir) if pki_dir is not None else None
        self._own_pki_dir: str | None = None
        self._faults_file = faults_file
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.pump_path = ""
        self.balance_path = ""

    # -- lifecycle ---------------------------------------------------------------------------------------------------
    def start(self) -> "Simulator":
        if self._faults_file is not None:
            self.world.faults.load(self._faults_file)
        self.pump_path = self.pump.start()
        self.balance_path = self.balance.start()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sim-plc", daemon=True)
        self._thread.start()
        if self.secure:
            self._secure_plc()
        self.run(self.plc.start(), timeout=30)
        return self

    def _secure_plc(self) -> None:
        """Certificates and the controller's user for the PLC (in pki_dir, else a folder removed at stop)."""
        if self._pki_dir is None:
            self._own_pki_dir = tempfile.mkdtemp(prefix="fillfinish-sim-pki-")
            self._pki_dir = Path(self._own_pki_dir)
        pki = self.run(make_plc_pki(self._pki_dir), timeout=60)
        self.pki = pki
        self.plc = PlcServer(self.world, port=self.plc_port, security="Basic256Sha256_SignAndEncrypt",
                             certificate=pki.server_certificate, private_key=pki.server_key, users=pki.users,
                             shelf=self.opcua_shelf)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        """Run a coroutine in the simulator's loop (the PLC server lives there) and wait for it."""
        assert self._loop is not None, "simulator not started"
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return fut.result(timeout)

    def stop(self) -> None:
        try:
            if self._loop is not None:
                try:
                    self.run(self.plc.stop(), timeout=10)
                finally:
                    self._loop.call_soon_threadsafe(self._loop.stop)
                    if self._thread:
                        self._thread.join(timeout=5)
                    self._loop.close()
                    self._loop = None
        finally:
            try:
                self.pump.stop()
            finally:
                self.balance.stop()
                if self._own_pki_dir is not None:
                    shutil.rmtree(self._own_pki_dir, ignore_errors=True)
                    self._own_pki_dir = None

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the site config that points at this simulator --------------------------------------------------------------
    def site_config_toml(self, database_url: str) -> str:
        """A site config (TOML) for a controller on this machine, pointing at this simulator."""
        nodes = "\n".join(f"{name} = {_q(node)}" for name, node in sorted(self.plc.nodes.items()))
        aps = time.strftime("%Y-%m-%d", time.gmtime(self.clock.now() - 90 * 86400))
        cal = time.strftime("%Y-%m-%d", time.gmtime(self.clock.now() + 60 * 86400))
        return f"""# Site config written by the fillfinish simulator; it points at the simulator's ptys and OPC UA endpoint.
[clock]
speed = {self.clock.speed!r}
epoch = {self.clock.epoch!r}
{self._timeline_line()}
[dispenser]
port = {_q(self.pump_path)}
address = {_q(self.pump_address)}
baudrate = 9600
protocol = "dt"
model = {_q(self.pump_model)}
syringe_ul = {float(self.syringe_ul)!r}
resolution = "N0"
# the emulator answers from a thread of a shared PC, not from pump firmware: its scheduling stalls are not the
# machine's, so the simulator's config gives the pump a second to answer (a real pump's config keeps 0.1 s)
reply_timeout_s = 1.0

[balance]
port = {_q(self.balance_path)}
baudrate = 9600

[plc]
endpoint = {_q(self.plc.endpoint)}
# the emulated PLC is a thread of a shared PC: a stall of that PC is not the machine's, so the simulator's config gives
# it 10 s to answer an OPC UA request and 5 s to answer a link probe (a real PLC's config keeps the default 2 s and 0.5 s)
request_timeout_s = {PLC_REQUEST_TIMEOUT_S!r}
link_check_s = {PLC_LINK_CHECK_S!r}
{self.pki.site_config_lines() if self.pki is not None else 'security = "None"'}

[plc.nodes]
{nodes}

[database]
url = {_q(database_url)}

[site]
aps_last_success = {_q(aps)}
aps_validity_days = 365
balance_check_valid_until = {_q(cal)}
lamp_warn_hours = 7000.0
lamp_max_hours = 8500.0

[record]
simulation = true
"""

    def _timeline_line(self) -> str:
        """The [clock] timeline entry when the simulator runs on a shared timeline (else nothing)."""
        return f"timeline = {_q(self.clock.timeline.path)}\n" if self.clock.timeline is not None else ""

    def write_site_config(self, path: Path, database_url: str) -> Path:
        path = Path(path)
        path.write_text(self.site_config_toml(database_url), encoding="utf-8")
        return path


def _q(text: str) -> str:
    """A TOML basic string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
