"""Partners, client workspaces (one PostgreSQL schema each), users, memberships, plans and routing."""
