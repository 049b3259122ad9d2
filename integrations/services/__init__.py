"""Writes inside a client schema: connections, flows, runs and the exception queue. Each audited."""
