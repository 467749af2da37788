"""The console's Jinja2 templates (``gateway/templates``), autoescaped, and Markdown rendered safely.

``render(template, status, **context)`` → a ``text/html`` answer; every page gets the
signed-in developer (``developer``, or None), the CSRF token and the registry host.
``markdown(text)``: an overview as HTML — CommonMark without raw HTML, then cleaned by an allow-list
(nh3), links made ``rel="noopener noreferrer nofollow"``.
"""

import os
from typing import Any

import nh3
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markdown_it import MarkdownIt
from markupsafe import Markup
from werkzeug.wrappers import Request, Response

from gateway import problems

TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "img",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}


def markdown(text: str | None) -> Markup:
    html = _markdown.render(text or "")
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(cleaned)


environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters["markdown"] = markdown


def render(template: str, status: int = 200, /, **context: Any) -> Response:
    html = environment.get_template(template).render(**context)
    return Response(html, status=status, mimetype="text/html")


def render_error(exc: BaseException, status: int, request: Request) -> Response:
    """The error page: the status, what went wrong (nothing of a bug) and the request id."""
    _, body, headers = problems.problem(exc, request.path, str(request.environ.get("imagehub.request_id", "")))
    response = render("error.html", status, problem=body, developer=None)
    response.headers.update(headers)
    return response
