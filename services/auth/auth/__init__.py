"""The auth service: the registry's token service and the accounts API (see docs/auth-api.md)."""
