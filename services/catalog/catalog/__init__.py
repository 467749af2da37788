"""The catalog service (see docs/catalog-api.md)."""

from shared.runtime.amqp import install as _install_amqp_fix
from shared.runtime.signals import install as _install_signal_wakeup

_install_amqp_fix()  # a broker restart must not kill the service: see shared/runtime/amqp.py
_install_signal_wakeup()  # SIGTERM stops the service at once: see shared/runtime/signals.py
