"""Typed settings, read once from a service's nameko config (its ``config.yml``, whose
``${VAR:default}`` values are the only defaults).

A service keeps a frozen ``Settings`` dataclass and a ``load_settings(config) -> Settings`` made of
the checked parsers below, with no nameko imports, so every rule is testable without a container.
Its providers get the object with ``settings_of(container, load_settings)``: loaded at the first
provider's ``setup()`` and shared by every provider and worker of the container after that. A
missing or bad value is a ``SettingError`` naming the key, and the service does not start.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

S = TypeVar("S")

TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0", ""}


class SettingError(ValueError):
    """A setting is missing or not what it must be; the message names the key."""


def text(config: Mapping[str, Any], key: str, required: bool = True) -> str:
    """A string setting, stripped; empty only when not ``required``."""
    value = config.get(key)
    value = "" if value is None else str(value).strip()
    if required and not value:
        raise SettingError(f"setting {key} is empty")
    return value


def number(config: Mapping[str, Any], key: str, minimum: float | None = None, maximum: float | None = None) -> float:
    """A number setting within ``[minimum, maximum]``."""
    raw = config.get(key)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SettingError(f"setting {key} must be a number, got {raw!r}") from None
    if value != value or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"at least {minimum:g}" if minimum is not None else ""
        if maximum is not None:
            bounds += f"{' and ' if bounds else ''}at most {maximum:g}"
        raise SettingError(f"setting {key} must be {bounds or 'a number'}, got {raw!r}")
    return value


def seconds(config: Mapping[str, Any], key: str, allow_zero: bool = False) -> float:
    """A duration in seconds: positive, or also 0 with ``allow_zero`` (which means "never")."""
    value = number(config, key, minimum=0)
    if value == 0 and not allow_zero:
        raise SettingError(f"setting {key} must be a positive number of seconds, got {config.get(key)!r}")
    return value


def positive_int(config: Mapping[str, Any], key: str) -> int:
    """A whole number, 1 or more."""
    raw = config.get(key)
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).strip().isdigit() or int(raw) < 1:
        raise SettingError(f"setting {key} must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def boolean(config: Mapping[str, Any], key: str) -> bool:
    """true/yes/on/1 or false/no/off/0 (or empty)."""
    raw = config.get(key)
    if isinstance(raw, bool):
        return raw
    word = "" if raw is None else str(raw).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingError(f"setting {key} must be true or false, got {raw!r}")


def settings_of(container: Any, load: Callable[[Mapping[str, Any]], S]) -> S:
    """The container's settings as ``load`` reads them from its config: loaded once, then shared."""
    loaded: dict[Any, Any] = container.__dict__.setdefault("_imagehub_settings", {})
    if load not in loaded:
        loaded[load] = load(container.config)
    return loaded[load]
