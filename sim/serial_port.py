"""A serial line for an emulator: a pseudo-terminal whose slave path a driver opens with pyserial.

The emulator's `feed(bytes) -> list[bytes]` gets every byte the host writes and returns the replies to send; the
port delays each reply by the device's answer time plus the bytes' transmission time at the baud rate (10 bits a
byte, 8N1), both on the simulator's clock. `close()` pulls the cable: the slave side then fails with EIO.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from typing import Callable, Protocol

from sim.clock import SimClock


class LineDevice(Protocol):
    """What an emulator offers its serial line."""

    def feed(self, data: bytes) -> list[bytes]: ...


class PtySerialPort:
    """Serves one emulator on a new pty until closed; runs its reader in a daemon thread."""

    def __init__(
        self,
        device: LineDevice,
        clock: SimClock,
        *,
        baudrate: int = 9600,
        answer_delay_s: float = 0.005,
        name: str = "serial",
        is_silent: Callable[[], bool] = lambda: False,
    ) -> None:
        self.device = device
        self.clock = clock
        self.baudrate = baudrate
        self.answer_delay_s = answer_delay_s
        self.name = name
        self.is_silent = is_silent
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass as they are
        self.path = os.ttyname(self._slave)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=f"sim-{name}", daemon=True)
        self._thread.start()

    def byte_time(self, n: int) -> float:
        """Simulated seconds that n bytes take on the line (8N1: 10 bits each)."""
        return n * 10.0 / self.baudrate

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except OSError:
                if self._stop.is_set():
                    return
                # nobody has the slave open right now (EIO): wait for a driver to open it
                self._stop.wait(0.01)
                continue
            if not data:
                continue
            self.clock.sleep(self.byte_time(len(data)))
            for reply in self.device.feed(data):
                if self.is_silent():
                    continue
                self.clock.sleep(self.answer_delay_s + self.byte_time(len(reply)))
                try:
                    os.write(self._master, reply)
                except OSError:
                    pass

    def close(self) -> None:
        """Stop serving and close both ends: the line is gone for whoever has the slave open."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def closed(self) -> bool:
        return self._closed
