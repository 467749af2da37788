"""The catalog service (see docs/catalog-api.md)."""
from shared.amqp import install as _install_amqp_fix

_install_amqp_fix()  # a broker restart must not kill the service: see shared/amqp.py
