"""Sage Intacct, the ERP (connector in client.py, local emulator of the XML gateway in sandbox.py)."""
