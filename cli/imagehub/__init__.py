"""The ``imagehub`` command line: browse the catalogue and manage tags over nameko RPC."""
