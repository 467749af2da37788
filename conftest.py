# eventlet must patch the standard library before anything else is imported, or container tests
# hang instead of failing (nameko's pytest plugin no longer does it under pytest 8).
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated", category=DeprecationWarning)

import eventlet

eventlet.monkey_patch()

import os

# The services' metrics pages listen on fixed ports by default (config.yml); tests start many
# services at once, so none serves one unless a test gives it a port of its own (the e2e stack).
for _service in ("AUTH", "CATALOG", "WEBHOOK", "DEPLOYER", "GATEWAY"):
    os.environ.setdefault(f"{_service}_METRICS_PORT", "0")


def pytest_configure(config):
    """RabbitMQ has no ``guest`` here (scripts/infra.sh removes it): nameko's fixtures make their
    vhosts as the machine's broker operator unless --amqp-uri/--rabbit-ctl-uri say otherwise."""
    if config.getoption("RABBIT_AMQP_URI", "").startswith("pyamqp://guest:guest@"):
        from urllib.parse import quote

        from shared.ops.broker_access import operator

        try:
            user, password = operator()
        except OSError:
            return  # no operator made on this machine: nameko's guest defaults stand
        userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
        config.option.RABBIT_AMQP_URI = f"pyamqp://{userinfo}@127.0.0.1:5672/"
        config.option.RABBIT_API_URI = f"http://{userinfo}@127.0.0.1:15672"
