"""Security of the simulated PLC (secure by default, like a real one): its server certificate, the controller's
client certificate it trusts, and the one user allowed to open a session; written into the site config it emits.

Written with asyncua and cryptography only (the simulator imports nothing of hal/ or fillfinish/).
"""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography.x509.oid import ExtendedKeyUsageOID

PLC_APPLICATION_URI = "urn:fillfinish:sim:plc"
CONTROLLER_APPLICATION_URI = "urn:fillfinish:controller"
"""The controller's application URI as a PLC client (hal/plc/security.py uses the same; its certificate must say so)."""
SECURITY = "Basic256Sha256_SignAndEncrypt"
CONTROLLER_USER = "controller"


@dataclass(frozen=True)
class PlcPki:
    """The files and credentials of one secured simulated PLC."""

    server_certificate: Path
    server_key: Path
    client_certificate: Path
    client_key: Path
    username: str
    password: str

    @property
    def users(self) -> dict[str, str]:
        """The PLC's user table (user name -> password) for its user manager."""
        return {self.username: self.password}

    def site_config_lines(self) -> str:
        """The [plc] security lines of the emitted site config (paths absolute, password quoted)."""
        return "\n".join([
            f'security = "{SECURITY}"',
            f"certificate = {_q(str(self.client_certificate))}",
            f"private_key = {_q(str(self.client_key))}",
            f"server_certificate = {_q(str(self.server_certificate))}",
            f"username = {_q(self.username)}",
            f"password = {_q(self.password)}",
        ])


async def make_plc_pki(folder: Path) -> PlcPki:
    """Create (or keep, while valid) the PLC's server certificate and the controller's client certificate in
    `folder`, with a fresh random password for the controller's PLC user."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    server_cert, server_key = folder / "plc-server-cert.der", folder / "plc-server-key.pem"
    client_cert, client_key = folder / "controller-client-cert.der", folder / "controller-client-key.pem"
    await cert_gen.setup_self_signed_certificate(server_key, server_cert, PLC_APPLICATION_URI, host,
                                                 [ExtendedKeyUsageOID.SERVER_AUTH],
                                                 {"organizationName": "fillfinish simulator"})
    await cert_gen.setup_self_signed_certificate(client_key, client_cert, CONTROLLER_APPLICATION_URI, host,
                                                 [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "fillfinish"})
    for key in (server_key, client_key):
        try:
            key.chmod(0o600)
        except OSError:
            pass
    return PlcPki(server_cert, server_key, client_cert, client_key, CONTROLLER_USER, secrets.token_urlsafe(18))


def _q(text: str) -> str:
    """A TOML basic string."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
