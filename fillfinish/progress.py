"""Progress on the terminal for long work (UV cycle, tip UV, fill, post-fill window), with rich progress bars."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class BatchProgress:
    """One bar per batch step; `update(what, done, total)` is the controller's ProgressFn."""

    def __init__(self, console: Console | None = None, enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description:<22}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=self.console, transient=False, disable=not enabled,
        )
        self._tasks: dict[str, TaskID] = {}
        self._scale: dict[str, float] = {}

    def __enter__(self) -> "BatchProgress":
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def update(self, what: str, done: float, total: float) -> None:
        if what == "held":
            self._progress.console.print("[bold yellow]machine HELD: waiting for a person (Unhold or Abort)")
            return
        scale = 100.0 if total == 1.0 else 1.0  # fractions are shown as percent
        if what not in self._tasks:
            self._tasks[what] = self._progress.add_task(what, total=round(total * scale))
        self._progress.update(self._tasks[what], completed=round(done * scale), total=round(total * scale))
