"""docs/gateway-api.md shows the reference the OpenAPI document renders to."""

import os
import re

from gateway import openapi
from gateway.service import GatewayService

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_the_reference_in_the_docs_is_the_documents():
    with open(os.path.join(ROOT, "docs", "gateway-api.md")) as f:
        text = f.read()
    shown = re.search(r"<!-- openapi:start -->\n(.*?)\n<!-- openapi:end -->", text, re.S)
    assert shown is not None, "docs/gateway-api.md lost its openapi markers"
    rendered = openapi.render_markdown(openapi.document_of(GatewayService))
    assert shown.group(1).strip() == rendered.strip(), "stale: python -m gateway.openapi --markdown"
