"""Cross-cutting security: HTTP headers (CSP), request limits, log hygiene, WebSocket limits.

See SECURITY.md for the threat model these pieces answer to.
"""
