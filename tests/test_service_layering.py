"""The application layer's arrows (docs/architecture.md, decision 0016): the command line only parses, calls a
service and prints, so it opens no device, line or controller session itself; the console's client never imports the
server module (the address space's names are in fillfinish/server_nodes.py)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI_MODULES = sorted((ROOT / "fillfinish").glob("cli*.py"))
# what drives hardware or runs a batch: only the services (fillfinish/batch/service.py, fillfinish/demo.py) may
# (`fillfinish sim` starts the simulator itself: that is its service; exception types may be imported to map them)
DEVICE_MODULES = ("fillfinish.line", "fillfinish.line_safety", "fillfinish.session", "fillfinish.batch.controller",
                  "fillfinish.batch.line_recovery", "hal.dispenser.driver", "hal.balance.driver", "hal.plc.driver")


def _imported_modules(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in `path` (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_cli_modules_drive_no_device_themselves() -> None:
    assert len(CLI_MODULES) >= 4
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in CLI_MODULES for m in sorted(_imported_modules(p))
                 if any(m == d or m.startswith(d + ".") for d in DEVICE_MODULES)]
    assert not offenders, "; ".join(offenders)


def test_the_cli_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in CLI_MODULES}
    assert all(n <= 400 for n in sizes.values()), sizes


def test_the_console_client_does_not_import_the_server() -> None:
    offenders = [f"{p.relative_to(ROOT)} imports {m}" for p in sorted((ROOT / "fillfinish" / "hmi").glob("*.py"))
                 for m in _imported_modules(p) if m == "fillfinish.server" or m.startswith("fillfinish.server.")]
    assert not offenders, "; ".join(offenders)
