"""Code common to every imagehub service, by role.

* ``shared.contracts``: what crosses the wire between the parts: event schemas, typed errors,
  RPC argument schemas and the image-reference grammar. Imported by the services and the CLI.
* ``shared.runtime``: the kit a service is built from (database, outbox, broker and signal fixes,
  the registry's token auth).
* ``shared.ops``: what operators and orchestrators run against a service (probes).

Test helpers live in ``tests/support`` and never ship in a service image.
"""
