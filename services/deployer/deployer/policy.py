"""Auto-deploy policies: whether a deployment running one tag follows a push of another, from the
tags alone (digests, times and duplicates are ``deployer.autodeploy``'s business).

Syntax of ``auto_deploy.policy``:

* ``never`` — pushes never move the deployment (the default);
* ``force`` — a push of the very tag it runs, with new content (``latest`` re-pushed);
* ``semver:major`` / ``semver:minor`` / ``semver:patch`` — a higher version: any (major), with the
  same major (minor), with the same major and minor (patch). ``+prerelease`` after the level
  (``semver:minor+prerelease``) lets pre-releases count; without it they are ignored;
* ``glob:<pattern>`` — a pushed tag matching the shell-style pattern (``glob:v1.*``, ``*``, ``?``,
  ``[…]``; case-sensitive, the whole tag);
* ``regexp:<expression>`` — a pushed tag that the expression (RE2 syntax: linear time, no
  backreferences or lookarounds) matches in full.

Versions: ``[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE]`` — a leading ``v`` or ``V`` is allowed, missing
parts are 0 (``v1.2`` is 1.2.0), numbers have no leading zeros, PRERELEASE is dot-separated
``[0-9A-Za-z-]`` identifiers (``1.2.0-rc.1``; a variant tag such as ``1.25-alpine`` is one too).
Order is SemVer 2.0's: a pre-release is lower than its release, identifiers compare numerically
when both are numbers. Docker tags cannot carry ``+``, so there is no build metadata.

Never lower: ``glob``/``regexp`` refuse a pushed tag that is a lower version than the running one
when both are versions; ``semver`` only ever moves up; ``force`` keeps the tag.
"""

import fnmatch
import functools
import re
from dataclasses import dataclass
from typing import Any

import re2

NEVER, FORCE, SEMVER, GLOB, REGEXP = "never", "force", "semver", "glob", "regexp"
LEVELS = ("major", "minor", "patch")
MAX_PATTERN = 256  # characters of a glob or regexp policy's pattern (a tag is at most 128)
PRERELEASE = "prerelease"
SYNTAX = (
    "never, force, semver:major|minor|patch (optionally +prerelease, e.g. 'semver:minor+prerelease'), "
    "glob:<pattern> or regexp:<expression>"
)

VERSION = re.compile(
    r"[vV]?(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


class PolicyError(ValueError):
    """The text is not a policy; the message says why."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    prerelease: tuple = ()  # () for a release

    @property
    def key(self) -> tuple[Any, ...]:
        # A release sorts after its pre-releases; identifiers: numbers below words, numbers by value.
        if not self.prerelease:
            return self.major, self.minor, self.patch, (1,)
        identifiers = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return self.major, self.minor, self.patch, (0, identifiers)

    def __lt__(self, other: "Version") -> bool:
        return self.key < other.key

    def __gt__(self, other: "Version") -> bool:
        return self.key > other.key

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        return f"{text}-{'.'.join(self.prerelease)}" if self.prerelease else text


def parse_version(tag: str) -> Version | None:
    """The ``Version`` a tag names, or None for a tag that is not one (``latest``, ``1.02``)."""
    match = VERSION.fullmatch(tag or "")
    if match is None:
        return None
    major, minor, patch, prerelease = match.groups()
    return Version(int(major), int(minor or 0), int(patch or 0), tuple(prerelease.split(".")) if prerelease else ())


@dataclass(frozen=True)
class Verdict:
    """Whether to move, and why (or why not): the reason is logged and shown to operators."""

    move: bool
    reason: str


def follow(reason: str) -> "Verdict":
    return Verdict(True, reason)


def stay(reason: str) -> "Verdict":
    return Verdict(False, reason)


@dataclass(frozen=True)
class Policy:
    kind: str
    level: str | None = None  # semver
    prerelease: bool = False  # semver
    pattern: str | None = None  # glob, regexp

    def __str__(self) -> str:
        if self.kind == SEMVER:
            return f"semver:{self.level}{'+' + PRERELEASE if self.prerelease else ''}"
        if self.kind in (GLOB, REGEXP):
            return f"{self.kind}:{self.pattern}"
        return self.kind

    def wants(self, running_tag: str, pushed_tag: str) -> Verdict:
        """``Verdict``: does a deployment running ``running_tag`` follow a push of ``pushed_tag``?"""
        if self.kind == NEVER:
            return stay("policy never")
        if self.kind == FORCE:
            if pushed_tag == running_tag:
                return follow(f"force: {pushed_tag} is the tag it runs")
            return stay(f"force follows only the tag it runs ({running_tag})")
        if self.kind == SEMVER:
            return self._semver(running_tag, pushed_tag)
        if self.kind == GLOB:
            matched = fnmatch.fnmatchcase(pushed_tag, self.pattern or "")  # a glob policy has one
        else:
            try:
                matched = compile_regexp(self.pattern).fullmatch(pushed_tag) is not None
            except PolicyError as exc:  # stored before RE2 was the engine: never follows
                return stay(f"{self} is not a valid RE2 expression any more ({exc}): set the policy again")
        if not matched:
            return stay(f"{pushed_tag} does not match {self}")
        running, pushed = parse_version(running_tag), parse_version(pushed_tag)
        if running is not None and pushed is not None and pushed < running:
            return stay(f"{pushed_tag} is a lower version than {running_tag}")
        return follow(f"{pushed_tag} matches {self}")

    def _semver(self, running_tag: str, pushed_tag: str) -> Verdict:
        pushed = parse_version(pushed_tag)
        if pushed is None:
            return stay(f"{pushed_tag} is not a version")
        running = parse_version(running_tag)
        if running is None:
            return stay(f"the running tag {running_tag} is not a version")
        if pushed.prerelease and not self.prerelease:
            return stay(f"{pushed_tag} is a pre-release ({self} leaves them out; add +{PRERELEASE})")
        if self.level in ("minor", "patch") and pushed.major != running.major:
            return stay(f"{pushed_tag} is outside {self} of {running_tag} (another major version)")
        if self.level == "patch" and pushed.minor != running.minor:
            return stay(f"{pushed_tag} is outside {self} of {running_tag} (another minor version)")
        if not pushed > running:
            return stay(f"{pushed_tag} is not higher than {running_tag}")
        return follow(f"{pushed_tag} is higher than {running_tag} within {self}")


def parse_policy(text: Any) -> Policy:
    """The ``Policy`` ``text`` names; ``PolicyError`` saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise PolicyError(f"must be a string: {SYNTAX}; got {text!r}")
    if text in (NEVER, FORCE):
        return Policy(text)
    kind, colon, rest = text.partition(":")
    if not colon or kind not in (SEMVER, GLOB, REGEXP):
        raise PolicyError(f"must be one of {SYNTAX}; got {text!r}")
    if kind == SEMVER:
        level, plus, option = rest.partition("+")
        if level not in LEVELS or (plus and option != PRERELEASE):
            raise PolicyError(
                f"{text!r}: a semver policy is semver:major, semver:minor or semver:patch, "
                f"optionally followed by +{PRERELEASE}"
            )
        return Policy(SEMVER, level=level, prerelease=bool(plus))
    if not rest:
        raise PolicyError(f"{text!r}: give a pattern after '{kind}:'")
    if len(rest) > MAX_PATTERN:
        raise PolicyError(f"a {kind} policy's pattern is at most {MAX_PATTERN} characters, got {len(rest)}")
    if kind == REGEXP:
        try:
            compile_regexp(rest)
        except PolicyError as exc:
            raise PolicyError(f"{text!r} is not a valid regular expression (RE2 syntax): {exc}") from None
    return Policy(kind, pattern=rest)


@functools.lru_cache(maxsize=256)
def compile_regexp(pattern: str) -> Any:
    """The pattern compiled by RE2, whose matching time is linear in the tag's length.

    Python's ``re`` backtracks: a policy such as ``(a+)+$`` takes minutes (and on a 128-character
    tag, longer than the universe) on a pushed tag like ``aaaa…a-``, in the auto-deploy worker,
    where eventlet's single thread cannot be interrupted. RE2 (the engine of Go, so of Keel's
    regexp policies too) has no backreferences or lookarounds, and no catastrophic case."""
    try:
        return re2.compile(pattern)
    except UnicodeEncodeError:  # RE2 takes UTF-8: a lone surrogate has no encoding
        raise PolicyError("contains a character that is not valid Unicode (a lone surrogate)") from None
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        raise PolicyError(reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)) from None
