"""Code common to every imagehub service: event contracts, typed errors, reference parsing."""
from shared import amqp as _amqp

_amqp.install()  # see shared/amqp.py: a broker restart must not kill a service
