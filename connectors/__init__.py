"""Vendor connectors: one package per vendor (client + sandbox), the shared HTTP policy and the sandbox kit.

Nothing in this package imports Django: the sync engine hands connectors a base URL, credentials and an
HttpPolicy, and connectors speak one vendor's API over HTTP (see connectors.base for the contract).
"""
