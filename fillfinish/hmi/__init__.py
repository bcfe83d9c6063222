"""The operator console (Textual) and its OPC UA client of the controller server."""
