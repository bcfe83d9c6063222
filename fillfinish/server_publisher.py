"""Publishes the controller's Status and EnvironmentValues tags from ControllerView snapshots: on a timer task and
at once after every method call, writing only the values that changed (server-side writes: clients read only)."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from asyncua import Server, ua

from fillfinish.control import ControllerView
from fillfinish.server_address_space import AddressSpace
from fillfinish.server_nodes import STATUS_TAGS
from fillfinish.server_security import AccessAudit
from fillfinish.server_tags import status_tags

log = structlog.get_logger("fillfinish.server")


class TagPublisher:
    """Writes one snapshot at a time into the address space; a failing view shows in StatusError, never stops it."""

    def __init__(self, view: ControllerView, audit: AccessAudit) -> None:
        self.view = view
        self.audit = audit
        self._server: Server | None = None
        self._space: AddressSpace | None = None
        self._task: asyncio.Task[None] | None = None
        self._last: dict[str, Any] = {}
        self._heartbeat = 0
        self._lock = asyncio.Lock()  # the update task and the method handlers both publish

    def attach(self, server: Server, space: AddressSpace) -> None:
        """Publish into this started server's address space from now on."""
        self._server, self._space = server, space

    def start(self, interval_s: float) -> None:
        """Start the task that refreshes the tags every interval_s seconds."""
        self._task = asyncio.create_task(self._update_loop(interval_s), name="fillfinish-server-tags")

    async def stop(self) -> None:
        """Stop the update task (idempotent) and write nothing more; leaves no task behind."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._server = None

    async def _update_loop(self, interval_s: float) -> None:
        """Refresh the tags from view.status() every interval_s until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.publish()
            except Exception:  # keep serving; the Heartbeat tag stops and the HMI shows "not updating"
                log.exception("controller_tag_update_failed")

    async def publish(self) -> None:
        """Write every changed tag from one snapshot; a failing view is shown in StatusError, never kills the task."""
        async with self._lock:  # a slower, older snapshot must not overwrite a newer one
            await self._publish_snapshot()

    async def _publish_snapshot(self) -> None:
        """One snapshot -> tags (call with the publish lock held)."""
        self._heartbeat = (self._heartbeat + 1) % 2_000_000_000
        values: dict[str, Any] = {"Heartbeat": self._heartbeat, "SecurityEvents": self.audit.as_json()}
        environment: dict[str, float] = {}
        try:
            snapshot = self.view.status()
            values.update(status_tags(snapshot))
            environment = {k: float(v) for k, v in snapshot.environment.items()}
            values["StatusError"] = ""
        except Exception as exc:  # the controller's bug must not take the HMI's view away silently
            log.exception("controller_status_failed")
            values["StatusError"] = f"{type(exc).__name__}: {exc}"
        for name, value in values.items():
            await self.write(name, value)
        for key, value in environment.items():
            await self._write_env(key, value)

    async def write(self, name: str, value: Any) -> None:
        """Write one Status tag if its value changed (server-side write: clients cannot)."""
        server, space = self._server, self._space
        if server is None or space is None or self._last.get(name, object()) == value:
            return
        vtype = STATUS_TAGS[name]
        await server.write_attribute_value(space.status_nodes[name].nodeid, ua.DataValue(ua.Variant(value, vtype)))
        self._last[name] = value

    async def _write_env(self, key: str, value: float) -> None:
        """Write one EnvironmentValues variable, creating it the first time the key appears."""
        server, space = self._server, self._space
        if server is None or space is None:
            return
        node = space.env_nodes.get(key)
        if node is None:
            await space.add_environment_value(key, value)
            self._last[f"env:{key}"] = value
            return
        if self._last.get(f"env:{key}") != value:
            await server.write_attribute_value(node.nodeid, ua.DataValue(ua.Variant(value, ua.VariantType.Double)))
            self._last[f"env:{key}"] = value
