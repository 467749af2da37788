"""The catalog's engines are ``shared.runtime.db.create_engine``'s (tuned per database); this is the name
the migrations' env.py and the tests import it by."""

from shared.runtime.db import create_engine  # noqa: F401
