"""Jira Cloud (ticketing): REST v3 issue connector and its local sandbox."""
