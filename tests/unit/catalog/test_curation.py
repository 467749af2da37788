"""What a repository's description and overview may hold (``catalog.curation``), as
``set_repository_info``'s argument schema refuses it: an InvalidRequest naming the field and why."""

import re

import pytest

from catalog import schemas
from catalog.curation import markdown_problem
from shared.contracts.errors import InvalidRequest


def load(**given):
    return schemas.load_args(schemas.RepositoryInfo, tenant_id="t1", repository="t1/app", **given)


class TestDescription:
    @pytest.mark.parametrize("text", ["", "Our web app.", "é" * 100, "x" * 100])
    def test_one_line_of_at_most_100_characters_is_taken(self, text):
        assert load(description=text)["description"] == text

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("x" * 101, "description must be at most 100 characters, got 101"),
            ("two\nlines", "description must be one line without control characters, got U+000A"),
            ("carriage\rreturn", "got U+000D"),
            ("a\tb", "got U+0009"),
            ("line\u2028separator", "got U+2028"),
            ("bell\x07", "got U+0007"),
            ("nul\x00", "description must be text without NUL characters"),
            (5, "description must be a string or null"),
        ],
    )
    def test_anything_else_is_refused_naming_it(self, text, message):
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            load(description=text)


class TestOverview:
    def test_left_out_is_none_so_the_stored_text_is_kept(self):
        assert load() == {"tenant_id": "t1", "repository": "t1/app", "description": None, "overview": None}

    @pytest.mark.parametrize(
        "text",
        [
            "# Title\n\nSome **bold**, a [link](https://example.com) and ![an image](https://example.com/i.png).",
            "Show a tag in code: `<script>` and\n\n```html\n<div onclick=x>\n</div>\n```\n",
            "    <b>an indented code block</b>\n",
            "Comparisons stay text: a < b, 3<4, x <= y.\n",
            "Escaped, it is text: \\<b> and &lt;script&gt;\n",
            "| a | b |\n| --- | --- |\n| 1\t| 2 |\n",
            "<https://example.com> and mailto:someone@example.com",
            "x" * 25_000,
        ],
    )
    def test_markdown_without_html_or_script_links_is_taken(self, text):
        assert load(overview=text)["overview"] == text

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("<script>alert(1)</script>", "overview must not contain raw HTML, got '<script>alert(1)</script>'"),
            ("Hi <img src=x onerror=alert(1)>", "raw HTML, got '<img src=x onerror=alert(1)>'"),
            ("text\n\n</div>", "raw HTML, got '</div>' in the block from line 3"),
            ("an unclosed <img src=x onerror=alert(1)", "raw HTML, got '<img src=x onerror=alert"),
            ("<!-- hidden -->", "raw HTML"),
            ("[docs](javascript:alert(1))", "overview must not link to 'javascript:alert(1)'"),
            ("[docs](JaVaScRiPt&#58;alert(1))", "must not link to"),
            ("[docs](java%0Ascript:alert(1))", "must not link to"),
            ("<javascript:alert(1)>", "must not link to"),
            ("![x](data:image/svg+xml;base64,PHN2Zz4=)", "must not link to 'data:image"),
            ("[ref]\n\n[ref]: vbscript:msgbox", "must not link to 'vbscript:msgbox'"),
            ("x" * 25_001, "overview must be at most 25000 characters, got 25001"),
            (
                "windows\r\nline ends",
                "overview must be text without control characters but newline and tab, got U+000D",
            ),
            ("escape\x1b[31m", "got U+001B"),
            (["a list"], "overview must be a string or null"),
        ],
    )
    def test_html_script_links_and_control_characters_are_refused_naming_it(self, text, message):
        with pytest.raises(InvalidRequest, match=re.escape(message)):
            load(overview=text)

    def test_each_problem_names_the_block_it_is_in(self):
        assert markdown_problem("one\n\ntwo\n\n* three <b>bold</b>") == (
            "must not contain raw HTML, got '<b>' in the block from line 5: put it in a code span or block to show it"
        )
        assert markdown_problem("fine") is None
