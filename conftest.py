# eventlet must patch the standard library before anything else is imported, or container tests
# hang instead of failing (nameko's pytest plugin no longer does it under pytest 8).
import eventlet

eventlet.monkey_patch()
