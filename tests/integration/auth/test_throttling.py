"""Login throttling protects instead of locking out (issue 12): failures count per name from one
client address and per address, so a flood of guesses slows its sender and nobody else. Client
addresses are real: requests leave from different loopback addresses (127.0.0.x)."""

import base64
import http.client
import json
from urllib.parse import urlencode, urlsplit

from tests.integration.auth.conftest import FREE_FAILURES, PASSWORDS, SERVICE

ROBOT = "_platform+catalog"


def token_request(auth_service, user, password, source, scope="registry:catalog:*"):
    """``(status, headers, body)`` of ``GET /token`` sent from ``source`` (a loopback address)."""
    parts = urlsplit(auth_service)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20, source_address=(source, 0))
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        conn.request(
            "GET",
            "/token?" + urlencode({"service": SERVICE, "scope": scope}),
            headers={"Authorization": f"Basic {credentials}"},
        )
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_fifty_wrong_passwords_for_the_catalogue_robot_slow_down_their_sender_only(auth_service, accounts, tokens):
    statuses = [token_request(auth_service, ROBOT, f"guess-{n}", "127.0.0.5")[0] for n in range(50)]
    # Each of the free failures and the one after it is checked (401); then the sender waits.
    assert statuses[: FREE_FAILURES + 1] == [401] * (FREE_FAILURES + 1)
    assert statuses[FREE_FAILURES + 1 :] == [429] * (50 - FREE_FAILURES - 1)
    status, headers, _ = token_request(auth_service, ROBOT, accounts[ROBOT], "127.0.0.5")
    assert status == 429 and int(headers["Retry-After"]) >= 1  # even the right secret, from there

    # The catalogue, from its own address, still gets tokens and reads the registry with them.
    status, _, body = token_request(auth_service, ROBOT, accounts[ROBOT], "127.0.0.1")
    assert status == 200
    assert tokens.registry("GET", "_catalog", body["token"]).status_code == 200
    # A developer elsewhere still signs in.
    assert token_request(auth_service, "alice", PASSWORDS["alice"], "127.0.0.6", "repository:acme/x:pull")[0] == 200


def test_an_address_guessing_many_names_waits_as_a_whole(auth_service, accounts, auth_config):
    free = int(auth_config["AUTH_LOGIN_ADDRESS_FREE_FAILURES"])
    # One wrong password per made-up name: within every name's allowance, not the address's.
    statuses = [token_request(auth_service, f"made-up-{n}", "wrong", "127.0.0.7")[0] for n in range(free + 1)]
    assert statuses == [401] * (free + 1)
    status, headers, body = token_request(auth_service, "alice", PASSWORDS["alice"], "127.0.0.7", "")
    assert (status, body["errors"][0]["code"]) == (429, "TOOMANYREQUESTS")
    assert token_request(auth_service, "alice", PASSWORDS["alice"], "127.0.0.8", "")[0] == 200
