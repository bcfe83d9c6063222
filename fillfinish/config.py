"""The site config: one TOML file naming the clock, device ports, the PLC endpoint and nodes, the database and site rules.

Layout as in docs/decisions/0001-layout-and-contracts.md. Unknown fields are errors. The PLC node names are checked
against hal/plc/signals.py by the caller at run time (this module does not import hal/).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fillfinish.masterdata.settings import MasterDataSettings
from fillfinish.security_settings import SecuritySettings
from fillfinish.validation import FileProblemsError, RuleViolations, load_toml_model, problem

__all__ = [
    "BalanceConfig",
    "ClockConfig",
    "ConfigError",
    "DatabaseConfig",
    "DispenserConfig",
    "LineConfig",
    "PlcConfig",
    "RecordSettings",
    "QualitySettings",
    "SiteConfig",
    "SiteRules",
    "load_site_config",
]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
_WHAT = "a TOML site config: [clock], [dispenser], [balance], [plc], [plc.nodes], [database], [site], [security]"

LooseDate = Annotated[datetime.date, Field(strict=False)]  # TOML date or the text "2026-06-01"
LoosePath = Annotated[Path, Field(strict=False)]  # a path given as text
BaudRate = Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]
NodeId = Annotated[str, Field(pattern=r"^(ns=\d+;)?(s=.+|i=\d+|g=[0-9A-Fa-f-]{36}|b=.+)$",
                                description="an OPC UA node id, e.g. ns=2;s=UV.LampOn or ns=2;i=1001")]


class ConfigError(FileProblemsError):
    """A site config file was rejected; `problems` holds every reason, each "FILE: field: message; allowed: ..."."""


class _Section(BaseModel):
    """Base for every config table: strict types, unknown fields forbidden, immutable."""

    model_config = _STRICT


class ClockConfig(_Section):
    """[clock]: simulated seconds per real second and the instant at which simulated and wall time agree."""

    speed: float = Field(default=1.0, gt=0, le=100_000, description="simulated seconds per real second")
    epoch: float | None = Field(default=None, ge=0, le=4_102_444_800, description="Unix time at which simulated time equals wall "
                                                                 "time; required when speed != 1")
    timeline: str | None = Field(default=None, min_length=1, description="file of the simulator's shared timeline "
                                 "(--speed max): time stands still while the software works; speed is its rate")

    @model_validator(mode="after")
    def _epoch(self) -> Self:
        """A sped-up clock needs the shared epoch, or controller and simulator would disagree on the time."""
        if self.speed != 1.0 and self.epoch is None:
            raise RuleViolations([("epoch", f"missing although speed = {self.speed:g}",
                                   "a Unix time in seconds shared by controller and simulator")])
        return self


class DispenserConfig(_Section):
    """[dispenser]: the syringe pump's serial port, address, protocol, model, syringe and resolution."""

    port: str = Field(min_length=1, description="device path or pyserial URL, e.g. /dev/ttyUSB0 or "
                                                "socket://127.0.0.1:7001")
    address: str = Field(pattern=r"^[1-9:;<=>?]$", description="pump address: one of 1..9 or : ; < = > ?")
    baudrate: BaudRate = Field(default=9600, description="serial baud rate")
    protocol: Literal["dt", "oem"] = Field(description="pump protocol: dt (data terminal) or oem (with checksum)")
    model: Literal["xcalibur", "xlp6000"] = Field(description="pump model: xcalibur (3,000 / 24,000 steps) or "
                                                              "xlp6000 (6,000 / 48,000 steps)")
    syringe_ul: float = Field(gt=0, le=50_000, description="syringe volume, microlitres")
    resolution: Literal["N0", "N1"] = Field(default="N0", description="plunger resolution mode")
    reply_timeout_s: float = Field(default=0.1, gt=0, le=10, description="real seconds the pump has to answer one "
                                   "command before it is asked again (reports) or the outcome is unknown (moves)")


class BalanceConfig(_Section):
    """[balance]: the check-weigh balance's serial port (MT-SICS)."""

    port: str = Field(min_length=1, description="device path or pyserial URL")
    baudrate: BaudRate = Field(default=9600, description="serial baud rate")


class PlcConfig(_Section):
    """[plc]: the OPC UA endpoint, its security and the node id of every signal."""

    endpoint: str = Field(pattern=r"^opc\.tcp://\S+$", description="OPC UA endpoint URL starting with opc.tcp://")
    security: Literal["None", "Basic256Sha256_SignAndEncrypt"] = Field(default="None",
                                                                        description="OPC UA security policy")
    certificate: LoosePath | None = Field(default=None, description="client certificate file (with security)")
    private_key: LoosePath | None = Field(default=None, description="client private key file (with security)")
    server_certificate: LoosePath | None = Field(default=None, description="server certificate file (optional)")
    username: str | None = Field(default=None, min_length=1, description="OPC UA user name (with password)")
    password: str | None = Field(default=None, min_length=1, description="OPC UA password (with username)")
    nodes: dict[str, NodeId] = Field(min_length=1, description='signal name = "node id" (e.g. "ns=2;s=UV.LampOn"); '
                                                                "names from hal/plc/signals.py")
    request_timeout_s: float = Field(default=2.0, gt=0, le=60, description="real seconds the PLC has to answer one "
                                     "OPC UA request (read, write, call); past it the link counts as lost")
    link_check_s: float = Field(default=0.5, gt=0, le=30, description="real seconds between the PLC link's health "
                                "probes; a probe not answered within it counts as a lost link")

    @model_validator(mode="after")
    def _security(self) -> Self:
        """Signed-and-encrypted security needs a certificate and key; a user name goes with a password."""
        bad: list[tuple[str, str, str]] = []
        if self.security != "None":
            for name in ("certificate", "private_key"):
                if getattr(self, name) is None:
                    bad.append((name, f"missing although security = '{self.security}'", "a path to a PEM or DER file"))
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            bad.append((missing, "missing: username and password go together", "both username and password, "
                                                                                "or neither"))
        if bad:
            raise RuleViolations(bad)
        return self


class DatabaseConfig(_Section):
    """[database]: the SQLAlchemy URL of the batch record database."""

    url: str = Field(pattern=r"^(sqlite|postgresql)(\+\w+)?://", description="SQLAlchemy URL, sqlite:///file.db or "
                                                                             "postgresql+psycopg://...")


class SiteRules(_Section):
    """[site]: rules of this line: media fill validity, balance check validity, UV lamp life."""

    aps_last_success: LooseDate = Field(description="date of the last successful media fill (APS) on this line")
    aps_validity_days: int = Field(ge=1, le=3660, description="days an APS stays valid (company: 365; Annex 1 9.38 "
                                                              "suggests about 183)")
    balance_check_valid_until: LooseDate = Field(description="last day the balance calibration/check is valid")
    lamp_warn_hours: float = Field(gt=0, le=100_000, description="UV lamp hours at which to warn")
    lamp_max_hours: float = Field(gt=0, le=100_000, description="UV lamp hours at which the lamp is locked out")

    @model_validator(mode="after")
    def _lamp(self) -> Self:
        """The warning comes before the lock-out."""
        if self.lamp_warn_hours >= self.lamp_max_hours:
            raise RuleViolations([("lamp_warn_hours", f"{self.lamp_warn_hours:g} h is not below lamp_max_hours = "
                                                      f"{self.lamp_max_hours:g} h", "lamp_warn_hours < lamp_max_hours")])
        return self

    def aps_valid_until(self) -> datetime.date:
        """Last day on which production may start on the strength of the last successful APS."""
        return self.aps_last_success + datetime.timedelta(days=self.aps_validity_days)


class RecordSettings(_Section):
    """[record]: which line's ledger this controller appends to, where the site key is, and whether this config
    drives the simulator (then every batch is recorded in mode `simulation` and can never be released)."""

    line_id: str = Field(default="line-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
                         description="this line's id in a site database shared by several lines")
    key_file: LoosePath | None = Field(default=None, description="site key file (outside the database); default "
                                                                 "beside a SQLite database file")
    simulation: bool = Field(default=False, description="true in the config the simulator writes: batches are "
                                                        "recorded in mode simulation")


class ViableLimit(_Section):
    """Alert and action limit of one viable sample type in one grade, CFU (None: no limit set)."""

    alert: float | None = Field(default=None, ge=0, description="alert level, CFU (site, from trend data)")
    action: float | None = Field(default=None, ge=0, description="action limit, CFU (EU GMP Annex 1 Table 6)")


def _limits(air: tuple[float, float], settle: tuple[float, float], contact: tuple[float, float],
            glove: tuple[float, float] | None) -> "ViableGradeLimits":
    """Grade limits from (alert, action) pairs."""
    return ViableGradeLimits(air=ViableLimit(alert=air[0], action=air[1]),
                             settle=ViableLimit(alert=settle[0], action=settle[1]),
                             contact=ViableLimit(alert=contact[0], action=contact[1]),
                             glove=ViableLimit(alert=glove[0], action=glove[1]) if glove else ViableLimit())


class ViableGradeLimits(_Section):
    """Limits of one grade: air (CFU/m3), settle plate (CFU/4 h), contact plate (CFU/plate), glove print (CFU/glove)."""

    air: ViableLimit = Field(default_factory=ViableLimit)
    settle: ViableLimit = Field(default_factory=ViableLimit)
    contact: ViableLimit = Field(default_factory=ViableLimit)
    glove: ViableLimit = Field(default_factory=ViableLimit)


def _annex1_table6() -> dict[str, ViableGradeLimits]:
    """EU GMP Annex 1 (2022) Table 6 action limits for grades B, C, D; alert levels at about half (site default)."""
    return {"B": _limits((5, 10), (2, 5), (2, 5), (2, 5)),
            "C": _limits((50, 100), (25, 50), (12, 25), None),
            "D": _limits((100, 200), (50, 100), (25, 50), None)}


class QualitySettings(_Section):
    """[quality]: deviation numbering and grouping, viable alert/action limits (grade A: no growth); the line id is
    `[record] line_id`."""

    deviation_prefix: str = Field(default="DEV", pattern=r"^[A-Z][A-Z0-9]{0,11}$",
                                  description="deviation numbers are PREFIX-YEAR-NNNN, e.g. DEV-2026-0001")
    deviation_group_window_s: float = Field(default=900.0, ge=0, le=24 * 3600,
                                            description="alarms within this many seconds of a deviation's first "
                                                        "alarm are one event (e.g. a door opening and its excursions)")
    viable_limits: dict[Literal["B", "C", "D"], ViableGradeLimits] = Field(
        default_factory=_annex1_table6, description="alert/action limits per grade (grade A: any growth is action)")


class LineConfig(_Section):
    """[line]: which filling line this config drives; one controller per line (the PLC grants the line to one)."""

    id: str = Field(default="line-1", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
                    description="line id, e.g. line-1 (letters, digits, . _ -)")


class SiteConfig(_Section):
    """The whole site config file."""

    clock: ClockConfig = Field(default_factory=ClockConfig)
    line: LineConfig = Field(default_factory=LineConfig)
    dispenser: DispenserConfig
    balance: BalanceConfig
    plc: PlcConfig
    database: DatabaseConfig
    site: SiteRules
    record: RecordSettings = Field(default_factory=RecordSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    master_data: MasterDataSettings = Field(default_factory=MasterDataSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    @model_validator(mode="before")
    @classmethod
    def _one_line_id(cls, data: Any) -> Any:
        """One line id for the whole config: `[line] id`; `[record] line_id` and `[master_data] line_id` may repeat
        it (older configs), never differ. Every section then carries the same id."""
        if not isinstance(data, dict):
            return data
        sections = {name: data.get(name) if isinstance(data.get(name), dict) else {}
                    for name in ("line", "record", "master_data")}
        given = {f"{name}.{key}": sections[name][key]
                 for name, key in (("line", "id"), ("record", "line_id"), ("master_data", "line_id"))
                 if key in sections[name]}
        if len(set(map(str, given.values()))) > 1:
            listed = ", ".join(f"{where} = {value!r}" for where, value in given.items())
            raise ValueError(f"line ids differ ({listed}); allowed: one line id, set as [line] id")
        if given:
            line = next(iter(given.values()))
            data = dict(data, line=dict(sections["line"], id=line), record=dict(sections["record"], line_id=line),
                        master_data=dict(sections["master_data"], line_id=line))
        return data
        record = data.get("record") if isinstance(data.get("record"), dict) else {}
        master = data.get("master_data") if isinstance(data.get("master_data"), dict) else {}
        line = record.get("line_id", master.get("line_id"))
        if "line_id" in record and "line_id" in master and record["line_id"] != master["line_id"]:
            raise ValueError(f"master_data.line_id {master['line_id']!r} differs from record.line_id "
                             f"{record['line_id']!r}; allowed: one line id, set as [record] line_id")
        if line is not None:
            data = dict(data, record=dict(record, line_id=line), master_data=dict(master, line_id=line))
        return data


def load_site_config(path: str | Path) -> SiteConfig:
    """Read and validate a site config; relative key/certificate paths are resolved against the file's folder.

    Raises ConfigError listing every problem (missing file, TOML syntax, wrong types, ranges, missing key files).
    """
    config, _read = load_toml_model(path, SiteConfig, _WHAT, ConfigError)
    return _resolve_files(Path(path), config)


def _resolve_files(path: Path, config: SiteConfig) -> SiteConfig:
    """Make the PLC's key/certificate paths absolute (relative to the config file) and check that they exist."""
    updates: dict[str, Path] = {}
    problems: list[str] = []
    for name in ("certificate", "private_key", "server_certificate"):
        value: Path | None = getattr(config.plc, name)
        if value is None:
            continue
        full = value if value.is_absolute() else (path.parent / value)
        if not full.is_file():
            problems.append(problem(path, f"plc.{name}", f"file not found: {full}",
                                    "a path to an existing file, absolute or relative to the config file"))
        updates[name] = full
    if problems:
        raise ConfigError(path, problems)
    key_file = config.record.key_file
    if key_file is not None and not key_file.is_absolute():  # relative to the config file, like the PLC's files
        config = config.model_copy(update={"record": config.record.model_copy(
            update={"key_file": path.parent / key_file})})
    pki = config.security.pki_dir
    if not pki.is_absolute():  # the controller's certificate folder, next to the site config
        config = config.model_copy(update={"security": config.security.model_copy(
            update={"pki_dir": path.parent / pki})})
    if not updates:
        return config
    return config.model_copy(update={"plc": config.plc.model_copy(update=updates)})
