"""Basic256Sha256 SignAndEncrypt with self-signed certificates and user/password against the simulated PLC."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hal.plc import PlcAuthRefused, PlcConfigError, PlcDriver, PlcSecurity
from hal.plc.security import make_self_signed
from hal.transport.wirelog import WireLog
from sim.plc import PlcServer, make_server_certificate

SPEED = 100.0  # as tests/plc/conftest.py (modules do not import conftest)

USERS = {"operator": "s3cret-Pa55"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Client and server certificate/key pairs, generated once for the module."""
    import asyncio

    root = tmp_path_factory.mktemp("pki")
    paths = {
        "client_cert": root / "client.der", "client_key": root / "client.pem",
        "server_cert": root / "server.der", "server_key": root / "server.pem",
        "other_cert": root / "other.der", "other_key": root / "other.pem",
    }

    async def make() -> None:
        await make_self_signed(paths["client_cert"], paths["client_key"])
        await make_server_certificate(paths["server_cert"], paths["server_key"])
        await make_server_certificate(paths["other_cert"], paths["other_key"])

    asyncio.run(make())
    return paths


@pytest.fixture(scope="module")
def secure_plc(certs: dict[str, Path], plc_server_thread: Any, new_world: Any) -> Iterator[PlcServer]:
    runner = plc_server_thread(
        new_world(),
        security="Basic256Sha256_SignAndEncrypt",
        certificate=certs["server_cert"],
        private_key=certs["server_key"],
        users=USERS,
    )
    server = runner.start()
    try:
        yield server
    finally:
        runner.stop()


def security(certs: dict[str, Path], **overrides: Any) -> PlcSecurity:
    fields: dict[str, Any] = {
        "certificate": certs["client_cert"], "private_key": certs["client_key"],
        "server_certificate": certs["server_cert"], "username": "operator", "password": USERS["operator"],
    }
    fields.update(overrides)
    return PlcSecurity(**fields)


async def test_signed_and_encrypted_session_with_password(
    secure_plc: PlcServer, certs: dict[str, Path], no_tasks_left: Any
) -> None:
    log = WireLog()
    driver = PlcDriver(secure_plc.endpoint, secure_plc.nodes, security=security(certs), wire_log=log, clock_speed=SPEED)
    async with driver:
        assert driver.connected
        assert await driver.read("lamp_id") == "UVC-254-0007"
        await driver.move_positioner(4)
        assert driver.snapshot()["door_closed"].value is True
    await no_tasks_left()
    assert any(json.loads(e.data).get("op") == "read" for e in log.events)
    assert all("s3cret" not in e.data for e in log.events), "the password never reaches the wire log"


async def test_server_certificate_from_endpoint_when_not_pinned(
    secure_plc: PlcServer, certs: dict[str, Path], no_tasks_left: Any
) -> None:
    async with PlcDriver(secure_plc.endpoint, secure_plc.nodes, security=security(certs, server_certificate=None)) as d:
        assert await d.read("door_closed") is True
    await no_tasks_left()


@pytest.mark.parametrize(
    "overrides",
    [
        {"password": "wrong"},
        {"username": "intruder", "password": USERS["operator"]},
    ],
    ids=["wrong-password", "unknown-user"],
)
async def test_wrong_credentials_refused(
    secure_plc: PlcServer, certs: dict[str, Path], overrides: dict[str, Any], no_tasks_left: Any
) -> None:
    driver = PlcDriver(secure_plc.endpoint, secure_plc.nodes, security=security(certs, **overrides))
    with pytest.raises(PlcAuthRefused, match="BadUserAccessDenied|refused"):
        await driver.connect()
    assert not driver.connected
    await no_tasks_left()


async def test_anonymous_and_unsecured_clients_refused(
    secure_plc: PlcServer, certs: dict[str, Path], no_tasks_left: Any
) -> None:
    anonymous = security(certs, username=None, password=None)
    with pytest.raises(PlcAuthRefused):
        await PlcDriver(secure_plc.endpoint, secure_plc.nodes, security=anonymous).connect()
    with pytest.raises(PlcAuthRefused, match="No matching endpoints"):  # the server offers no None endpoint
        await PlcDriver(secure_plc.endpoint, secure_plc.nodes, timeout_s=1.0).connect()
    await no_tasks_left()


async def test_pinned_certificate_mismatch_refused(
    secure_plc: PlcServer, certs: dict[str, Path], no_tasks_left: Any
) -> None:
    wrong_pin = security(certs, server_certificate=certs["other_cert"])
    with pytest.raises(PlcAuthRefused, match="not the pinned one"):
        await PlcDriver(secure_plc.endpoint, secure_plc.nodes, security=wrong_pin, timeout_s=1.0).connect()
    await no_tasks_left()


def test_security_settings_are_checked(certs: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(PlcConfigError, match="certificate: file"):
        security(certs, certificate=tmp_path / "missing.der")
    with pytest.raises(PlcConfigError, match="mode 'Encrypt'"):
        security(certs, mode="Encrypt")
    with pytest.raises(PlcConfigError, match="username and password go together"):
        security(certs, password=None)
    assert PlcSecurity.from_site("None") is None
    with pytest.raises(PlcConfigError, match="allowed: 'None', 'Basic256Sha256_SignAndEncrypt'"):
        PlcSecurity.from_site("Basic128Rsa15_Sign")
    with pytest.raises(PlcConfigError, match="needs certificate and private_key"):
        PlcSecurity.from_site("Basic256Sha256_SignAndEncrypt")
    made = PlcSecurity.from_site(
        "Basic256Sha256_SignAndEncrypt", certificate=certs["client_cert"], private_key=certs["client_key"]
    )
    assert made is not None and made.mode == "SignAndEncrypt" and made.policy == "Basic256Sha256"
    assert "s3cret" not in repr(security(certs))
