"""The simulator's PLC is secured by default like a real one (issue 6 point 8): Basic256Sha256 SignAndEncrypt and one
user, written into the site config it emits; anonymous or unsecured clients cannot write its command nodes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from asyncua import Client, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from fillfinish.config import load_site_config
from sim.runner import Simulator


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    sim = Simulator(100.0).start()
    try:
        yield sim
    finally:
        sim.stop()


def test_emitted_site_config_names_the_secure_path(simulator: Simulator, tmp_path: Path) -> None:
    config = load_site_config(simulator.write_site_config(tmp_path / "site.toml", "sqlite:///x.db"))
    assert config.plc.security == "Basic256Sha256_SignAndEncrypt"
    assert config.plc.username == "controller" and config.plc.password
    assert config.plc.server_certificate is not None and config.plc.server_certificate.is_file()
    assert config.plc.certificate is not None and config.plc.private_key is not None


async def test_unsecured_and_anonymous_clients_cannot_write_commands(simulator: Simulator, tmp_path: Path) -> None:
    with pytest.raises(ua.UaError, match="No matching endpoints"):  # no None endpoint at all
        async with Client(simulator.plc.endpoint, timeout=2):
            pass
    cert, key = tmp_path / "intruder.der", tmp_path / "intruder.pem"
    await setup_self_signed_certificate(key, cert, "urn:intruder", socket.gethostname(),
                                        [ExtendedKeyUsageOID.CLIENT_AUTH], {"organizationName": "intruder"})
    anonymous = Client(simulator.plc.endpoint, timeout=2)
    anonymous.application_uri = "urn:intruder"
    await anonymous.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
    with pytest.raises(ua.UaStatusCodeError) as err:
        await anonymous.connect()
    await anonymous.disconnect()
    assert err.value.code in (ua.StatusCodes.BadIdentityTokenRejected, ua.StatusCodes.BadUserAccessDenied)
    assert simulator.world.lamp_on() is False, "the lamp was never switched"

    assert simulator.pki is not None
    user = Client(simulator.plc.endpoint, timeout=2)
    user.application_uri = "urn:intruder"
    await user.set_security_string(f"Basic256Sha256,SignAndEncrypt,{cert},{key}")
    user.set_user(simulator.pki.username)
    user.set_password("guessed-password")
    with pytest.raises(ua.UaStatusCodeError) as err:
        await user.connect()
    await user.disconnect()
    assert err.value.code == ua.StatusCodes.BadUserAccessDenied
