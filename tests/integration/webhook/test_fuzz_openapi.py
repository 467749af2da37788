"""docs/webhook-openapi.yaml: a valid OpenAPI 3.1 document that says what the webhook does.

* The document: its structure is checked against the subset of the OpenAPI 3.1 meta-schema it
  uses (below), every ``$ref`` resolves, every schema is a valid JSON Schema 2020-12 (the
  dialect of OpenAPI 3.1) and every example matches its schema. (The official meta-schema ships
  with ``openapi-spec-validator``, which is not among the project's requirements; run by hand, it
  accepts the document too.)
* Consistency: the request media types are the ones the service accepts, and the statuses are
  the ones its error table can produce.
* Behaviour: every example is replayed against the real service on a real RabbitMQ vhost — each
  request example gets its ``x-expected-response``, each response example is what its
  ``x-request`` gets — and every answer matches the documented schema.
"""

import json
import os

import pytest
import yaml
from hypothesis import given
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.integration.webhook.test_fuzz import dispatched, fuzz_settings, post, registry_events, unseeded_vhost_names  # noqa: F401
from tests.support import free_port
from webhook.exceptions import HTTP_STATUSES
from webhook.intake import ACCEPTED_CONTENT_TYPES

DOCUMENT = os.path.join(os.path.dirname(__file__), "../../../docs/webhook-openapi.yaml")
BASE = "urn:imagehub:webhook-openapi"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def load():
    with open(DOCUMENT) as f:
        return yaml.safe_load(f)


def pointer(*parts):
    return "#/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validator(doc, json_pointer):
    """A validator for the schema at ``json_pointer``, resolving the document's own ``$ref``s."""
    registry = Registry().with_resource(BASE, Resource(contents=doc, specification=DRAFT202012))
    return Draft202012Validator({"$ref": BASE + json_pointer}, registry=registry, format_checker=FormatChecker())


# The part of the OpenAPI 3.1 meta-schema this document uses, as strict as the specification.
_REF = {"type": "object", "required": ["$ref"], "properties": {"$ref": {"type": "string"}}}
_EXAMPLE = {
    "type": "object",
    "properties": {"summary": {"type": "string"}, "description": {"type": "string"}, "value": {}},
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}
_MEDIA = {
    "type": "object",
    "properties": {
        "schema": {"type": ["object", "boolean"]},
        "example": {},
        "examples": {"type": "object", "additionalProperties": _EXAMPLE},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}
_CONTENT = {"type": "object", "propertyNames": {"pattern": "^[a-z]+/[a-z0-9.+-]+$"}, "additionalProperties": _MEDIA}
_HEADER = {
    "type": "object",
    "properties": {"description": {"type": "string"}, "required": {"type": "boolean"}, "schema": {"type": "object"}},
    "additionalProperties": False,
}
_RESPONSE = {
    "type": "object",
    "required": ["description"],
    "properties": {
        "description": {"type": "string"},
        "content": _CONTENT,
        "headers": {"type": "object", "additionalProperties": _HEADER},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}
_OPERATION = {
    "type": "object",
    "required": ["responses"],
    "properties": {
        "operationId": {"type": "string"},
        "summary": {"type": "string"},
        "description": {"type": "string"},
        "tags": {"type": "array"},
        "security": {
            "type": "array",
            "items": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
        },
        "requestBody": {
            "type": "object",
            "required": ["content"],
            "properties": {"description": {"type": "string"}, "required": {"type": "boolean"}, "content": _CONTENT},
            "additionalProperties": False,
        },
        "responses": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^([1-5][0-9X]{2}|default)$"},
            "additionalProperties": {"oneOf": [_RESPONSE, _REF]},
        },
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}
OPENAPI_SUBSET = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["openapi", "info", "paths"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.\d+(-.+)?$"},
        "info": {
            "type": "object",
            "required": ["title", "version"],
            "properties": {
                "title": {"type": "string"},
                "version": {"type": "string"},
                "summary": {"type": "string"},
                "description": {"type": "string"},
            },
        },
        "servers": {"type": "array", "items": {"type": "object", "required": ["url"]}},
        "paths": {
            "type": "object",
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {
                "type": "object",
                "properties": dict.fromkeys(METHODS, _OPERATION),
                "patternProperties": {"^x-": {}},
                "additionalProperties": False,
            },
        },
        "components": {
            "type": "object",
            "properties": {
                "schemas": {"type": "object", "additionalProperties": {"type": ["object", "boolean"]}},
                "securitySchemes": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["type"],
                        "properties": {"type": {"enum": ["apiKey", "http", "mutualTLS", "oauth2", "openIdConnect"]}},
                    },
                },
            },
            "additionalProperties": False,
        },
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
}


def operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def all_schemas(doc):
    """Every Schema Object of the document, with its JSON pointer."""
    for name in doc["components"]["schemas"]:
        yield pointer("components", "schemas", name)
    for path, method, operation in operations(doc):
        for media in operation.get("requestBody", {}).get("content", {}):
            yield pointer("paths", path, method, "requestBody", "content", media, "schema")
        for status, response in operation["responses"].items():
            for media in response.get("content", {}):
                yield pointer("paths", path, method, "responses", status, "content", media, "schema")


def resolve(doc, json_pointer):
    node = doc
    for part in json_pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def examples(doc):
    """``(schema pointer, name, example)`` for every example of a request or response body."""
    for path, method, operation in operations(doc):
        places = [(("requestBody",), operation.get("requestBody", {}))] + [
            (("responses", status), response) for status, response in operation["responses"].items()
        ]
        for where, holder in places:
            for media, media_object in holder.get("content", {}).items():
                for name, example in media_object.get("examples", {}).items():
                    yield (
                        pointer("paths", path, method, *where, "content", media, "schema"),
                        name,
                        example,
                        (path, method, where, media),
                    )


class TestDocument:
    def test_it_has_the_structure_of_an_openapi_3_1_document(self):
        doc = load()
        Draft202012Validator.check_schema(OPENAPI_SUBSET)
        errors = sorted(Draft202012Validator(OPENAPI_SUBSET).iter_errors(doc), key=str)
        assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
        ids = [operation["operationId"] for _, _, operation in operations(doc)]
        assert len(ids) == len(set(ids))
        schemes = set(doc["components"]["securitySchemes"])
        for _, _, operation in operations(doc):
            for requirement in operation.get("security", []):
                assert set(requirement) <= schemes

    def test_every_ref_resolves_and_every_schema_is_json_schema_2020_12(self):
        doc = load()
        for ref in refs(doc):
            assert ref.startswith("#/") and resolve(doc, ref) is not None, ref
        for json_pointer in all_schemas(doc):
            Draft202012Validator.check_schema(resolve(doc, json_pointer))

    def test_every_example_matches_its_schema(self):
        doc = load()
        checked = 0
        for schema_pointer, name, example, _ in examples(doc):
            errors = list(validator(doc, schema_pointer).iter_errors(example["value"]))
            assert not errors, f"example {name}: {[e.message for e in errors]}"
            checked += 1
        assert checked >= 15

    def test_set_aside_examples_are_not_registry_events_the_webhook_can_use(self):
        doc = load()
        usable = validator(doc, pointer("components", "schemas", "RegistryEvent"))
        media = doc["paths"]["/registry/events"]["post"]["requestBody"]["content"]
        for example in (e for m in media.values() for e in m.get("examples", {}).values()):
            events, body = example["value"]["events"], example["x-expected-response"]["body"]
            if body["set_aside"] == len(events):
                assert all(not usable.is_valid(event) for event in events)
            elif body["accepted"] == len(events):
                assert all(usable.is_valid(event) for event in events)

    def test_the_fuzzers_events_before_mutation_are_registry_events_of_the_schema(self):
        """test_fuzz.py generates its envelopes from this schema's shape, then mutates them."""
        usable = validator(load(), pointer("components", "schemas", "RegistryEvent"))

        @fuzz_settings(200)
        @given(event=registry_events(mutate=False))
        def run(event):
            errors = [e.message for e in usable.iter_errors(event)]
            assert not errors, errors

        run()

    def test_a_document_breaking_the_rules_is_caught(self):
        """The checks above can fail: a few broken copies of the document."""
        broken = [dict(load(), openapi="3.0.3"), {k: v for k, v in load().items() if k != "info"}]
        doc = load()
        doc["paths"]["/health"]["get"]["responses"]["299x"] = {"description": "no such status"}
        broken.append(doc)
        for bad in broken:
            assert list(Draft202012Validator(OPENAPI_SUBSET).iter_errors(bad))
        doc = load()
        example = doc["paths"]["/registry/events"]["post"]["responses"]["200"]["content"]["application/json"]
        assert list(
            validator(
                doc,
                pointer(
                    "paths", "/registry/events", "post", "responses", "200", "content", "application/json", "schema"
                ),
            ).iter_errors({"accepted": -1})
        )
        assert example["examples"]

    def test_it_says_what_the_service_accepts_and_answers(self):
        doc = load()
        operation = doc["paths"]["/registry/events"]["post"]
        assert set(operation["requestBody"]["content"]) == ACCEPTED_CONTENT_TYPES
        documented = {int(status) for status in operation["responses"]}
        assert {status for _, status in HTTP_STATUSES} | {200, 500} == documented


# -- the examples, replayed against the real service -------------------------------------------


def replay_request(webhook, request):
    """The response to an ``x-request``: ``body`` or ``bodyBytes`` (spaces, so that only the size
    matters), ``contentType``, ``authorization`` (null: none), ``chunked``."""
    body = request["body"].encode() if "body" in request else b" " * request["bodyBytes"]
    authorization = request.get("authorization", f"Bearer {webhook.token}")
    return post(
        webhook,
        body,
        request.get("contentType", "application/vnd.docker.distribution.events.v1+json"),
        authorization if authorization is not None else False,
        request.get("chunked", False),
    )


def response_validator(doc, path, method, status):
    return validator(doc, pointer("paths", path, method, "responses", status, "content", "application/json", "schema"))


@pytest.mark.timeout(60)
class TestTheServiceDoesWhatItSays:
    def test_request_examples_get_their_expected_response(self, webhook, dispatched):
        doc = load()
        replayed = 0
        for _, name, example, (path, method, where, media) in examples(doc):
            if where != ("requestBody",):
                continue
            resp = post(webhook, json.dumps(example["value"]).encode(), media)
            expected = example["x-expected-response"]
            assert (resp.status_code, resp.json()) == (expected["status"], expected["body"]), name
            response_validator(doc, path, method, str(resp.status_code)).validate(resp.json())
            replayed += 1
        assert replayed == 6

    def test_response_examples_are_what_their_request_gets(self, webhook, dispatched):
        doc = load()
        replayed = 0
        for _, name, example, (path, method, where, _) in examples(doc):
            request = example.get("x-request")
            if where[0] != "responses" or request is None or request.get("brokerDown"):
                continue
            resp = replay_request(webhook, request)
            assert (resp.status_code, resp.json()) == (int(where[1]), example["value"]), name
            response_validator(doc, path, method, where[1]).validate(resp.json())
            if resp.status_code == 401:
                header = doc["paths"][path][method]["responses"]["401"]["headers"]["WWW-Authenticate"]
                assert resp.headers["WWW-Authenticate"] in header["schema"]["enum"]
            replayed += 1
        assert replayed == 11

    def test_the_broker_down_example(self, start_webhook):
        doc = load()
        example = doc["paths"]["/registry/events"]["post"]["responses"]["503"]["content"]["application/json"][
            "examples"
        ]["brokerDown"]
        client = start_webhook(f"amqp://guest:guest@127.0.0.1:{free_port()}/")  # nothing listens there
        resp = post(
            client,
            json.dumps(
                {
                    "events": [
                        {
                            "id": "x",
                            "action": "push",
                            "target": {
                                "repository": "acme/app",
                                "digest": "sha256:" + "d" * 64,
                                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                            },
                        }
                    ]
                }
            ).encode(),
        )
        assert (resp.status_code, resp.json()) == (503, example["value"])
        response_validator(doc, "/registry/events", "post", "503").validate(resp.json())

    def test_health_matches_its_schema(self, webhook):
        doc = load()
        resp = webhook.health()
        assert resp.status_code == 200
        response_validator(doc, "/health", "get", "200").validate(resp.json())
