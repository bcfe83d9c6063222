"""Hardware-in-the-loop simulator: wire-level emulators of the pump, the balance and the PLC on one world model.

Written from the device manuals; imports nothing of hal/ or fillfinish/.
"""
