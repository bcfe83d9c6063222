"""OPC UA security for the PLC link: Basic256Sha256 SignAndEncrypt with our application certificate, user/password.

The controller presents its own certificate (whose SubjectAltName URI must equal `application_uri`) and pins the
PLC's certificate when `server_certificate` is given (a different one is refused); without it the server's
certificate is taken from its endpoint list (trust on first use: fine for commissioning, not for production).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import cert_gen, security_policies, uacrypto
from cryptography.x509.oid import ExtendedKeyUsageOID

from hal.plc.errors import PlcConfigError
from hal.transport.opcua_link import LinkRefused

POLICIES = {"Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256}
MODES = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}
SITE_SECURITY = ("None", "Basic256Sha256_SignAndEncrypt")  # the values of the site config's [plc] security
DEFAULT_APPLICATION_URI = "urn:fillfinish:controller"


@dataclass(frozen=True)
class PlcSecurity:
    """How the controller secures its OPC UA session with the PLC (applied to the asyncua Client before connect)."""

    certificate: Path
    private_key: Path
    server_certificate: Path | None = None
    username: str | None = None
    password: str | None = None
    policy: str = "Basic256Sha256"
    mode: str = "SignAndEncrypt"
    application_uri: str = DEFAULT_APPLICATION_URI

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise PlcConfigError(f"[plc] security policy {self.policy!r} not supported; allowed: {', '.join(POLICIES)}")
        if self.mode not in MODES:
            raise PlcConfigError(f"[plc] security mode {self.mode!r} not supported; allowed: {', '.join(MODES)}")
        for field_name in ("certificate", "private_key", "server_certificate"):
            path = getattr(self, field_name)
            if path is None:
                continue
            object.__setattr__(self, field_name, Path(path))
            if not Path(path).is_file():
                raise PlcConfigError(f"[plc] {field_name}: file {str(path)!r} does not exist")
        if (self.username is None) != (self.password is None):
            raise PlcConfigError("[plc] username and password go together: give both or neither")

    @classmethod
    def from_site(
        cls,
        security: str,
        *,
        certificate: Path | str | None = None,
        private_key: Path | str | None = None,
        server_certificate: Path | str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> "PlcSecurity | None":
        """From the site config's [plc] fields: None for security = "None", else a checked PlcSecurity."""
        if security == "None":
            return None
        if security not in SITE_SECURITY:
            raise PlcConfigError(f"[plc] security = {security!r}; allowed: {', '.join(map(repr, SITE_SECURITY))}")
        if certificate is None or private_key is None:
            raise PlcConfigError(f"[plc] security = {security!r} needs certificate and private_key (paths)")
        policy, mode = security.split("_", 1)
        return cls(
            certificate=Path(certificate),
            private_key=Path(private_key),
            server_certificate=Path(server_certificate) if server_certificate else None,
            username=username,
            password=password,
            policy=policy,
            mode=mode,
        )

    async def apply(self, client: Client) -> None:
        """Configure `client`: application URI, security policy with our certificate/key, user identity."""
        client.application_uri = self.application_uri
        if self.server_certificate is not None:
            await self._check_pinned(client)
        await client.set_security(
            POLICIES[self.policy],
            certificate=str(self.certificate),
            private_key=str(self.private_key),
            server_certificate=str(self.server_certificate) if self.server_certificate else None,
            mode=MODES[self.mode],
        )
        if self.username is not None and self.password is not None:
            client.set_user(self.username)
            client.set_password(self.password)

    async def _check_pinned(self, client: Client) -> None:
        """Refuse at once (instead of a silent timeout) when the server presents another certificate than the pinned one."""
        pinned = uacrypto.der_from_x509(await uacrypto.load_certificate(str(self.server_certificate)))
        endpoints = await client.connect_and_get_server_endpoints()
        offered = [
            ep for ep in endpoints
            if ep.SecurityPolicyUri == POLICIES[self.policy].URI and ep.SecurityMode == MODES[self.mode]
        ]
        if not offered:
            raise LinkRefused(f"the server offers no {self.policy} {self.mode} endpoint", device="plc")
        presented = offered[0].ServerCertificate or b""
        if not presented.startswith(pinned):
            raise LinkRefused(
                f"the server's certificate is not the pinned one ({self.server_certificate}); "
                "replace server_certificate only after checking the PLC's new certificate",
                device="plc",
            )

    def __repr__(self) -> str:  # never show the password in logs
        return (
            f"PlcSecurity(policy={self.policy!r}, mode={self.mode!r}, certificate={str(self.certificate)!r}, "
            f"server_certificate={str(self.server_certificate) if self.server_certificate else None!r}, "
            f"username={self.username!r})"
        )


async def make_self_signed(
    certificate: Path, private_key: Path, application_uri: str = DEFAULT_APPLICATION_URI, *, server: bool = False
) -> tuple[Path, Path]:
    """Create (or keep, when still valid) a self-signed application certificate (DER) and key (PEM)."""
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    certificate, private_key = Path(certificate), Path(private_key)
    certificate.parent.mkdir(parents=True, exist_ok=True)
    private_key.parent.mkdir(parents=True, exist_ok=True)
    await cert_gen.setup_self_signed_certificate(
        private_key, certificate, application_uri, socket.gethostname(), usage, {"organizationName": "fillfinish"}
    )
    return certificate, private_key
