"""What crosses the wire between the parts: events, typed errors, RPC argument schemas, references."""
