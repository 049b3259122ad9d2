"""Everything that lives in a client's own schema: connections, flows, the canonical model, runs,
exceptions and the audit log."""
