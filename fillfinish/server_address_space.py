"""Builds the controller's OPC UA address space: the FillFinish object, its read-only Status tags, the
EnvironmentValues object and the Command / AcknowledgeAlarm methods (node names in fillfinish/server_nodes.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from asyncua import Node, Server, ua

from fillfinish.server_nodes import ACK_METHOD, COMMAND_METHOD, ENVIRONMENT_OBJECT, OBJECT_NAME, STATUS_OBJECT, STATUS_TAGS
from fillfinish.server_tags import INITIAL_VALUES

MethodHandler = Callable[..., Awaitable[ua.CallMethodResult]]
"""(parent node id, *argument variants) -> the method's result."""


@dataclass
class AddressSpace:
    """The nodes the tag publisher writes: one per Status tag, and the EnvironmentValues object with its variables."""

    ns: int
    environment: Node
    status_nodes: dict[str, Node] = field(default_factory=dict)
    env_nodes: dict[str, Node] = field(default_factory=dict)

    def nid(self, name: str) -> ua.NodeId:
        """A string node id in our namespace (stable names an MES can configure)."""
        return ua.NodeId(name, self.ns)

    async def add_environment_value(self, key: str, value: float) -> Node:
        """Create the EnvironmentValues variable for a key seen the first time (a Double, read-only)."""
        node = await self.environment.add_variable(self.nid(f"{ENVIRONMENT_OBJECT}.{key}"),
                                                   ua.QualifiedName(key, self.ns),
                                                   ua.Variant(value, ua.VariantType.Double),
                                                   varianttype=ua.VariantType.Double)
        self.env_nodes[key] = node
        return node


async def build_address_space(server: Server, ns: int, on_command: MethodHandler,
                              on_acknowledge: MethodHandler) -> AddressSpace:
    """Create FillFinish, its Status and EnvironmentValues objects, the tags and the two methods."""
    root = await server.nodes.objects.add_object(ua.NodeId(OBJECT_NAME, ns), ua.QualifiedName(OBJECT_NAME, ns))
    status = await root.add_object(ua.NodeId(STATUS_OBJECT, ns), ua.QualifiedName("Status", ns))
    environment = await root.add_object(ua.NodeId(ENVIRONMENT_OBJECT, ns), ua.QualifiedName("EnvironmentValues", ns))
    space = AddressSpace(ns, environment)
    for name, vtype in STATUS_TAGS.items():
        space.status_nodes[name] = await status.add_variable(  # not set_writable: clients read only
            space.nid(f"{STATUS_OBJECT}.{name}"), ua.QualifiedName(name, ns),
            ua.Variant(INITIAL_VALUES[vtype], vtype), varianttype=vtype)
    await _add_methods(root, space, on_command, on_acknowledge)
    return space


async def _add_methods(root: Node, space: AddressSpace, on_command: MethodHandler,
                       on_acknowledge: MethodHandler) -> None:
    """Command(command, reason, signaturePassword) and AcknowledgeAlarm(alarmId), each with one String result."""
    await root.add_method(
        space.nid(COMMAND_METHOD),
        ua.QualifiedName("Command", space.ns),
        on_command,
        [
            _arg("command", ua.NodeId(ua.ObjectIds.BaseDataType),
                 "PackML command number (Int32: Reset 1 .. Complete 10) or name (String)"),
            _arg("reason", ua.NodeId(ua.ObjectIds.String), "why (recorded in the batch record); may be empty"),
            _arg("signaturePassword", ua.NodeId(ua.ObjectIds.String),
                 "the session user's password again, as an electronic signature, for Abort, Complete and Unhold "
                 "after an alarm (SignAndEncrypt sessions only); empty otherwise"),
        ],
        [_arg("result", ua.NodeId(ua.ObjectIds.String), "new state name, or the refusal text on a Bad status")],
    )
    await root.add_method(
        space.nid(ACK_METHOD),
        ua.QualifiedName("AcknowledgeAlarm", space.ns),
        on_acknowledge,
        [_arg("alarmId", ua.NodeId(ua.ObjectIds.Int32), "alarm id (from the Alarms tag)")],
        [_arg("result", ua.NodeId(ua.ObjectIds.String), "confirmation, or the error text on a Bad status")],
    )


def _arg(name: str, datatype: ua.NodeId, description: str) -> ua.Argument:
    """A method argument description (shown by generic OPC UA clients)."""
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = datatype
    arg.ValueRank = -1
    arg.Description = ua.LocalizedText(description)
    return arg
