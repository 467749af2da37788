"""Which upstream tags a library source takes: pure functions, no I/O.

A source names its tags in up to four ways, and takes the union of

* ``tags``: exact tags, always taken when the upstream has them (``latest``, ``stable``);
* the rule: the tags that match ``pattern`` (a shell glob, ``1.*-alpine``) if given, and fall in
  ``versions`` (a range, ``>=1.24, <2``) if given; with ``newest`` N, only the N highest versions
  of those.

A version is a tag ``[v]MAJOR[.MINOR[.PATCH]][-suffix]``: ``1.25``, ``v3.19.1``, ``1.25.3-alpine``.
A range compares the numbers only, missing ones counting as 0, so ``1.25`` is ``1.25.0``; a tag
that is not a version never falls in a range nor counts among the newest. Comparators:
``>= > <= < =`` and ``~1.25`` (``>=1.25, <1.26``) and ``^1.2`` (``>=1.2, <2``), separated by
commas or spaces; all must hold.
"""

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Version = tuple[int, int, int]

VERSION_TAG = re.compile(r"v?(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(?:[-+_][\w.+-]*)?", re.ASCII)
COMPARATOR = re.compile(r"(>=|<=|>|<|==|=|~|\^)?\s*v?(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?", re.ASCII)


class RangeError(ValueError):
    """A version range that does not parse; the message says which part and why."""


def version_of(tag: str) -> Version | None:
    """The numbers of a version tag, missing ones 0; None for a tag that is not a version."""
    match = VERSION_TAG.fullmatch(tag)
    if match is None:
        return None
    major, minor, patch = (int(part) if part is not None else 0 for part in match.groups())
    return major, minor, patch


@dataclass(frozen=True)
class Bound:
    op: str  # one of >= > <= < =
    version: Version

    def holds(self, version: Version) -> bool:
        if self.op == ">=":
            return version >= self.version
        if self.op == ">":
            return version > self.version
        if self.op == "<=":
            return version <= self.version
        if self.op == "<":
            return version < self.version
        return version == self.version


def parse_range(text: str) -> list[Bound]:
    """The bounds of a range; ``RangeError`` naming the part that does not parse."""
    parts = [part for part in re.split(r"[,\s]+(?=[<>=~^v0-9])|,", text.strip()) if part.strip()]
    if not parts:
        raise RangeError("an empty range: give comparators such as '>=1.24, <2'")
    bounds: list[Bound] = []
    for part in parts:
        match = COMPARATOR.fullmatch(part.strip())
        if match is None:
            raise RangeError(f"{part.strip()!r} is not a comparator such as '>=1.24', '<2', '~1.25' or '^1.2'")
        op, major_text, minor_text, patch_text = match.groups()
        major, minor, patch = int(major_text), int(minor_text or 0), int(patch_text or 0)
        if op == "~":  # the same minor version
            bounds += [Bound(">=", (major, minor, patch)), Bound("<", (major, minor + 1, 0))]
        elif op == "^":  # the same major version
            bounds += [Bound(">=", (major, minor, patch)), Bound("<", (major + 1, 0, 0))]
        else:
            bounds.append(Bound("=" if op in (None, "=", "==") else op, (major, minor, patch)))
    return bounds


def in_range(version: Version, bounds: Sequence[Bound]) -> bool:
    return all(bound.holds(version) for bound in bounds)


def select_tags(
    upstream: Iterable[str],
    tags: Sequence[str] = (),
    pattern: str | None = None,
    versions: str | None = None,
    newest: int | None = None,
) -> list[str]:
    """The tags of ``upstream`` a source with these selectors takes, sorted (versions in version
    order, then the others by name)."""
    available = list(dict.fromkeys(upstream))
    chosen = {tag for tag in tags if tag in set(available)}
    if pattern is not None or versions is not None or newest is not None:
        bounds = parse_range(versions) if versions is not None else None
        ruled = []
        for tag in available:
            if pattern is not None and not fnmatch.fnmatchcase(tag, pattern):
                continue
            version = version_of(tag)
            if bounds is not None and (version is None or not in_range(version, bounds)):
                continue
            if newest is not None and version is None:
                continue
            ruled.append(tag)
        if newest is not None:
            ruled = sorted(ruled, key=_order)[-newest:] if newest > 0 else []
        chosen.update(ruled)
    return sorted(chosen, key=_order)


def _order(tag: str) -> tuple[int, Version, str]:
    version = version_of(tag)
    return (0, version, tag) if version is not None else (1, (0, 0, 0), tag)
