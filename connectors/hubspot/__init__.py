"""HubSpot CRM: companies and deals (connector in client.py, local emulator in sandbox.py)."""

from connectors.hubspot.client import HubSpotConnector

__all__ = ["HubSpotConnector"]
