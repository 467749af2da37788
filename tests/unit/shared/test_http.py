"""shared.runtime.http: request ids, bounded bodies and JSON errors, as every service's edge uses them."""

import io
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.contracts.errors import ImagehubError, InvalidRequest
from shared.runtime.http import (
    REQUEST_ID_HEADER,
    JsonHttpEntrypoint,
    PayloadTooLarge,
    public_message,
    read_body,
    request_id_of,
)


def request(headers=None):
    return Request(EnvironBuilder(path="/", headers=headers or {}).get_environ())


class TestRequestId:
    def test_a_well_formed_id_from_the_caller_is_kept(self):
        assert request_id_of(request({REQUEST_ID_HEADER: "push-42.abc:7"})) == "push-42.abc:7"

    @pytest.mark.parametrize("given", ["", "a b", "x" * 129, "<script>", "id\u00e9"])
    def test_anything_else_gets_a_new_one(self, given):
        made = request_id_of(request({REQUEST_ID_HEADER: given} if given else {}))
        assert made != given and len(made) == 32 and int(made, 16) >= 0

    def test_two_requests_without_one_get_different_ids(self):
        assert request_id_of(request()) != request_id_of(request())


class TestReadBody:
    def test_a_body_up_to_the_limit_is_read_whole(self):
        assert read_body(io.BytesIO(b"x" * 10), None, max_bytes=10) == b"x" * 10

    def test_a_declared_length_past_the_limit_is_refused_unread(self):
        stream = io.BytesIO(b"x" * 11)
        with pytest.raises(PayloadTooLarge, match="body of 11 bytes exceeds the limit of 10 bytes"):
            read_body(stream, 11, max_bytes=10)
        assert stream.tell() == 0

    def test_an_undeclared_body_is_read_one_byte_past_the_limit_at_most(self):
        stream = io.BytesIO(b"x" * 1000)
        with pytest.raises(PayloadTooLarge):
            read_body(stream, None, max_bytes=10)
        assert stream.tell() == 11


class Entrypoint(JsonHttpEntrypoint):
    def error_response(self, exc):
        status = 400 if isinstance(exc, InvalidRequest) else 500
        return status, {"error": public_message(exc, status)}


class TestErrors:
    def test_a_typed_error_is_json_with_its_status_and_headers(self):
        exc = InvalidRequest("name is required")
        exc.headers = {"Retry-After": "3"}
        response = Entrypoint("GET", "/").response_from_exception(exc)
        assert (response.status_code, response.mimetype) == (400, "application/json")
        assert json.loads(response.get_data()) == {"error": "name is required"}
        assert response.headers["Retry-After"] == "3"

    def test_a_bug_tells_the_caller_nothing_of_itself(self):
        response = Entrypoint("GET", "/").response_from_exception(KeyError("secret-column"))
        assert (response.status_code, json.loads(response.get_data())) == (500, {"error": "internal error"})

    def test_public_message_is_the_errors_own_below_500(self):
        assert public_message(ImagehubError("no such tag"), 404) == "no such tag"


class TestOwnPort:
    def test_a_port_another_server_listens_on_fails_the_start(self):
        """nameko's own web server would share the port (SO_REUSEPORT) with the server already
        there, and the kernel would hand it half of the connections."""
        import eventlet
        from nameko.containers import ServiceContainer

        from shared.runtime.http import JsonHttpEntrypoint

        class Service:
            name = "own-port"

            @JsonHttpEntrypoint.decorator("GET", "/health")
            def health(self, request):
                return "ok"

        other = eventlet.listen(("127.0.0.1", 0), reuse_port=True)  # another nameko server, as it listens
        port = other.getsockname()[1]
        container = ServiceContainer(Service, config={"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
        try:
            with pytest.raises(OSError, match="Address already in use"):
                container.start()
        finally:
            container.kill()
            other.close()
