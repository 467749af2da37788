"""A real browser for the console's tests, in a process of its own: ``python tests/support/browser_worker.py``.

Playwright's synchronous API cannot run under eventlet's monkey-patching (the root conftest patches
the test process), so the tests drive Debian's chromium through this worker: one JSON request per
line on stdin, one JSON answer per line on stdout (``tests.support.browser.Browser`` is the
client). Run by path, it imports nothing of the suite's. Each answer is ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``; nothing is retried here.
"""

import json
import os
import sys
import traceback
from typing import Any

from playwright.sync_api import Page, sync_playwright

CHROMIUM = os.environ.get("IMAGEHUB_CHROMIUM", "/usr/bin/chromium")
TIMEOUT_MS = 15_000


def locate(page: Page, request: dict[str, Any]) -> Any:
    """The element a request names: ``label`` (a form field by its label), ``role`` + ``name``,
    ``testid``, or ``selector`` (Playwright's own syntax)."""
    if "label" in request:
        return page.get_by_label(request["label"], exact=request.get("exact", True))
    if "role" in request:
        return page.get_by_role(request["role"], name=request.get("name"), exact=request.get("exact", True))
    if "testid" in request:
        return page.get_by_test_id(request["testid"])
    return page.locator(request["selector"])


def answer(page: Page, request: dict[str, Any], out_dir: str) -> dict[str, Any]:
    op = request["op"]
    if op == "goto":
        response = page.goto(request["url"], wait_until="load")
        return {"status": response.status if response else None, "url": page.url}
    if op == "fill":
        locate(page, request).fill(request["value"])
    elif op == "select":
        locate(page, request).select_option(request["value"])
    elif op == "check":
        locate(page, request).check()
    elif op == "click":
        with page.expect_navigation(wait_until="load") if request.get("navigates") else _nothing():
            locate(page, request).first.click()
    elif op == "press":
        page.keyboard.press(request["key"])
    elif op == "text":
        found = locate(page, request)
        return {"texts": found.all_inner_texts()}
    elif op == "attribute":
        return {"values": [e.get_attribute(request["name"]) for e in locate(page, request).element_handles()]}
    elif op == "wait_text":
        page.wait_for_function(
            "([sel, want]) => { const e = document.querySelector(sel); return e && e.innerText.includes(want); }",
            arg=[request["selector"], request["text"]],
            timeout=request.get("timeout_ms", TIMEOUT_MS),
        )
    elif op == "focused":
        return {"tag": page.evaluate("document.activeElement && document.activeElement.tagName")}
    elif op == "viewport":
        page.set_viewport_size({"width": request["width"], "height": request["height"]})
        return {"scroll_width": page.evaluate("document.documentElement.scrollWidth")}
    elif op == "screenshot":
        path = os.path.join(out_dir, f"{request['name']}.png")
        page.screenshot(path=path, full_page=True)
        return {"path": path}
    elif op == "page":
        return {"url": page.url, "title": page.title(), "text": page.inner_text("body")}
    elif op == "console_errors":  # what the page reported since the last ask
        errors = list(page.imagehub_errors)  # type: ignore[attr-defined]
        page.imagehub_errors.clear()  # type: ignore[attr-defined]
        return {"errors": errors}
    else:
        raise ValueError(f"unknown op {op!r}")
    return {}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def new_page(browser: Any) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.imagehub_errors = []  # type: ignore[attr-defined]
    # What the page itself reports: CSP violations and script errors show up here.
    page.on("console", lambda m: m.type == "error" and page.imagehub_errors.append(m.text))  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.imagehub_errors.append(str(e)))  # type: ignore[attr-defined]
    return page


def main() -> None:
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out_dir, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = new_page(browser)
        print(json.dumps({"ok": True, "ready": True}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            try:
                if request["op"] == "new_session":  # a fresh context: no cookies, another person
                    page.context.close()
                    page = new_page(browser)
                    result: dict[str, Any] = {}
                elif request["op"] == "quit":
                    break
                else:
                    result = answer(page, request, out_dir)
                print(json.dumps({"ok": True, **result}), flush=True)
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                print(json.dumps({"ok": False, "error": message, "trace": traceback.format_exc()[-2000:]}), flush=True)
        browser.close()


if __name__ == "__main__":
    main()
