"""A repository's description and overview, set over RPC (``set_repository_info``).

``library.yml`` gives a new library repository its first text (``catalog.library``); from then on
the text in the database is the one shown, and this is how it changes. What may be stored:

* a **description**: one line for lists, at most ``MAX_DESCRIPTION_LENGTH`` characters (Docker
  Hub's short description), no control character;
* an **overview**: Markdown (CommonMark) for the detail page, at most ``MAX_OVERVIEW_LENGTH``
  characters, no control character but newline and tab, no raw HTML (a tag outside code spans and
  blocks) and no ``javascript:``, ``vbscript:`` or ``data:`` link or image target.

The readers (the console, the CLI) render the overview safely whatever it holds; refusing HTML
here keeps what a tenant wrote the same on every reader and tells the author at once.
"""

import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.token import Token
from sqlalchemy.orm import Session

from catalog import browsing, store
from catalog.access import describable_repository
from shared.contracts.errors import NotFound

MAX_DESCRIPTION_LENGTH = 100
MAX_OVERVIEW_LENGTH = 25_000
OVERVIEW_CONTROLS_ALLOWED = frozenset("\n\t")
UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:")
# What a browser would start a tag with, in text that Markdown passes through as text.
_TAG_START = re.compile(r"</?[A-Za-z]")


class _Scanner(MarkdownIt):
    """CommonMark (and tables, as the console renders them) read to find what is unsafe: raw HTML
    on, so that it comes as html_block/html_inline tokens; every link target taken, so that a
    javascript: one comes as a link (markdown-it would leave it as text, unnamed); text_join off,
    so that an escaped "\\<" or an entity "&lt;" stays apart from the text after it."""

    def __init__(self) -> None:
        super().__init__("commonmark", {"html": True})
        self.enable("table").disable("text_join")

    def validateLink(self, url: str) -> bool:  # markdown-it's name
        return True


_parser = _Scanner()


def control_characters(text: str, allowed: Iterable[str] = ()) -> list[str]:
    """The control (and line or paragraph separator) characters in ``text`` besides ``allowed``, as
    ``U+000D`` names, each once, in order."""
    found: dict[str, None] = {}
    keep = frozenset(allowed)
    for char in text:
        if char not in keep and unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            found.setdefault(f"U+{ord(char):04X}", None)
    return list(found)


def description_problem(text: str) -> str | None:
    """Why ``text`` cannot be a description, or None."""
    if len(text) > MAX_DESCRIPTION_LENGTH:
        return f"must be at most {MAX_DESCRIPTION_LENGTH} characters, got {len(text)}"
    controls = control_characters(text)
    if controls:
        return f"must be one line without control characters, got {', '.join(controls)}"
    return None


def overview_problem(text: str) -> str | None:
    """Why ``text`` cannot be an overview, or None."""
    if len(text) > MAX_OVERVIEW_LENGTH:
        return f"must be at most {MAX_OVERVIEW_LENGTH} characters, got {len(text)}"
    controls = control_characters(text, OVERVIEW_CONTROLS_ALLOWED)
    if controls:
        return f"must be text without control characters but newline and tab, got {', '.join(controls)}"
    return markdown_problem(text)


def markdown_problem(text: str) -> str | None:
    """What makes ``text`` unsafe Markdown (the first thing found, with its line), or None."""
    for token, line in _tokens(_parser.parse(text), 1):
        problem = _token_problem(token, line)
        if problem:
            return problem
    return None


def _tokens(tokens: Iterable[Token], line: int) -> Iterable[tuple[Token, int]]:
    """Every token, its inline children too, with the 1-based line its block starts on."""
    for token in tokens:
        here = token.map[0] + 1 if token.map else line
        yield token, here
        if token.children:
            yield from _tokens(token.children, here)


def _token_problem(token: Token, line: int) -> str | None:
    if token.type in ("html_block", "html_inline"):
        return _html_problem(token.content, line)
    tag = _TAG_START.search(token.content) if token.type == "text" else None
    if tag:
        return _html_problem(token.content[tag.start() :], line)
    for attribute in ("href", "src"):
        target = token.attrGet(attribute)
        if isinstance(target, str) and _unsafe_target(target):
            return (
                f"must not link to {_excerpt(target)} (in the block from line {line}): javascript:, vbscript: "
                "and data: targets are refused"
            )
    return None


def _html_problem(html: str, line: int) -> str:
    return (
        f"must not contain raw HTML, got {_excerpt(html)} in the block from line {line}: "
        "put it in a code span or block to show it"
    )


def _unsafe_target(target: str) -> bool:
    """A target a browser would run or inline: its scheme, read as a browser reads it (blanks and
    control characters dropped, percent-escapes undone, any case)."""
    plain = "".join(c for c in unquote(target) if not (c.isspace() or unicodedata.category(c) == "Cc")).lower()
    return plain.startswith(UNSAFE_SCHEMES)


def _excerpt(text: str, limit: int = 40) -> str:
    text = text.strip()
    return repr(text if len(text) <= limit else text[:limit] + "…")


def set_info(
    session: Session,
    tenant_id: str | None,
    repository: str,
    admin: bool,
    description: str | None,
    overview: str | None,
    registry_host: str,
) -> dict[str, Any]:
    """Set what is given (None keeps the stored text) and return the repository as
    ``get_repository`` shows it. ``Forbidden`` (``catalog.access.describable_repository``) before
    ``NotFound``, so that probing another tenant's names tells nothing."""
    namespace, name = describable_repository(tenant_id, repository, admin)
    found = store.find_repository(session, namespace, name, for_update=True)
    if found is None:
        raise NotFound(f"repository {repository!r} not found")
    if description is not None:
        found.description = description
    if overview is not None:
        found.overview = overview
    session.flush()
    return browsing.repository_view(session, found, registry_host)
