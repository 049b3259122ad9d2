"""Salesforce CRM: Accounts and Opportunities (connector in client.py, local emulator in sandbox.py)."""

from connectors.salesforce.client import SalesforceConnector

__all__ = ["SalesforceConnector"]
