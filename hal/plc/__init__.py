"""The machine's PLC over OPC UA: UV lamp and sensors, HEPA, particle counter, door, vial positioner."""

from hal.plc.base import Plc
from hal.plc.driver import PlcDriver, Sample
from hal.plc.errors import (
    PlcAuthRefused,
    PlcBadNode,
    PlcConfigError,
    PlcError,
    PlcLinkLost,
    PlcTimeout,
    PlcWriteRefused,
    PositionerFault,
    PositionerTimeout,
)
from hal.plc.security import PlcSecurity
from hal.plc.signals import SIGNALS, Signal, subscribed_signals, validate_nodes

__all__ = [
    "SIGNALS",
    "Plc",
    "PlcAuthRefused",
    "PlcBadNode",
    "PlcConfigError",
    "PlcDriver",
    "PlcError",
    "PlcLinkLost",
    "PlcSecurity",
    "PlcTimeout",
    "PlcWriteRefused",
    "PositionerFault",
    "PositionerTimeout",
    "Sample",
    "Signal",
    "subscribed_signals",
    "validate_nodes",
]
