"""Image references: ``[<registry>/]<namespace>/<name>[:<tag>][@<digest>]``.

One parser for the whole suite. It follows the Docker Distribution reference grammar and adds the
platform's rules: exactly two path components (namespace = tenant ID or ``library``), and a name
ending in ``_ownbase`` marks a tenant's custom base image. Every broken rule is an
``InvalidReference`` whose message names the rule.
"""

import re
from dataclasses import asdict, dataclass
from typing import Any

from shared.contracts.errors import InvalidReference

PUBLIC_NAMESPACE = "library"
OWNBASE_SUFFIX = "_ownbase"
MAX_NAME_LENGTH = 255  # distribution's limit for the whole repository name

# distribution/reference grammar
PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
DOMAIN = re.compile(rf"{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")


@dataclass(frozen=True)
class Reference:
    registry: str | None
    namespace: str
    name: str
    tag: str | None
    digest: str | None

    @property
    def repository(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def is_ownbase(self) -> bool:
        return is_ownbase(self.name)

    @property
    def is_public(self) -> bool:
        return self.namespace == PUBLIC_NAMESPACE

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(repository=self.repository, is_ownbase=self.is_ownbase, is_public=self.is_public)
        return data


def is_ownbase(name: str) -> bool:
    return name.endswith(OWNBASE_SUFFIX)


def _looks_like_registry(component: str) -> bool:
    # docker's rule: the first component is a host if it has a dot or a port, or is localhost.
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


def validate_path_component(value: Any, what: str) -> str:
    if not value:
        raise InvalidReference(f"{what} is empty")
    if value != value.lower() and PATH_COMPONENT.fullmatch(value.lower()):
        raise InvalidReference(f"{what} {value!r} must be lower-case")
    if not PATH_COMPONENT.fullmatch(value):
        raise InvalidReference(
            f"{what} {value!r} must be lower-case letters and digits, separated by single "
            f"'.', '_', '__' or runs of '-', and must start and end with a letter or digit"
        )
    return value


def validate_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not TAG.fullmatch(tag):
        raise InvalidReference(
            f"tag {tag!r} must be 1-128 characters of letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        )
    return tag


def validate_digest(digest: Any) -> str:
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise InvalidReference(f"digest {digest!r} must be 'sha256:' followed by 64 lower-case hex digits")
    return digest


def parse_repository(repository: Any) -> tuple[str, str]:
    """Split and check ``<namespace>/<name>``; returns ``(namespace, name)``."""
    if not isinstance(repository, str) or not repository:
        raise InvalidReference("repository name is empty")
    if len(repository) > MAX_NAME_LENGTH:
        raise InvalidReference(f"repository name is longer than {MAX_NAME_LENGTH} characters")
    parts = repository.split("/")
    if "" in parts:
        raise InvalidReference(f"repository {repository!r} has an empty path component")
    if len(parts) != 2:
        raise InvalidReference(
            f"repository {repository!r} must be '<namespace>/<name>' (namespace = tenant ID or "
            f"'{PUBLIC_NAMESPACE}'), found {len(parts)} path component(s)"
        )
    namespace = validate_path_component(parts[0], "namespace")
    name = validate_path_component(parts[1], "image name")
    return namespace, name


def parse_reference(reference: Any) -> Reference:
    """Parse a full image reference into a ``Reference``.

    A reference with neither tag nor digest means ``latest``, as it does for ``docker pull``.
    """
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidReference("reference is empty")
    if reference != reference.strip():
        raise InvalidReference("reference has leading or trailing white space")

    remainder, digest = reference, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        validate_digest(digest)

    registry = None
    first, sep, rest = remainder.partition("/")
    if sep and _looks_like_registry(first):
        if not DOMAIN.fullmatch(first):
            raise InvalidReference(f"registry host {first!r} is not a valid host[:port]")
        registry, remainder = first, rest

    tag = None
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        remainder, tag = remainder[:colon], remainder[colon + 1 :]
        validate_tag(tag)

    namespace, name = parse_repository(remainder)
    if tag is None and digest is None:
        tag = "latest"
    return Reference(registry=registry, namespace=namespace, name=name, tag=tag, digest=digest)


def format_reference(registry: str | None, repository: str, tag: str | None = None, digest: str | None = None) -> str:
    ref = f"{registry}/{repository}" if registry else repository
    if tag:
        ref += f":{tag}"
    if digest:
        ref += f"@{digest}"
    return ref


def pull_command(registry: str | None, repository: str, tag: str | None = None, digest: str | None = None) -> str:
    return f"docker pull {format_reference(registry, repository, tag, digest)}"
