"""Hardware abstraction layer: drivers that speak each device's own protocol over its real transport.

Knows bytes, nodes and units, nothing of batches; imports nothing of fillfinish/ or sim/.
"""
