"""nameko's ``RpcProxy`` with a timeout: a call to a service that does not answer gives up.

nameko 2.14's ``RpcProxy`` waits for a reply forever. When the target's queue exists but nothing
consumes it (the service is down, or stuck), the calling worker — and the RPC caller waiting on
it — hangs. ``BoundedRpcProxy`` waits at most ``timeout`` seconds (read from the config at setup)
and raises ``shared.contracts.errors.ServiceUnavailable``, which crosses RPC as itself. A request still
queued when its caller gives up expires in the broker (message TTL = the timeout), so a service
coming back does not work through requests nobody waits for any more. A target with no queue at
all (never started on this broker) is ``ServiceUnavailable`` at once.
"""

from collections.abc import Callable
from typing import Any

import eventlet
from nameko.exceptions import UnknownService

from shared.contracts.errors import ServiceUnavailable
from shared.runtime.identity import IdentityRpcProxy
from shared.runtime.settings import SettingError


class BoundedRpcProxy(IdentityRpcProxy):
    """``RpcProxy(target_service)`` whose calls wait at most ``config[timeout_key]`` seconds (and
    say which broker user sends them, as every callee requires: ``IdentityRpcProxy``)."""

    def __init__(self, target_service: str, timeout_key: str, **options: Any) -> None:
        super().__init__(target_service, **options)
        self.timeout_key = timeout_key

    def setup(self) -> None:
        super().setup()
        value = self.container.config.get(self.timeout_key)
        try:
            timeout = float(value)
        except (TypeError, ValueError):
            raise SettingError(f"{self.timeout_key} must be a number of seconds, got {value!r}") from None
        if not timeout > 0:
            raise SettingError(f"{self.timeout_key} must be more than 0, got {value!r}")
        self.timeout = timeout
        self.options["expiration"] = timeout  # seconds; the broker drops a request nobody took by then

    def get_dependency(self, worker_ctx: Any) -> "BoundedServiceProxy":
        return BoundedServiceProxy(super().get_dependency(worker_ctx), self.timeout)


class BoundedServiceProxy:
    """``proxy.<method>(*args, **kwargs)`` as nameko's ``ServiceProxy``, bounded in time."""

    def __init__(self, proxy: Any, timeout: float) -> None:
        self._proxy = proxy
        self._timeout = timeout

    def __getattr__(self, method_name: str) -> Callable[..., Any]:
        method = getattr(self._proxy, method_name)
        service, listener, timeout = self._proxy.service_name, self._proxy.reply_listener, self._timeout

        def call(*args: Any, **kwargs: Any) -> Any:
            what = f"{service}.{method_name}"
            try:
                reply = method.call_async(*args, **kwargs)
            except UnknownService:
                raise ServiceUnavailable(
                    f"the {service} service is not running (no queue for its RPC on the "
                    f"broker): {what} could not be asked; try again later"
                ) from None
            timer = eventlet.Timeout(timeout)
            try:
                return reply.result()
            except eventlet.Timeout as exc:
                if exc is not timer:
                    raise
                _forget(listener, reply)
                raise ServiceUnavailable(
                    f"the {service} service did not answer {what} within {timeout:g} s "
                    f"(down or overloaded); try again later"
                ) from None
            finally:
                timer.cancel()

        return call


def _forget(listener: Any, reply: Any) -> None:
    """Drop the reply listener's entry for a call given up on (nameko keeps one per call until
    its reply comes, which for a dead service is never)."""
    events = getattr(listener, "_reply_events", None) or {}
    for correlation_id, event in list(events.items()):
        if event is reply.reply_event:
            events.pop(correlation_id, None)
