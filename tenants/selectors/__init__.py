"""Reads of the public schema, one module a subject: access (who may reach what), people (teams, members,
invitations), usage (the monthly roll-up), revenue (statements, totals, MRR), renewals, changes (change
requests) and audit (the partner console's log)."""
