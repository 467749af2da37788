"""Timers nameko lacks, for every service: one whose interval comes from the service's config
(``config_timer``), and a job timer that a worker can also start at once (``job_timer`` with
``JobStarter``): the catalog's resync, the relays and reconcilers of the catalog and deployer."""

from typing import Any

from nameko.extensions import DependencyProvider
from nameko.timer import Timer


class ConfigTimer(Timer):
    """nameko's ``@timer`` with the interval (seconds) read from ``config[interval_key]`` at setup.

    ``@timer(interval=…)`` is fixed when the class is defined, before config.yml is read. With
    ``allow_disabled``, an interval of 0 means the timer never fires.
    """

    # No properties on extensions: nameko's bind() reads every attribute with inspect.getmembers.

    def __init__(self, interval_key: str, allow_disabled: bool = False, **kwargs: Any) -> None:
        self.interval_key = interval_key
        self.allow_disabled = allow_disabled
        self.enabled = True
        super().__init__(interval=None, **kwargs)

    def setup(self) -> None:
        self.interval = float(self.container.config[self.interval_key])
        self.enabled = self.interval != 0 or not self.allow_disabled
        if self.enabled and self.interval <= 0:
            raise ValueError(f"{self.interval_key} must be a positive number of seconds, got {self.interval}")

    def start(self) -> None:
        if self.enabled:
            super().start()

    def stop(self) -> None:
        if self.gt is None:
            self.should_stop.send(True)
            return
        super().stop()

    def kill(self) -> None:
        if self.gt is not None:
            super().kill()


class JobTimer(ConfigTimer):
    """A ``ConfigTimer`` whose method is a long job that a worker may also start at once, with
    arguments (``JobStarter.start``), and that should end early once the service is stopping
    (``JobStarter.stopping``): stopping waits for running workers."""

    def start_now(self, args: tuple[Any, ...]) -> None:
        # No handle_result: the timer's own loop waits only for the workers it started.
        self.container.spawn_worker(self, tuple(args), {})

    def is_stopping(self) -> bool:
        return self.should_stop.ready()


class JobStarter(DependencyProvider):
    """Gives a worker the ``JobTimer`` entrypoint on ``method_name``: ``start_job(*args)`` runs that
    method in a worker of its own (the caller does not wait), ``stopping()`` says whether the
    service is stopping. (Not ``start``: that is every extension's lifecycle method.)"""

    def __init__(self, method_name: str, **kwargs: Any) -> None:
        self.method_name = method_name
        super().__init__(**kwargs)

    def _job(self) -> "JobTimer":
        for entrypoint in self.container.entrypoints:
            if isinstance(entrypoint, JobTimer) and entrypoint.method_name == self.method_name:
                return entrypoint
        raise LookupError(f"{self.container.service_name}.{self.method_name} has no @job_timer")

    def get_dependency(self, worker_ctx: Any) -> "JobStarter":
        return self

    def start_job(self, *args: Any) -> None:
        self._job().start_now(args)

    def stopping(self) -> bool:
        return self._job().is_stopping()


config_timer = ConfigTimer.decorator
job_timer = JobTimer.decorator
