"""Memory sizes as Docker writes them: ``256m``, ``1g``, ``1.5g``, ``512k`` or a number of bytes.

Units are binary (``1k`` = 1024 bytes), as in ``docker run --memory``; a trailing ``b`` or
``ib`` is accepted (``256mb``, ``1GiB``).
"""

import math
import re
from typing import Any

UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def parse_memory(value: Any) -> int:
    """Bytes for ``value``; ``ValueError`` saying what is wrong with it."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"must be a size such as '256m', '1g' or a number of bytes, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = MEMORY.fullmatch(value.strip())
        if not match:
            raise ValueError(f"must be a size such as '256m', '1g' or a number of bytes, got {value!r}")
        scaled = float(match.group(1)) * UNITS[match.group(2).lower()]
        if not math.isfinite(scaled):  # '9' * 400: past any float, and any machine
            raise ValueError(f"is far larger than any host's memory, got {value[:40]!r}…")
        size = int(scaled)
    else:
        raise ValueError(f"must be a size such as '256m', '1g' or a number of bytes, got {value!r}")
    if size <= 0:
        raise ValueError(f"must be more than 0 bytes, got {value!r}")
    return size


def format_memory(size: int) -> str:
    """The shortest exact form: 268435456 -> '256m', 1536 -> '1536' (bytes when nothing divides)."""
    for unit in "tgmk":
        if size % UNITS[unit] == 0:
            return f"{size // UNITS[unit]}{unit}"
    return str(size)
