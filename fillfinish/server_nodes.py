"""The controller's OPC UA address space as names: shared by the server (fillfinish/server.py) and its clients
(fillfinish/hmi/client.py), so a client never imports the server. docs/hmi.md lists every node."""

from __future__ import annotations

from asyncua import ua

NAMESPACE_URI = "urn:fillfinish:controller"
APPLICATION_URI = "urn:fillfinish:controller:opcua-server"
"""The server certificate's SubjectAltName URI (not the namespace: a namespace names nodes, this names the server)."""
ENDPOINT_PATH = "/fillfinish/controller"
OBJECT_NAME = "FillFinish"
STATUS_OBJECT = "FillFinish.Status"
ENVIRONMENT_OBJECT = "FillFinish.EnvironmentValues"
COMMAND_METHOD = "FillFinish.Command"
ACK_METHOD = "FillFinish.AcknowledgeAlarm"

SECURITY_POLICY = "Basic256Sha256"
SECURITY_MODES = ("SignAndEncrypt", "Sign")
"""The endpoints the server offers (no None endpoint): SignAndEncrypt first, the one clients should pick."""

# Status tag name -> OPC UA variant type (order is the order of the address space and of docs/hmi.md).
STATUS_TAGS: dict[str, ua.VariantType] = {
    "StateCurrent": ua.VariantType.Int32,
    "StateCurrentName": ua.VariantType.String,
    "UnitModeCurrent": ua.VariantType.Int32,
    "UnitModeCurrentName": ua.VariantType.String,
    "BatchId": ua.VariantType.String,
    "Product": ua.VariantType.String,
    "Phase": ua.VariantType.String,
    "PlannedCount": ua.VariantType.Int32,
    "ProdProcessedCount": ua.VariantType.Int32,
    "ProdDefectiveCount": ua.VariantType.Int32,
    "UvDose_mJ_cm2": ua.VariantType.Double,
    "UvDoseTarget_mJ_cm2": ua.VariantType.Double,
    "StopReason": ua.VariantType.String,
    "HoldCause": ua.VariantType.String,
    "ValidCommands": ua.VariantType.String,
    "Alarms": ua.VariantType.String,
    "AlarmCount": ua.VariantType.Int32,
    "UnacknowledgedAlarmCount": ua.VariantType.Int32,
    "Environment": ua.VariantType.String,
    "EnvironmentLimits": ua.VariantType.String,
    "SecurityEvents": ua.VariantType.String,
    "LastCommandResult": ua.VariantType.String,
    "StatusError": ua.VariantType.String,
    "Heartbeat": ua.VariantType.Int32,
}
