"""Authentication and authorisation: JWT verification, the built-in SMART authorization server, scopes,
the ABAC policy engine, and the HTTP hardening around them (docs/security.md)."""
