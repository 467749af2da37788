"""The suite's broker users and what each may do, from ``deploy/broker/access.yml``.

RabbitMQ checks two things on every operation of a connection's user, in the connection's vhost:

* **permissions** (configure, write, read: regular expressions over exchange and queue names):
  which queues and exchanges the user may declare or delete, publish to or bind to, consume from
  or bind from;
* **topic permissions** (write, read: regular expressions over routing keys, per topic exchange):
  which routing keys the user may publish with and bind with. nameko's RPC is the topic exchange
  ``nameko-rpc`` with routing key ``<service>.<method>``, its events the topic exchange
  ``<service>.events`` with the event type as routing key, so these name the methods a user may
  call, the events it may publish and the ones it may subscribe to. A user with no topic
  permission on an exchange may use every routing key there, so every user gets one on every
  exchange of the suite, matching nothing (``^$``) where it is allowed nothing.

``Matrix`` reads the file and answers both in RabbitMQ's terms (``permissions``,
``topic_permissions``) and in the suite's (``may_call``, ``may_publish``, ``may_subscribe``).
``python -m shared.ops.broker_access apply`` makes the vhost and the users with the
management API (run by ``make up``; the tests' stack calls ``apply`` itself) and ``render``
prints the matrix as the table of docs/security.md.
"""

import argparse
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import requests
import yaml

from shared.contracts.topology import DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, REPLAY_EXCHANGE, SUBSCRIPTIONS
from shared.ops import broker_topology

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MATRIX = ROOT / "deploy" / "broker" / "access.yml"
RPC_EXCHANGE = "nameko-rpc"
# nameko names a reply queue's routing key with a UUID, and the reply is published with it.
REPLY_KEY = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOTHING = "^$"
TIMEOUT = 10
# The broker administrator's ``user:password`` (scripts/infra.sh makes it, one per machine).
OPERATOR_FILE = "/etc/imagehub/rabbitmq-operator"


class MatrixError(ValueError):
    """The file names a method, event, group or service that it does not define."""


def events_exchange(source: str) -> str:
    return f"{source}.events"


def _any_of(patterns: Iterable[str]) -> str:
    """One anchored expression matching exactly the given (already escaped) patterns."""
    unique = sorted(set(patterns))
    return f"^({'|'.join(unique)})$" if unique else NOTHING


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str


@dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str
    read: str


@dataclass(frozen=True)
class Role:
    name: str
    about: str
    serves: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()  # "service.method"
    publishes: tuple[str, ...] = ()  # "source.event_type"
    subscribes: tuple[str, ...] = ()
    # Keeps the suite's dead letters (the catalog): consumes their queue and replays them.
    dead_letter_desk: bool = False

    def parked_queues(self) -> list[str]:
        """The queues of the suite's handlers this user runs (``shared.contracts.topology``): it may
        park their messages on the dead-letter exchange, under their names only."""
        return sorted(s.queue for s in SUBSCRIPTIONS if s.service in self.serves)


@dataclass
class Matrix:
    methods: dict[str, dict[str, list[str]]]
    events: dict[str, list[str]]
    roles: dict[str, Role] = field(default_factory=dict)

    # -- the suite's terms ------------------------------------------------------------------------

    def all_methods(self) -> list[str]:
        return sorted(f"{s}.{m}" for s, groups in self.methods.items() for ms in groups.values() for m in ms)

    def all_events(self) -> list[str]:
        return sorted(f"{s}.{e}" for s, types in self.events.items() for e in types)

    def exchanges(self) -> list[str]:
        """The suite's topic exchanges: every user gets a topic permission on each."""
        return [RPC_EXCHANGE, *sorted(events_exchange(s) for s in self.events), DEAD_LETTER_EXCHANGE]

    def group_of(self, method: str) -> str:
        service, name = method.split(".", 1)
        return next(g for g, ms in self.methods[service].items() if name in ms)

    def may_call(self, role: str, method: str) -> bool:
        return method in self.roles[role].calls

    def may_publish(self, role: str, event: str) -> bool:
        return event in self.roles[role].publishes

    def may_subscribe(self, role: str, event: str) -> bool:
        return event in self.roles[role].subscribes

    def may_serve(self, role: str, service: str) -> bool:
        return service in self.roles[role].serves

    # -- RabbitMQ's terms -------------------------------------------------------------------------

    def permissions(self, role: str) -> Permissions:
        r = self.roles[role]
        queues: set[str] = {f"rpc-{re.escape(s)}" for s in r.serves}
        for event in r.subscribes:
            source, kind = event.split(".", 1)
            # nameko's event queue: evt-<source>-<type>--<subscribing service>.<method>
            queues.add(f"evt-{re.escape(source)}-{re.escape(kind)}--[A-Za-z0-9_]+\\.[A-Za-z0-9_]+")
        if r.calls:
            queues.add(f"rpc\\.reply-[A-Za-z0-9_]+-{REPLY_KEY}")
        rpc = {re.escape(RPC_EXCHANGE)} if (r.serves or r.calls) else set()
        published = {re.escape(events_exchange(e.split(".", 1)[0])) for e in r.publishes}
        subscribed = {re.escape(events_exchange(e.split(".", 1)[0])) for e in r.subscribes}
        # Declaring a queue with a dead-letter exchange needs write on that exchange, and so
        # does parking a message there; the desk consumes the dead letters and replays them.
        parks = {re.escape(DEAD_LETTER_EXCHANGE)} if r.parked_queues() else set()
        desk_reads = {re.escape(DEAD_LETTER_QUEUE)} if r.dead_letter_desk else set()
        desk_writes = {re.escape(REPLAY_EXCHANGE)} if r.dead_letter_desk else set()
        return Permissions(
            configure=_any_of(queues | rpc | published | subscribed),
            # publish to an exchange; bind a queue (write on the queue, read on the exchange)
            write=_any_of(queues | rpc | published | parks | desk_writes),
            read=_any_of(queues | rpc | subscribed | desk_reads),
        )

    def topic_permissions(self, role: str) -> list[TopicPermission]:
        r = self.roles[role]
        rpc_write = {re.escape(m) for m in r.calls} | ({REPLY_KEY} if r.serves else set())
        rpc_read = {f"{re.escape(s)}\\.\\*" for s in r.serves} | ({REPLY_KEY} if r.calls else set())
        grants = [TopicPermission(RPC_EXCHANGE, _any_of(rpc_write), _any_of(rpc_read))]
        for source in sorted(self.events):
            write = {re.escape(e.split(".", 1)[1]) for e in r.publishes if e.split(".", 1)[0] == source}
            read = {re.escape(e.split(".", 1)[1]) for e in r.subscribes if e.split(".", 1)[0] == source}
            grants.append(TopicPermission(events_exchange(source), _any_of(write), _any_of(read)))
        parked = {re.escape(q) for q in r.parked_queues()}
        grants.append(TopicPermission(DEAD_LETTER_EXCHANGE, _any_of(parked), NOTHING))
        return grants


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MatrixError(f"{what}: expected a list of names, got {value!r}")
    return value


def parse(document: Mapping[str, Any]) -> Matrix:
    """A ``Matrix`` from the file's content, every name in it checked against what it defines."""
    methods = {
        s: {g: _names(ms, f"methods.{s}.{g}") for g, ms in groups.items()} for s, groups in document["methods"].items()
    }
    events = {s: _names(types, f"events.{s}") for s, types in document["events"].items()}
    matrix = Matrix(methods, events)
    known_methods, known_events = set(matrix.all_methods()), set(matrix.all_events())
    for name, spec in document["users"].items():
        calls: list[str] = []
        for entry in _names(spec.get("calls"), f"users.{name}.calls"):
            service, _, rest = entry.partition(".")
            if entry in known_methods:
                calls.append(entry)
            elif rest in methods.get(service, {}):
                calls.extend(f"{service}.{m}" for m in methods[service][rest])
            else:
                raise MatrixError(f"users.{name}.calls: {entry!r} is neither a method nor a group of methods")
        for key in ("publishes", "subscribes"):
            for event in _names(spec.get(key), f"users.{name}.{key}"):
                if event not in known_events:
                    raise MatrixError(f"users.{name}.{key}: no event {event!r} (events: {sorted(known_events)})")
        matrix.roles[name] = Role(
            name=name,
            about=str(spec.get("about", "")),
            serves=tuple(_names(spec.get("serves"), f"users.{name}.serves")),
            calls=tuple(sorted(set(calls))),
            publishes=tuple(_names(spec.get("publishes"), f"users.{name}.publishes")),
            subscribes=tuple(_names(spec.get("subscribes"), f"users.{name}.subscribes")),
            dead_letter_desk=spec.get("dead_letter_desk") is True,
        )
    return matrix


def load(path: str | os.PathLike[str] = DEFAULT_MATRIX) -> Matrix:
    with open(path) as f:
        return parse(yaml.safe_load(f))


# -- rendering --------------------------------------------------------------------------------------


def render_markdown(matrix: Matrix) -> str:
    """The matrix as docs/security.md shows it: a row per method or event, a column per user."""
    roles = list(matrix.roles)
    head = ["| | " + " | ".join(f"`{r}`" for r in roles) + " |", "| --- |" + " :-: |" * len(roles)]
    rows = [f"| **RPC** ({RPC_EXCHANGE}) |" + " |" * len(roles)]
    for method in matrix.all_methods():
        marks = ["call" if matrix.may_call(r, method) else "—" for r in roles]
        rows.append(f"| `{method}` ({matrix.group_of(method)}) | " + " | ".join(marks) + " |")
    rows.append("| **Events** (`<source>.events`) |" + " |" * len(roles))
    for event in matrix.all_events():
        marks = []
        for r in roles:
            both = [
                w
                for w, ok in (("publish", matrix.may_publish(r, event)), ("subscribe", matrix.may_subscribe(r, event)))
                if ok
            ]
            marks.append(", ".join(both) or "—")
        rows.append(f"| `{event}` | " + " | ".join(marks) + " |")
    served = ["serves " + ", ".join(matrix.roles[r].serves) if matrix.roles[r].serves else "—" for r in roles]
    rows.append("| **RPC queues** | " + " | ".join(served) + " |")
    return "\n".join(head + rows) + "\n"


# -- applying ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Management:
    """RabbitMQ's management HTTP API, as an administrator."""

    url: str  # http://127.0.0.1:15672
    username: str
    password: str

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> requests.Response:
        """The answer; an error for a 4xx or 5xx, except a 404 to a DELETE or a GET (the caller
        reads it as "already gone" or "not there")."""
        response = requests.request(
            method, f"{self.url}/api/{path}", json=body, auth=(self.username, self.password), timeout=TIMEOUT
        )
        if response.status_code >= 400 and not (method in ("DELETE", "GET") and response.status_code == 404):
            raise RuntimeError(
                f"RabbitMQ management {method} /api/{path}: {response.status_code} {response.text[:200]}"
            )
        return response

    def get(self, path: str) -> Any:
        """The resource as JSON; None when there is none (404)."""
        response = self._call("GET", path)
        return None if response.status_code == 404 else response.json()

    def put(self, path: str, body: Mapping[str, Any]) -> None:
        self._call("PUT", path, body)

    def post(self, path: str, body: Mapping[str, Any]) -> None:
        self._call("POST", path, body)

    def delete(self, path: str) -> None:
        self._call("DELETE", path)

    def users(self) -> list[str]:
        return [u["name"] for u in self._call("GET", "users").json()]

    def create_vhost(self, vhost: str) -> None:
        """``vhost``, with every right on it for this administrator (a test's or a bench's own)."""
        v = quote(vhost, safe="")
        self.put(f"vhosts/{v}", {})
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        self.put(f"permissions/{v}/{quote(self.username, safe='')}", everything)

    def delete_vhost(self, vhost: str) -> None:
        self.delete(f"vhosts/{quote(vhost, safe='')}")

    def amqp_uri(self, vhost: str, host: str = "127.0.0.1", port: int = 5672) -> str:
        """This administrator's URI on ``vhost``: what a test harness, not a service, connects as."""
        return amqp_uri(self.username, self.password, vhost, host, port)


def operator_management(url: str = "http://127.0.0.1:15672") -> Management:
    """The management API as this machine's broker operator (see ``operator``)."""
    return Management(url, *operator())


def user_name(prefix: str, role: str) -> str:
    return f"{prefix}{role}"


def apply(
    matrix: Matrix, management: Management, vhost: str, prefix: str, passwords: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Make ``vhost``, its exchanges and queues (``shared.ops.broker_topology``) and one user per
    role (``<prefix><role>``), each with its permissions on ``vhost`` only and its topic permissions
    on every exchange of the suite. Returns each role's password: the given one, else a new random
    one."""
    v = quote(vhost, safe="")
    management.put(f"vhosts/{v}", {})
    broker_topology.declare(management, vhost)
    made: dict[str, str] = {}
    for role in matrix.roles:
        user = quote(user_name(prefix, role), safe="")
        password = (passwords or {}).get(role) or secrets.token_urlsafe(24)
        management.put(f"users/{user}", {"password": password, "tags": ""})
        p = matrix.permissions(role)
        management.put(f"permissions/{v}/{user}", {"configure": p.configure, "write": p.write, "read": p.read})
        # A topic permission left from an older matrix would widen the new one: start clean.
        management.delete(f"topic-permissions/{v}/{user}")
        for t in matrix.topic_permissions(role):
            management.put(f"topic-permissions/{v}/{user}", {"exchange": t.exchange, "write": t.write, "read": t.read})
        made[role] = password
    return made


def remove(matrix: Matrix, management: Management, prefix: str) -> None:
    for role in matrix.roles:
        management.delete(f"users/{quote(user_name(prefix, role), safe='')}")


def amqp_uri(user: str, password: str, vhost: str, host: str = "127.0.0.1", port: int = 5672) -> str:
    return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(vhost, safe='')}"


def read_operator(path: str) -> tuple[str, str]:
    """``(user, password)`` from an operator credential file (one line, ``user:password``)."""
    with open(path) as f:
        user, _, password = f.read().strip().partition(":")
    if not user or not password:
        raise SystemExit(f"{path}: expected one line 'user:password'")
    return user, password


def operator() -> tuple[str, str]:
    """The broker operator of this machine (``IMAGEHUB_BROKER_OPERATOR_FILE``, else ``OPERATOR_FILE``)."""
    return read_operator(os.environ.get("IMAGEHUB_BROKER_OPERATOR_FILE") or OPERATOR_FILE)


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def _existing_passwords(directory: Path, roles: Iterable[str]) -> dict[str, str]:
    """Passwords of an earlier ``apply`` (the URI files it wrote), so a second run changes none."""
    found = {}
    for role in roles:
        try:
            uri = (directory / f"{role}.uri").read_text().strip()
        except FileNotFoundError:
            continue
        userinfo = uri.split("://", 1)[1].split("@", 1)[0]
        found[role] = unquote(userinfo.partition(":")[2])
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.ops.broker_access", description=__doc__.split("\n")[0])
    parser.add_argument("--matrix", default=str(DEFAULT_MATRIX))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("render", help="print the matrix as a Markdown table")
    a = sub.add_parser("apply", help="make the vhost and its users; write each user's AMQP URI to SECRETS/<role>.uri")
    a.add_argument("--vhost", required=True)
    a.add_argument("--prefix", required=True, help="user names are <prefix><role>")
    a.add_argument("--secrets", required=True, help="directory for the URI files (mode 0600)")
    a.add_argument("--operator-file", required=True, help="the broker administrator's 'user:password'")
    a.add_argument("--management-url", default="http://127.0.0.1:15672")
    a.add_argument("--amqp-host", default="127.0.0.1")
    a.add_argument("--amqp-port", type=int, default=5672)
    args = parser.parse_args(argv)
    matrix = load(args.matrix)
    if args.command == "render":
        sys.stdout.write(render_markdown(matrix))
        return 0
    user, password = read_operator(args.operator_file)
    directory = Path(args.secrets)
    made = apply(
        matrix,
        Management(args.management_url, user, password),
        args.vhost,
        args.prefix,
        _existing_passwords(directory, matrix.roles),
    )
    for role, secret in made.items():
        uri = amqp_uri(user_name(args.prefix, role), secret, args.vhost, args.amqp_host, args.amqp_port)
        _write_secret(directory / f"{role}.uri", uri)
    print(f"broker users on vhost {args.vhost}: {', '.join(user_name(args.prefix, r) for r in made)}")
    return 0


# -- definitions ------------------------------------------------------------------------------------
# RabbitMQ's definitions file (``load_definitions``, ``rabbitmqctl import_definitions``, or
# POST /api/definitions): the vhost, the users with their password hashes, their permissions and
# topic permissions, for a broker that is configured before it starts (the Kubernetes dev overlay)
# rather than through the management API (``apply``).

HASHING_ALGORITHM = "rabbit_password_hashing_sha256"
SALT_BYTES = 4


def rabbit_password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's ``rabbit_password_hashing_sha256``: base64(salt + sha256(salt + password)), with a
    4-byte salt (random unless given)."""
    import base64
    import hashlib

    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if len(salt) != SALT_BYTES:
        raise ValueError(f"a RabbitMQ password salt is {SALT_BYTES} bytes, not {len(salt)}")
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def rabbit_password_matches(password_hash: str, password: str) -> bool:
    """Whether ``password_hash`` (``rabbit_password_hashing_sha256``) is the hash of ``password``."""
    import base64
    import binascii
    import hmac

    try:
        raw = base64.b64decode(password_hash, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) != SALT_BYTES + 32:
        return False
    return hmac.compare_digest(rabbit_password_hash(password, raw[:SALT_BYTES]), password_hash)


def definitions(
    matrix: Matrix,
    vhost: str,
    prefix: str,
    passwords: Mapping[str, str],
    known_hashes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The definitions that make ``vhost`` and one user per role (``<prefix><role>``, no tags),
    with the permissions and topic permissions ``apply`` gives. A hash in ``known_hashes`` (user
    name -> hash, e.g. from the file rendered last time) is kept when it still matches the
    password, so rendering again with the same passwords gives the same file; otherwise a new
    random salt."""
    missing = [r for r in matrix.roles if not passwords.get(r)]
    if missing:
        raise MatrixError(f"no password for the role(s) {', '.join(missing)}")
    users: list[dict[str, Any]] = []
    permissions: list[dict[str, str]] = []
    topic_permissions: list[dict[str, str]] = []
    for role in matrix.roles:
        user, password = user_name(prefix, role), passwords[role]
        known = (known_hashes or {}).get(user)
        password_hash = known if known and rabbit_password_matches(known, password) else rabbit_password_hash(password)
        users.append({"name": user, "password_hash": password_hash, "hashing_algorithm": HASHING_ALGORITHM, "tags": []})
        p = matrix.permissions(role)
        permissions.append({"user": user, "vhost": vhost, "configure": p.configure, "write": p.write, "read": p.read})
        for t in matrix.topic_permissions(role):
            topic_permissions.append(
                {"user": user, "vhost": vhost, "exchange": t.exchange, "write": t.write, "read": t.read}
            )
    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": permissions,
        "topic_permissions": topic_permissions,
        **broker_topology.declarations(vhost),
    }


def passwords_from_uris(uris: Iterable[str], vhost: str, prefix: str, matrix: Matrix) -> dict[str, str]:
    """Each role's password from AMQP URIs of its user (``amqp://<prefix><role>:<password>@host/<vhost>``)."""
    from urllib.parse import urlsplit

    found: dict[str, str] = {}
    for uri in uris:
        parts = urlsplit(uri)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        role = user[len(prefix) :] if user.startswith(prefix) else ""
        if role not in matrix.roles:
            raise MatrixError(f"{parts.scheme}://{user}@…: not a user <prefix><role> of prefix {prefix!r}")
        if unquote(parts.path.lstrip("/")) != vhost:
            raise MatrixError(f"{user}: URI names vhost {parts.path.lstrip('/')!r}, not {vhost!r}")
        if role in found and found[role] != password:
            raise MatrixError(f"{user}: two different passwords")
        found[role] = password
    return found


def _uris_of_env_file(path: str) -> list[str]:
    """The AMQP URIs of a ``KEY=VALUE`` file (a kustomize env file), comments and other keys aside."""
    uris = []
    with open(path) as f:
        for line in f:
            value = line.strip().partition("=")[2].strip()
            if not line.lstrip().startswith("#") and value.startswith(("amqp://", "amqps://")):
                uris.append(value)
    return uris


def definitions_main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(
        prog="python -m shared.ops.broker_access definitions",
        description="print RabbitMQ definitions (JSON) of the vhost, its users, permissions and topic permissions",
    )
    parser.add_argument("--matrix", default=str(DEFAULT_MATRIX))
    parser.add_argument("--vhost", required=True)
    parser.add_argument("--prefix", required=True, help="user names are <prefix><role>")
    parser.add_argument(
        "--uris", action="append", default=[], help="a KEY=amqp://user:password@host/vhost file (repeatable)"
    )
    parser.add_argument("--secrets", help="a directory of <role>.uri files, as `apply` writes them")
    parser.add_argument("--keep-hashes", help="an earlier definitions file: its hashes are kept where they match")
    parser.add_argument("--output", help="write here rather than to stdout")
    args = parser.parse_args(argv)
    matrix = load(args.matrix)
    uris = [u for path in args.uris for u in _uris_of_env_file(path)]
    if args.secrets:
        uris += [p.read_text().strip() for p in sorted(Path(args.secrets).glob("*.uri"))]
    known: dict[str, str] = {}
    if args.keep_hashes and os.path.exists(args.keep_hashes):
        with open(args.keep_hashes) as f:
            known = {u["name"]: u["password_hash"] for u in json.load(f).get("users", [])}
    try:
        passwords = passwords_from_uris(uris, args.vhost, args.prefix, matrix)
        document = definitions(matrix, args.vhost, args.prefix, passwords, known)
    except MatrixError as exc:
        raise SystemExit(f"definitions: {exc}") from exc
    text = json.dumps(document, indent=2) + "\n"
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """``main``, and ``definitions`` beside its sub-commands."""
    argv = sys.argv[1:] if argv is None else argv
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # main's own options come before the sub-command
        i += 1 if "=" in argv[i] else 2
    if i < len(argv) and argv[i] == "definitions":
        return definitions_main(argv[:i] + argv[i + 1 :])
    return main(argv)


if __name__ == "__main__":
    sys.exit(cli())
