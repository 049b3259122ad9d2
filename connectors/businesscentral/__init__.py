"""Dynamics 365 Business Central (API v2.0): connector and sandbox."""
