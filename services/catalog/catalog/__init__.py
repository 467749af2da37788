"""The catalog service (see docs/catalog-api.md)."""

from shared.amqp import install as _install_amqp_fix
from shared.signals import install as _install_signal_wakeup

_install_amqp_fix()  # a broker restart must not kill the service: see shared/amqp.py
_install_signal_wakeup()  # SIGTERM stops the service at once: see shared/signals.py
