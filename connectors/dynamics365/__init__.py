"""Dynamics 365 Sales (Dataverse Web API): connector and sandbox."""
