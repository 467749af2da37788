"""The deployer service: resource pools of Docker engines, deployments, revisions, rollouts.

``deployer.service`` holds the nameko entrypoints; the rules live in plain modules:
``spec`` (checking specs), ``placement`` (hosts and ports), ``deployments`` (the RPC side),
``rollout`` (the worker that starts and stops containers), ``reconcile`` (records against
engines). ``dependencies`` is the only module that speaks the docker SDK. docs/deployer-api.md
describes the RPC contract.
"""

from shared.runtime.amqp import install as _install_amqp_fix
from shared.runtime.signals import install as _install_signal_wakeup

_install_amqp_fix()  # a broker restart must not kill the service: see shared/runtime/amqp.py
_install_signal_wakeup()  # SIGTERM stops the service at once: see shared/runtime/signals.py
