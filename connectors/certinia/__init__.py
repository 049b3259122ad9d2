"""Certinia PSA on the Salesforce platform (connector in client.py, local emulator in sandbox.py)."""
