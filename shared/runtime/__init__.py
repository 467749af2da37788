"""The kit every service is built from: database, outbox, broker and signal handling, registry auth."""
