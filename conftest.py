# eventlet must patch the standard library before anything else is imported, or container tests
# hang instead of failing (nameko's pytest plugin no longer does it under pytest 8).
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated", category=DeprecationWarning)

import eventlet

eventlet.monkey_patch()
