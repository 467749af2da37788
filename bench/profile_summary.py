"""Where a nameko service's busy time goes, from a py-spy profile of it: the share of the samples
in which the process was not waiting in the eventlet hub, per part of the gateway's request path.

    py-spy record -p "$(cat var/run/gateway.pid)" -r 250 -d 40 -f raw -o gateway.txt   # while bench.gateway runs
    .venv/bin/python -m bench.profile_summary gateway.txt

py-spy's ``raw`` format is one collapsed stack per line (``frame;frame;… count``). eventlet runs
every green thread on one OS thread, so a sample shows the green thread that held the CPU; the
hub's ``epoll`` wait is idle time. A sample may fall in more than one row (a row is "the stack
passes through this"), so the rows need not add up to 100 %.
"""

import argparse
import re

IDLE = re.compile(r"^Hub\.(do_poll|wait) ")
# (row, what a stack must pass through (all of them), what it must not)
EDGE_WRITE = "handle_one_response.<locals>.write"
PARTS = [
    (
        "HTTP edge: reading and routing the request (eventlet.wsgi, werkzeug), outside the worker",
        ("handle_one_request",),
        ("_run_worker", EDGE_WRITE),
    ),
    ("HTTP edge: writing the answer to the client's socket", (EDGE_WRITE,), ()),
    ("session: token checked offline (JWT signature, claims), CSRF rules", ("authenticate (gateway",), ()),
    ("session: `auth.get_session` (once per GATEWAY_SESSION_RECHECK)", ("Web.developer", "Publisher.publish"), ()),
    ("query string through the schema (marshmallow)", ("load_query",), ()),
    (
        "RPC request: publishing to the broker (kombu connection and producer, publisher confirm)",
        ("Publisher.publish",),
        (),
    ),
    ("RPC reply: the reply consumer (reading frames, ack, decoding)", ("ConsumerMixin",), ("Publisher.publish",)),
    ("answer re-encoded as JSON (`json_answer`)", ("json_answer",), ()),
    # Across the rows above:
    ("all rows: time in a socket send (HTTP answers, publishes, acks)", ("GreenSocket._send_loop",), ()),
    ("RPC request, part: reading the broker's publisher confirm", ("Publisher.publish", "AbstractChannel.wait"), ()),
    ("RPC request, part: a kombu connection and producer per call", ("Publisher.publish", "get_producer"), ()),
]


def summarise(path):
    stacks = []
    with open(path) as f:
        for line in f:
            if line.strip():
                stack, count = line.rstrip().rsplit(" ", 1)
                stacks.append((stack.split(";"), int(count)))
    total = sum(n for _, n in stacks)
    busy_stacks = [(";".join(frames), n) for frames, n in stacks if not IDLE.match(frames[-1])]
    busy = sum(n for _, n in busy_stacks)
    rows = []
    for name, needles, without in PARTS:
        n = sum(c for s, c in busy_stacks if all(x in s for x in needles) and not any(w in s for w in without))
        rows.append((name, n))
    return total, busy, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="py-spy record -f raw output")
    args = parser.parse_args()
    total, busy, rows = summarise(args.profile)
    print(f"{total} samples, {busy} busy ({100 * busy / total:.0f} %), the rest waiting in the hub.\n")
    print("| part of the request path | share of busy samples |")
    print("| --- | --- |")
    for name, n in rows:
        print(f"| {name} | {100 * n / busy:.1f} % |")


if __name__ == "__main__":
    main()
