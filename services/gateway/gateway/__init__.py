"""The gateway: the developers' console (server-rendered pages) and the HTTP API under ``/api/v1/``,
over the other services' RPC, each call made as the signed-in developer (issue 14)."""
