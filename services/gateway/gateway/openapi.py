"""The API's OpenAPI 3.1 document, generated from the routes' ``RouteDoc`` and the marshmallow
schemas the gateway validates with (apispec), so it cannot drift from what the gateway checks."""

import re
from collections.abc import Iterable
from functools import cache
from http import HTTPStatus
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema

from gateway import problems, schemas
from gateway.web import GatewayRoute, RouteDoc

VERSION = "1.0.0"
_PARAMETER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
PATH_PARAMETERS = {
    "namespace": "a tenant ID, or `library` for the public library",
    "name": "the image's name in its namespace",
    "tag": "a tag (version)",
    "deployment_id": "a deployment's ID",
}


def api_routes(service_cls: type) -> list[tuple[str, str, RouteDoc]]:
    """``(method, url, doc)`` of every documented route of the service class, by URL."""
    found = []
    for attribute in dir(service_cls):
        for entrypoint in getattr(getattr(service_cls, attribute), "nameko_entrypoints", ()):
            if isinstance(entrypoint, GatewayRoute) and entrypoint.doc is not None:
                found.append((entrypoint.method, entrypoint.url, entrypoint.doc))
    return sorted(found, key=lambda r: (r[1], r[0]))


def openapi_path(url: str) -> str:
    return _PARAMETER.sub(r"{\1}", url)


def _schema_ref(spec: APISpec, schema: Any) -> dict[str, Any]:
    cls = schema if isinstance(schema, type) else type(schema)
    name = cls.__name__.removesuffix("Schema") or "Schema"
    if name not in spec.components.schemas:
        spec.components.schema(name, schema=cls)
    return {"$ref": f"#/components/schemas/{name}"}


def _query_parameters(schema: type[Schema]) -> list[dict[str, Any]]:
    return [{"in": "query", "schema": schema}]


def _operation(spec: APISpec, method: str, url: str, doc: RouteDoc) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    success: dict[str, Any] = {"description": HTTPStatus(doc.status).phrase}
    if doc.response is not None:
        success["content"] = {"application/json": {"schema": _schema_ref(spec, doc.response)}}
    responses[str(doc.status)] = success
    for status in sorted(set(doc.errors) | {405}):
        responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
    operation: dict[str, Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "operationId": f"{method.lower()}_{re.sub(r'[^a-z0-9]+', '_', url.lower()).strip('_')}",
        "responses": responses,
    }
    if doc.description:
        operation["description"] = doc.description
    parameters = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}, "description": text}
        for name, text in PATH_PARAMETERS.items()
        if f"<{name}>" in url
    ]
    if doc.query is not None:
        parameters += _query_parameters(doc.query)
    if parameters:
        operation["parameters"] = parameters
    if doc.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(spec, doc.body)}},
        }
    if doc.public:
        operation["security"] = []
    return operation


def build(routes: Iterable[tuple[str, str, RouteDoc]]) -> dict[str, Any]:
    spec = APISpec(
        title="imagehub gateway API",
        version=VERSION,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Browse the public library and the tenant's repositories, delete versions and "
            "deploy them. Sign in with POST /api/v1/session; send the token as `Authorization: Bearer`, "
            "or (the console) the session cookie with `X-CSRF-Token` on changes. Errors are RFC 9457 "
            "problems (application/problem+json)."
        },
        servers=[{"url": "/"}],
    )
    spec.components.schema("Problem", schema=schemas.Problem)
    for status in (400, 401, 403, 404, 405, 409, 413, 415, 429, 503):
        response: dict[str, Any] = {
            "description": HTTPStatus(status).phrase,
            "content": {problems.PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        if status in (429, 503):
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        spec.components.response(str(status), response)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("cookie", {"type": "apiKey", "in": "cookie", "name": "imagehub_session"})
    paths: dict[str, dict[str, Any]] = {}
    for method, url, doc in routes:
        for one in method.split(","):
            paths.setdefault(url, {})[one.lower()] = _operation(spec, one, url, doc)
    for url, operations in paths.items():
        spec.path(path=openapi_path(url), operations=operations)
    document = spec.to_dict()
    document["security"] = [{"bearer": []}, {"cookie": []}]
    return document


@cache
def document_of(service_cls: type) -> dict[str, Any]:
    return build(api_routes(service_cls))


# -- the reference in docs/gateway-api.md ----------------------------------------------------------


def _type_of(schema: dict[str, Any], components: dict[str, Any]) -> str:
    if "$ref" in schema:
        return f"`{schema['$ref'].rsplit('/', 1)[-1]}`"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(k for k in kind if k != "null") + (" or null" if "null" in kind else "")
    if kind == "array":
        return f"array of {_type_of(schema.get('items', {}), components)}"
    return str(kind)


def _cell(text: Any) -> str:
    return str(text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(document: dict[str, Any]) -> str:
    """Every operation of ``document``: parameters, body, answers; and every schema's fields."""
    components = document["components"]["schemas"]
    lines: list[str] = []
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            lines += [f"### `{method.upper()} {path}`", "", op["summary"] + ".", ""]
            if op.get("description"):
                lines += [op["description"], ""]
            if op.get("security") == []:
                lines += ["No session needed.", ""]
            params = op.get("parameters", [])
            if params:
                lines += ["| parameter | in | type | required | meaning |", "| --- | --- | --- | --- | --- |"]
                for p in params:
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_type_of(p.get('schema', {}), components)} | "
                        f"{'yes' if p.get('required') else 'no'} | {_cell(p.get('description'))} |"
                    )
                lines.append("")
            body = op.get("requestBody")
            if body:
                lines += [f"Body (JSON): {_type_of(body['content']['application/json']['schema'], components)}.", ""]
            answers = []
            for status, response in op["responses"].items():
                content = response.get("content", {}).get("application/json")
                answers.append(f"`{status}`" + (f" {_type_of(content['schema'], components)}" if content else ""))
            lines += ["Answers: " + ", ".join(answers) + ".", ""]
    lines += ["### Schemas", ""]
    for name, schema in sorted(components.items()):
        lines += [f"#### `{name}`", ""]
        if schema.get("description"):
            lines += [schema["description"], ""]
        required = set(schema.get("required", []))
        lines += ["| field | type | meaning |", "| --- | --- | --- |"]
        for field, spec in schema.get("properties", {}).items():
            mark = " (required)" if field in required else ""
            lines.append(f"| `{field}`{mark} | {_type_of(spec, components)} | {_cell(spec.get('description'))} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    """``python -m gateway.openapi [--markdown]``: the document as JSON, or its Markdown reference."""
    import json
    import sys

    from gateway.service import GatewayService

    document = document_of(GatewayService)
    print(render_markdown(document) if "--markdown" in sys.argv[1:] else json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
