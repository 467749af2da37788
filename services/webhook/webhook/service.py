"""The registry's notification endpoint: authenticate, parse, translate, dispatch.

The registry keeps an envelope and retries it until it gets a 2xx, so the answer is 200 only
once the broker has confirmed every dispatched event, and 503 when it has not.
"""

import logging
from collections.abc import Callable
from typing import Any, cast

from werkzeug.wrappers import Request, Response

from shared.runtime.metrics import Metrics
from webhook.dependencies import BrokerHealth, ConfirmedEventDispatcher, Settings, WebhookSettings
from webhook.entrypoints import http, json_response
from webhook.exceptions import EXPECTED_ERRORS, BrokerUnavailable
from webhook.intake import check_content_type, check_token, parse_envelope, read_body
from webhook.translate import SET_ASIDE, summarize, translate_envelope

log = logging.getLogger(__name__)


class WebhookService:
    name = "webhook"
    metrics = Metrics()

    # As a worker sees them (what get_dependency returns). Not ``dispatch``: a Decision's
    # event_type and payload are Optional, set for the outcomes that dispatch.
    settings: Settings = WebhookSettings()
    dispatch = ConfirmedEventDispatcher()
    broker: Callable[[], dict[str, Any]] = BrokerHealth()

    @http("POST", "/registry/events", expected_exceptions=EXPECTED_ERRORS)
    def receive_registry_events(self, request: Request) -> Response:
        check_token(request.headers.get("Authorization"), self.settings.token)
        check_content_type(request.headers.get("Content-Type"))
        # eventlet's input stops at Content-Length and decodes chunked bodies; werkzeug's
        # request.stream would be empty for a chunked body (eventlet sets no wsgi.input_terminated).
        body = read_body(request.environ["wsgi.input"], request.content_length, self.settings.max_body_bytes)
        decisions = translate_envelope(parse_envelope(body))

        dispatched = 0
        for decision in decisions:
            if decision.outcome == SET_ASIDE:
                payload = cast(dict[str, Any], decision.payload)  # set_aside() always gives one
                log.warning("registry event %s set aside: %s", payload["source_event_id"], decision.reason)
            if not decision.dispatches:
                continue
            try:
                self.dispatch(decision.event_type, decision.payload)
            except BrokerUnavailable as exc:
                # The registry retries the whole envelope; the events already dispatched go
                # out again with the same event_id and the consumers drop the duplicates.
                log.warning(
                    "answering 503 (%d of %d events dispatched): %s",
                    dispatched,
                    sum(d.dispatches for d in decisions),
                    exc,
                )
                raise
            dispatched += 1
        return json_response(200, summarize(decisions))

    @http("GET", "/health")
    def health(self, request: Request) -> Response:
        """Always 200 while the service runs; ``broker`` says whether RabbitMQ last answered."""
        return json_response(200, {"status": "ok", "broker": self.broker()})
