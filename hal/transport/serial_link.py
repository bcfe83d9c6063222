"""One serial connection (pyserial): a lock around each request/reply, a deadline per reply, typed errors, wire log.

`url` is anything pyserial opens: a device path (/dev/ttyUSB0, a pty's /dev/pts/N) or a URL such as
socket://127.0.0.1:7000. Framing is the driver's business: it says which byte ends a reply and how many follow it.
"""

from __future__ import annotations

import termios
import threading
import time

import serial
import structlog

from hal.transport.errors import LinkClosed, LinkTimeout
from hal.transport.wirelog import WireLog


class SerialLink:
    """Request/reply over pyserial, one exchange at a time; reopens a lost port on the next exchange, but never one
    its owner closed (a task still running after its session ended must not take the port back)."""

    def __init__(
        self,
        url: str,
        *,
        device: str,
        baudrate: int = 9600,
        wire_log: WireLog | None = None,
        exclusive: bool = False,
    ) -> None:
        self.url = url
        self.exclusive = exclusive  # flock the port: a second process cannot open it (one controller per line)
        self.device = device
        self.baudrate = baudrate
        self.wire_log = wire_log
        self.log = structlog.get_logger("hal.serial").bind(device=device, port=url)
        self._lock = threading.RLock()
        self._port: serial.SerialBase | None = None
        self._closed = False  # closed by its owner: exchanges are refused until `open()` is called again

    @property
    def is_open(self) -> bool:
        return self._port is not None and self._port.is_open

    def open(self) -> None:
        """Open the port (exclusively if asked); LinkClosed naming the port when it cannot be opened."""
        with self._lock:
            self._closed = False
            if self.is_open:
                return
            try:
                self._port = serial.serial_for_url(
                    self.url, baudrate=self.baudrate, bytesize=8, parity="N", stopbits=1, timeout=0.01,
                    write_timeout=1.0, **({"exclusive": True} if self.exclusive else {}),
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                self._port = None
                raise LinkClosed(f"cannot open {self.url}: {exc}", device=self.device) from exc
            self.log.debug("serial.open", baudrate=self.baudrate)

    def close(self) -> None:
        """Close the port for good: later exchanges raise LinkClosed instead of reopening it."""
        with self._lock:
            self._closed = True
            self._drop()

    def _drop(self) -> None:
        """Close the OS port (lost or closed); the next exchange reopens it unless the owner closed the link."""
        with self._lock:
            if self._port is not None:
                try:
                    self._port.close()
                finally:
                    self._port = None
                self.log.debug("serial.close")

    def _lost(self, exc: BaseException, partial: bytes = b"") -> LinkClosed:
        self.log.warning("serial.lost", error=str(exc))
        try:
            self._drop()
        except (serial.SerialException, OSError, termios.error):
            self._port = None
        return LinkClosed(f"serial line lost: {exc}", device=self.device, partial=partial)

    def exchange(self, request: bytes, *, terminator: bytes, extra: int = 0, timeout: float = 1.0) -> bytes:
        """Send `request`, return the reply up to `terminator` plus `extra` bytes; LinkTimeout past `timeout` s."""
        with self._lock:
            if self._closed:
                raise LinkClosed(f"{self.url} was closed by its owner", device=self.device)
            self.open()
            assert self._port is not None
            try:
                self._port.reset_input_buffer()  # a late answer to an earlier request must not pass for this one
                self._port.write(request)
                self._port.flush()
            except (serial.SerialException, OSError, termios.error) as exc:  # termios.error: pty/USB gone
                raise self._lost(exc) from exc
            if self.wire_log:
                self.wire_log.record(self.device, "tx", request)
            reply = self._read_frame(terminator, extra, timeout)
            if self.wire_log:
                self.wire_log.record(self.device, "rx", reply)
            return reply

    def _read_frame(self, terminator: bytes, extra: int, timeout: float) -> bytes:
        assert self._port is not None
        deadline = time.monotonic() + timeout
        buf = bytearray()
        while True:
            end = buf.find(terminator)
            if end >= 0 and len(buf) >= end + len(terminator) + extra:
                return bytes(buf[: end + len(terminator) + extra])
            if time.monotonic() >= deadline:
                if self.wire_log and buf:
                    self.wire_log.record(self.device, "rx", bytes(buf))
                raise LinkTimeout(f"no complete reply within {timeout:.3f} s", device=self.device, partial=bytes(buf))
            try:
                chunk = self._port.read(max(1, self._port.in_waiting))
            except (serial.SerialException, OSError, termios.error) as exc:
                raise self._lost(exc, bytes(buf)) from exc
            buf += chunk
