"""The webhook's HTTP edge (shared.runtime.http) on the real service: every answer, refusals
included, carries the request id, the caller's own when it sent a well-formed one."""

import re

from shared.runtime.http import REQUEST_ID_HEADER


class TestRequestId:
    def test_the_callers_id_comes_back_on_health_and_on_a_refusal(self, webhook):
        health = webhook.session.get(f"{webhook.url}/health", headers={REQUEST_ID_HEADER: "trace-1"}, timeout=5)
        refused = webhook.session.post(
            f"{webhook.url}/registry/events", data="{}", headers={REQUEST_ID_HEADER: "trace-2"}, timeout=5
        )
        assert (health.status_code, health.headers[REQUEST_ID_HEADER]) == (200, "trace-1")
        assert (refused.status_code, refused.headers[REQUEST_ID_HEADER]) == (401, "trace-2")

    def test_without_one_each_answer_gets_its_own(self, webhook):
        first, second = webhook.health(), webhook.health()
        ids = [first.headers[REQUEST_ID_HEADER], second.headers[REQUEST_ID_HEADER]]
        assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and ids[0] != ids[1]
