# The contract tests drive the catalog's logic on the same migrated SQLite schema as its unit tests.
from tests.unit.catalog.conftest import migrated_template, session  # noqa: F401
