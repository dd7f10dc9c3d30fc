"""Shared helpers below every app: the error envelope, pagination, WebSocket frame checks, log
redaction, client addresses, cache plumbing, health probes and the security middleware.

This package imports no app (an import-linter contract keeps it so): apps import it, the
project wiring in `cs_platform/` configures it.
"""
