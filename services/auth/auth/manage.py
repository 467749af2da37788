"""Bootstrap accounts straight in the auth database, for `make up` and operators:

    python -m auth.manage ensure-admin NAME --password-file FILE
    python -m auth.manage ensure-account NAME --tenant TENANT --password-file FILE
    python -m auth.manage ensure-robot NAME (--tenant TENANT | --platform) [--actions pull,delete]
                                       [--catalog] [--namespace NS ...] --secret-file FILE

Each is idempotent and keeps FILE (mode 0600) the source of truth: a missing or empty FILE gets a
random secret; an account that does not exist is made with FILE's secret; one whose secret is not
FILE's gets FILE's (a robot: a new random one, written to FILE). A robot's actions, catalog
access and namespaces become what the command line says, on an existing robot too (a platform
robot without ``--namespace`` acts in every namespace). The account's name is printed on stdout
(a robot's is ``<tenant>+NAME`` or ``_platform+NAME``), for a script to pick up. A tenant named
with ``--tenant`` is made if it does not exist.

Runs where the service runs (same config.yml, same AUTH_DB_URL), after ``python -m auth.migrate``;
the running service needs no restart. Everything else goes through the RPC API.
"""

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from auth import accounts
from auth.grants import REPOSITORY_ACTIONS, ROBOT, USER
from auth.migrate import DB_URI_KEY, DEFAULT_CONFIG, load_config
from auth.models import Account, Tenant
from auth.passwords import MIN_PASSWORD_LENGTH, Hasher
from auth.schemas import NewAccount, NewRobot, load_args
from auth.settings import hash_parameters
from shared.runtime import db


def read_secret(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def write_secret(path: str, secret: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(temporary, path)


def _ensure_tenant(session: Session, tenant_id: str | None, now: datetime) -> None:
    if tenant_id is not None and session.get(Tenant, tenant_id) is None:
        accounts.create_tenant(session, tenant_id, "", now)


def ensure_user(
    session: Session,
    hasher: Hasher,
    name: str,
    tenant_id: str | None,
    is_admin: bool,
    password_file: str,
    now: datetime,
) -> Account:
    """The account ``name`` with the password in ``password_file`` (made if missing)."""
    password = read_secret(password_file)
    if len(password) < MIN_PASSWORD_LENGTH:
        password = secrets.token_urlsafe(18)
        write_secret(password_file, password)
    load_args(NewAccount, name=name, password=password, tenant_id=tenant_id, is_admin=is_admin)
    _ensure_tenant(session, tenant_id, now)
    account = accounts.find_account(session, name)
    if account is None:
        account = accounts.create_account(session, hasher, name, password, tenant_id, is_admin, False, "", now)
    elif account.kind != USER:
        raise SystemExit(f"{name!r} exists and is a robot")
    elif not hasher.verify(account.password_hash, password):
        accounts.set_password(session, hasher, name, password, now)
    return account


def ensure_robot(
    session: Session,
    hasher: Hasher,
    name: str,
    tenant_id: str | None,
    actions: Sequence[str] | None,
    catalog: bool,
    secret_file: str,
    now: datetime,
    namespaces: Sequence[str] | None = None,
) -> Account:
    """The robot ``<tenant>+name`` whose secret is in ``secret_file``, doing ``actions`` (in
    ``namespaces`` only, if given: platform robots)."""
    load_args(NewRobot, tenant_id=tenant_id, name=name, actions=actions, catalog=catalog, namespaces=namespaces)
    _ensure_tenant(session, tenant_id, now)
    full_name = accounts.robot_account_name(tenant_id, name)
    account = accounts.find_account(session, full_name)
    if account is None:
        account, secret = accounts.create_robot(
            session, hasher, tenant_id, name, actions, catalog, "", now, namespaces=namespaces
        )
        write_secret(secret_file, secret)
        return account
    if account.kind != ROBOT:
        raise SystemExit(f"{full_name!r} exists and is not a robot")
    if not hasher.verify(account.password_hash, read_secret(secret_file)):
        account, secret = accounts.rotate_robot_secret(session, hasher, full_name, now)
        write_secret(secret_file, secret)
    return accounts.set_robot_rights(session, full_name, actions, catalog, namespaces, now)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make sure an account exists, with the secret kept in a file.")
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the service's config.yml (default: %(default)s)")
    commands = parser.add_subparsers(dest="command", required=True)
    admin = commands.add_parser("ensure-admin", help="a platform admin")
    admin.add_argument("name")
    admin.add_argument("--password-file", required=True)
    user = commands.add_parser("ensure-account", help="a developer account of a tenant")
    user.add_argument("name")
    user.add_argument("--tenant", required=True)
    user.add_argument("--password-file", required=True)
    robot = commands.add_parser("ensure-robot", help="a robot of a tenant, or a platform robot")
    robot.add_argument("name")
    whose = robot.add_mutually_exclusive_group(required=True)
    whose.add_argument("--tenant")
    whose.add_argument("--platform", action="store_true", help="a platform robot: every namespace, or --namespace's")
    robot.add_argument("--actions", default="pull", help="comma-separated: pull, push, delete (default: pull)")
    robot.add_argument("--catalog", action="store_true", help="may list _catalog (platform robots only)")
    robot.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="act in this namespace only (repeatable; platform robots only; default: every namespace)",
    )
    robot.add_argument("--secret-file", required=True)
    args = parser.parse_args(argv)

    config = load_config(args.config)
    params = hash_parameters(config)
    hasher = Hasher(
        time_cost=params["hash_time_cost"],
        memory_cost=params["hash_memory_kib"],
        parallelism=params["hash_parallelism"],
    )
    engine = db.create_engine(config["DB_URIS"][DB_URI_KEY])
    now = datetime.now(UTC)
    try:
        with Session(engine) as session, session.begin():
            if args.command == "ensure-robot":
                actions = [a.strip() for a in args.actions.split(",") if a.strip()]
                unknown = sorted(set(actions) - set(REPOSITORY_ACTIONS))
                if unknown:
                    raise SystemExit(f"unknown action(s) {', '.join(unknown)}: use pull, push, delete")
                account = ensure_robot(
                    session,
                    hasher,
                    args.name,
                    None if args.platform else args.tenant,
                    actions,
                    args.catalog,
                    args.secret_file,
                    now,
                    namespaces=args.namespaces,
                )
            else:
                account = ensure_user(
                    session,
                    hasher,
                    args.name,
                    getattr(args, "tenant", None),
                    args.command == "ensure-admin",
                    args.password_file,
                    now,
                )
            name = account.name
    except Exception as exc:  # the shared errors' messages say what is wrong; no traceback
        if isinstance(exc, SystemExit):
            raise
        raise SystemExit(f"auth.manage {args.command}: {type(exc).__name__}: {exc}") from None
    finally:
        engine.dispose()
    print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
