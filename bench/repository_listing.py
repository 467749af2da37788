"""A tenant's repository listing on PostgreSQL with a million tags, before and after ANALYZE.

The catalogue's read path (``catalog.browsing.list_repositories``, what the RPC runs inside its
session) timed directly on the database, without a broker in between: where the time of a page
goes when the planner's statistics lag behind the data (right after a bulk load or a large
resync) and once they do not.

It creates a throw-away database on the PostgreSQL server of ``--db-url`` (the role needs
CREATEDB), builds it with the catalog's migrations, loads TENANTS x REPOS repositories of TAGS
tags each (one manifest per tag) with ``generate_series``, and times the first and last page of
one tenant's repositories and a page with a query, each ROUNDS times (median and max), first
without statistics, then after ANALYZE. The database is dropped at the end.

    .venv/bin/python -m bench.repository_listing \\
        --db-url "postgresql://imagehub:$(cat /etc/imagehub/postgres-imagehub)@127.0.0.1:5432/imagehub"
"""

import argparse
import statistics
import sys
import time
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Session

from catalog import browsing
from catalog.migrate import upgrade
from shared.runtime import db

# TENANTS x REPOS repositories of TAGS tags each, one manifest per tag, in bulk SQL (no pipeline):
# tenant ``t001`` …, repository ``repo00001`` …, tag ``v1`` … (``v1`` the newest push).
LOAD = {
    "postgresql": [
        """INSERT INTO repositories (namespace, name, is_public, is_ownbase, description, overview,
                                     created_at, updated_at)
           SELECT 't' || lpad(t::text, 3, '0'), 'repo' || lpad(r::text, 5, '0'), false, false, '', '', now(), now()
           FROM generate_series(1, :tenants) t, generate_series(1, :repos) r""",
        """INSERT INTO manifests (repository_id, digest, media_type, manifest_size, size, image_id, created, creator,
                                  architecture, os, variant, layers, platforms, indexed_at)
           SELECT r.id, 'sha256:' || md5(r.id::text || '-' || g::text) || md5(g::text),
                  'application/vnd.docker.distribution.manifest.v2+json', 500, 1000, 'sha256:x', now(), 'dev',
                  'amd64', 'linux', null, '[]'::json, null, now()
           FROM repositories r, generate_series(1, :tags) g""",
        """INSERT INTO tags (repository_id, name, manifest_id, pushed_at, updated_at)
           SELECT m.repository_id, 'v' || row_number() OVER (PARTITION BY m.repository_id ORDER BY m.id), m.id,
                  now() - (m.id || ' seconds')::interval, now()
           FROM manifests m""",
    ],
    # SQLite has no generate_series (outside its shell): recursive CTEs count instead.
    "sqlite": [
        """WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < :tenants),
                          r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < :repos)
           INSERT INTO repositories (namespace, name, is_public, is_ownbase, description, overview,
                                     created_at, updated_at)
           SELECT 't' || substr('000' || t.n, -3), 'repo' || substr('00000' || r.n, -5), 0, 0, '', '',
                  datetime('now'), datetime('now')
           FROM t, r ORDER BY t.n, r.n""",
        """WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :tags)
           INSERT INTO manifests (repository_id, digest, media_type, manifest_size, size, image_id, created, creator,
                                  architecture, os, variant, layers, platforms, indexed_at)
           SELECT r.id, printf('sha256:%032x%032x', r.id, g.n),
                  'application/vnd.docker.distribution.manifest.v2+json', 500, 1000, 'sha256:x', datetime('now'),
                  'dev', 'amd64', 'linux', null, '[]', null, datetime('now')
           FROM repositories r, g ORDER BY r.id, g.n""",
        """INSERT INTO tags (repository_id, name, manifest_id, pushed_at, updated_at)
           SELECT m.repository_id, 'v' || row_number() OVER (PARTITION BY m.repository_id ORDER BY m.id), m.id,
                  datetime('now', '-' || m.id || ' seconds'), datetime('now')
           FROM manifests m""",
    ],
}
TABLES = ("repositories", "manifests", "tags")


def load(url, tenants, repos, tags):
    """Fill the migrated, empty catalogue at ``url``: ``tenants`` x ``repos`` repositories of
    ``tags`` tags each. Returns the number of tags."""
    engine = db.create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in LOAD[engine.dialect.name]:
                connection.execute(sa.text(statement), {"tenants": tenants, "repos": repos, "tags": tags})
            return connection.scalar(sa.text("SELECT count(*) FROM tags"))
    finally:
        engine.dispose()


def analyze(url):
    """Give the planner its statistics, as autovacuum would some time after a bulk load."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            for table in TABLES if engine.dialect.name == "postgresql" else ("",):
                connection.execute(sa.text(f"ANALYZE {table}"))
    finally:
        engine.dispose()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-url", required=True, help="a PostgreSQL server's URL (any database on it)")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--repos", type=int, default=1000, help="repositories per tenant")
    parser.add_argument("--tags", type=int, default=10, help="tags per repository")
    parser.add_argument("--rounds", type=int, default=50)
    return parser.parse_args(argv)


def timed(call, rounds):
    call()  # the first reads from disk into the server's cache
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def measure(url, args, label):
    engine = db.create_engine(url)
    tenant, last = "t050" if args.tenants >= 50 else "t001", max(1, -(-args.repos // 50))
    try:
        with Session(engine) as session:
            for what, call in (
                ("first page", lambda: browsing.list_repositories(session, tenant, None, 1, 50, None, "r")),
                ("last page", lambda: browsing.list_repositories(session, tenant, None, last, 50, None, "r")),
                ("with a query", lambda: browsing.list_repositories(session, tenant, "repo009", 1, 50, None, "r")),
            ):
                median, worst = timed(call, args.rounds)
                print(f"{label:18} {what:13} median {median:7.2f} ms   max {worst:7.2f} ms", flush=True)
    finally:
        engine.dispose()


def main(argv=None):
    args = parse_args(argv)
    server = sa.engine.make_url(args.db_url)
    name = f"imagehub_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    url = server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url)
        started = time.monotonic()
        tags = load(url, args.tenants, args.repos, args.tags)
        print(f"loaded {tags} tags in {args.tenants * args.repos} repositories in {time.monotonic() - started:.1f} s")
        measure(url, args, "before ANALYZE")
        analyze(url)
        measure(url, args, "after ANALYZE")
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
