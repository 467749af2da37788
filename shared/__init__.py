"""Code common to every imagehub service: event contracts, typed errors, reference parsing."""
