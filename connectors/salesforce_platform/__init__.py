"""Pieces every vendor on the Salesforce platform shares: the REST connector (rest.py) and the org emulator (org.py)."""
