"""Entrypoints nameko lacks: a timer whose interval comes from the service's config."""
from nameko.timer import Timer


class ConfigTimer(Timer):
    """nameko's ``@timer`` with the interval (seconds) read from ``config[interval_key]`` at setup.

    ``@timer(interval=…)`` is fixed when the class is defined, before config.yml is read.
    """

    def __init__(self, interval_key, **kwargs):
        self.interval_key = interval_key
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = float(self.container.config[self.interval_key])
        if self.interval <= 0:
            raise ValueError(f"{self.interval_key} must be a positive number of seconds, got {self.interval}")


config_timer = ConfigTimer.decorator
