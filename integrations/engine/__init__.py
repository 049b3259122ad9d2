"""The sync engine: plain Python, no views. A reader, a mapper, a validator and writers joined by
one orchestrator (integrations.engine.orchestrator). It knows the canonical model, not any vendor."""
