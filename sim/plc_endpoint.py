"""The simulated PLC's endpoint set-up: who may open a session (user names and passwords), its self-signed server
certificate, and a free TCP port that stays free while the plc.server_stop fault holds the server down."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from cryptography.x509.oid import ExtendedKeyUsageOID

from sim.plc_space import APPLICATION_URI

class _PasswordUsers:
    """asyncua user manager: only the configured user names with their passwords get a session."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = dict(users)

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        """The session's user when name and password match, else None (asyncua answers BadUserAccessDenied)."""
        if username is not None and self.users.get(username) == password:
            return User(role=UserRole.User, name=username)
        return None


async def make_server_certificate(certificate: Path, private_key: Path) -> None:
    """Create a self-signed server certificate (DER) and key (PEM) for the simulator when they are missing."""
    certificate.parent.mkdir(parents=True, exist_ok=True)
    private_key.parent.mkdir(parents=True, exist_ok=True)
    await cert_gen.setup_self_signed_certificate(
        private_key, certificate, APPLICATION_URI, socket.gethostname(), [ExtendedKeyUsageOID.SERVER_AUTH],
        {"organizationName": "fillfinish simulator"},
    )


def _ephemeral_range() -> tuple[int, int]:
    """The OS's range of ports for outgoing connections and bind(0) (Linux; a common default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _free_port(host: str) -> int:
    """A free TCP port below the ephemeral range, so no outgoing connection or bind(0) elsewhere on the machine can
    take it while plc.server_stop holds the server down (it must come back on the same port)."""
    low, _high = _ephemeral_range()
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(min(20000, low - 1000), low - 1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
