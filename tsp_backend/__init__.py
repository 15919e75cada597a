"""The token service provider: provisioning, authorization and the token lifecycle (Flask)."""
