"""Check-weigh balance: Mettler Toledo MT-SICS over serial (protocol functions, typed errors, interface, driver)."""

from hal.balance.base import Balance
from hal.balance.driver import MtSicsBalance
from hal.balance.errors import (
    BalanceBusy,
    BalanceCommandError,
    BalanceError,
    BalanceLinkLost,
    BalanceLogicalError,
    BalanceNotStable,
    BalanceOverload,
    BalanceProtocolError,
    BalanceSyntaxError,
    BalanceTimeout,
    BalanceTransmissionError,
    BalanceUnderload,
    BalanceUnitError,
)
from hal.balance.protocol import Reading

__all__ = [
    "Balance",
    "BalanceBusy",
    "BalanceCommandError",
    "BalanceError",
    "BalanceLinkLost",
    "BalanceLogicalError",
    "BalanceNotStable",
    "BalanceOverload",
    "BalanceProtocolError",
    "BalanceSyntaxError",
    "BalanceTimeout",
    "BalanceTransmissionError",
    "BalanceUnderload",
    "BalanceUnitError",
    "MtSicsBalance",
    "Reading",
]
