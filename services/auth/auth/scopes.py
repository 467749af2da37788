"""The ``scope`` of a registry token request, parsed. No framework imports.

Grammar (Docker Distribution, docs/spec/auth/scope.md)::

    scope          := resourcescope [ ' ' resourcescope ]*
    resourcescope  := resourcetype ":" resourcename ":" action [ ',' action ]*
    resourcetype   := /[a-z0-9]+/ [ '(' /[a-z0-9]+/ ')' ]      e.g. repository, repository(plugin)
    resourcename   := [ hostname '/' ] component [ '/' component ]*
    action         := /[a-z]+/ | '*'

A host name may carry a port, so the name is what lies between the first and the last ``:``.
The registry sends one ``scope`` query parameter per resource (``GET /token``); the OAuth2 form
(``POST /token``) sends them space-separated in one field: ``parse_scopes`` takes both.

Anything that breaks the grammar is ``InvalidScope`` (an ``InvalidRequest``: 400), naming the
scope and the rule. A well-formed scope for a resource or action nobody may have (an unknown
type, ``repository:a/b:fly``) is not an error: it is simply not granted (``auth.grants``).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from shared.contracts.errors import InvalidRequest

MAX_SCOPES = 32  # per request: docker asks for 1 to 3 (a push with a cross-repository mount)
MAX_SCOPE_LENGTH = 512  # a repository name is at most 255 characters

RESOURCE_TYPE = re.compile(r"([a-z0-9]+)(?:\(([a-z0-9]+)\))?")
_HOST_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"{_HOST_COMPONENT}(?:\.{_HOST_COMPONENT})*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
RESOURCE_NAME = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
ACTION = re.compile(r"[a-z]+|\*")


class InvalidScope(InvalidRequest):
    """A ``scope`` value breaks the grammar; the message names it and the rule."""


@dataclass(frozen=True)
class Scope:
    type: str
    name: str
    actions: tuple[str, ...]  # in the order asked, without repeats
    resource_class: str | None = None

    def __str__(self) -> str:
        kind = f"{self.type}({self.resource_class})" if self.resource_class else self.type
        return f"{kind}:{self.name}:{','.join(self.actions)}"


def parse_scopes(values: str | Iterable[object]) -> list[Scope]:
    """Every resource scope in ``values`` (strings, each holding one or more space-separated
    scopes), in order, repeats merged into the first. Empty values are no scope at all."""
    if isinstance(values, str):
        values = [values]
    scopes: dict[tuple[str, str | None, str], Scope] = {}
    for value in values:
        if not isinstance(value, str):
            raise InvalidScope(f"scope must be a string, not {type(value).__name__}")
        for text in value.split():
            scope = parse_scope(text)
            key = (scope.type, scope.resource_class, scope.name)
            if key in scopes:
                merged = scopes[key].actions + tuple(a for a in scope.actions if a not in scopes[key].actions)
                scope = Scope(scope.type, scope.name, merged, scope.resource_class)
            scopes[key] = scope
            if len(scopes) > MAX_SCOPES:
                raise InvalidScope(f"more than {MAX_SCOPES} scopes in one request")
    return list(scopes.values())


def parse_scope(text: str) -> Scope:
    """One ``type[(class)]:name:action[,action]``."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    if len(text) > MAX_SCOPE_LENGTH:
        raise InvalidScope(f"scope {shown!r} is longer than {MAX_SCOPE_LENGTH} characters")
    if text.count(":") < 2:
        raise InvalidScope(f"scope {shown!r} must be 'type:name:action[,action]'")
    kind, rest = text.split(":", 1)
    name, actions_text = rest.rsplit(":", 1)
    match = RESOURCE_TYPE.fullmatch(kind)
    if not match:
        raise InvalidScope(
            f"scope {shown!r}: resource type {kind!r} must be lower-case letters and digits, "
            f"optionally followed by a class in parentheses, e.g. 'repository(plugin)'"
        )
    if not RESOURCE_NAME.fullmatch(name):
        raise InvalidScope(
            f"scope {shown!r}: resource name {name!r} must be '[host[:port]/]component[/component]*' "
            f"of lower-case letters and digits separated by '.', '_', '__' or '-'"
        )
    actions = []
    for action in actions_text.split(","):
        if not ACTION.fullmatch(action):
            raise InvalidScope(f"scope {shown!r}: action {action!r} must be lower-case letters or '*'")
        if action not in actions:
            actions.append(action)
    return Scope(match.group(1), name, tuple(actions), match.group(2))
