"""The README walk-through: push with the docker CLI, sign in and browse and delete with the
imagehub CLI, which calls as the ``admin`` broker user with the signed-in person's identity."""

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

from nameko.standalone.events import event_dispatcher

from shared.contracts.events import IMAGE_PUSHED, WEBHOOK, ImagePushed, make_event
from tests.e2e.test_push_to_catalog import wait_for_tag
from tests.support import DOCKER_MANIFEST_V2, push_image, wait_until

IMAGEHUB = os.path.join(os.path.dirname(sys.executable), "imagehub")


def run(stack, args, session_file, input=None, check=True):
    env = dict(os.environ, AMQP_URI=stack.role_uri("admin"), COLUMNS="200", IMAGEHUB_SESSION_FILE=str(session_file))
    env.pop("IMAGEHUB_TENANT", None)
    result = subprocess.run([IMAGEHUB, *args], capture_output=True, text=True, env=env, timeout=60, input=input)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def imagehub(stack, *args, check=True, account=None):
    """The imagehub CLI as ``account``: by default the developer of the ``--tenant`` it names, else
    the platform admin; signed in (``imagehub login``) once per account and stack."""
    if account is None:
        tenant = args[args.index("--tenant") + 1] if "--tenant" in args else None
        account = stack.accounts.get(tenant) or stack.admin
    session_file = os.path.join(stack.workdir, "cli-sessions", f"{account.name}.json")
    if not os.path.exists(session_file):
        login(stack, account, session_file)
    return run(stack, args, session_file, check=check)


def login(stack, account, session_file):
    args = ["login", "--user", account.name, "--password-stdin"]
    return run(stack, args, session_file, input=f"{account.password}\n")


class TestSigningIn:
    def test_without_signing_in_the_cli_gets_no_answer(self, stack, tenant, tmp_path):
        refused = run(stack, ["--tenant", tenant, "repos"], tmp_path / "sessions.json", check=False)
        assert refused.returncode == 1
        assert refused.stderr == (
            "error: a call by admin needs the identity of the person it acts for: sign in first\n"
            "hint: sign in with `imagehub login`\n"
        )

    def test_a_wrong_password_is_refused_and_a_right_one_signs_in(self, stack, tenant, tmp_path):
        account, sessions = stack.accounts[tenant], tmp_path / "sessions.json"
        args = ["login", "--user", account.name, "--password-stdin"]
        wrong = run(stack, args, sessions, input="nope\n", check=False)
        assert wrong.returncode == 1 and wrong.stderr.startswith("error: incorrect username or password")
        signed_in = login(stack, account, sessions).stdout
        assert signed_in.startswith(f"signed in as {account.name} (tenant {tenant}), until ")
        assert run(stack, ["whoami"], sessions).stdout.startswith(f"{account.name} (tenant {tenant})")
        assert run(stack, ["repos"], sessions).stdout == f"no repositories for tenant {tenant}\n"  # their own
        assert run(stack, ["logout"], sessions).stdout == "signed out\n"
        after = run(stack, ["--tenant", tenant, "repos"], sessions, check=False)
        assert after.returncode == 1 and after.stderr.endswith("hint: sign in with `imagehub login`\n")


class TestWalkThrough:
    def test_push_then_browse_and_delete_with_the_cli(self, stack, docker_cli, tenant):
        repository = f"{tenant}/nginx"
        digest = docker_cli.push(docker_cli.build(repository, "v1"))
        wait_for_tag(stack, tenant, repository, "v1", digest)

        # Signed in as the tenant's developer, the CLI acts in the developer's own tenant.
        repos = imagehub(stack, "repos", account=stack.accounts[tenant]).stdout
        assert repository in repos

        tags = imagehub(stack, "--tenant", tenant, "tags", repository).stdout
        assert "v1" in tags
        assert digest[:19] in tags  # sha256: + 12 hex digits

        detail = json.loads(imagehub(stack, "--tenant", tenant, "--json", "tag", f"{repository}:v1").stdout)
        assert detail["digest"] == digest
        assert detail["pull_command"] == f"docker pull {stack.registry.host}/{repository}:v1"

        shown = imagehub(stack, "--tenant", tenant, "tag", f"{repository}:v1").stdout
        assert digest in shown

        denied = imagehub(stack, "--tenant", "other", "tags", repository, check=False, account=stack.accounts[tenant])
        assert denied.returncode == 1
        account = stack.accounts[tenant].name
        assert denied.stderr == f"error: {account}@{tenant} may not act in tenant 'other'\n", denied.stderr

        deleted = imagehub(stack, "--tenant", tenant, "delete", f"{repository}:v1", "--yes")
        assert stack.registry.tags(repository) == []
        assert "v1" in deleted.stdout
        missing = imagehub(stack, "--tenant", tenant, "tag", f"{repository}:v1", check=False)
        assert missing.returncode == 1

    def test_public_library_lists_a_pushed_library_image_with_its_curated_text(self, stack, docker_cli):
        docker_cli.login(*stack.admin)  # only a platform admin may push to library/
        digest = docker_cli.push(docker_cli.build("library/busybox", "latest"))
        wait_for_tag(stack, None, "library/busybox", "latest", digest)

        listing = json.loads(imagehub(stack, "--json", "library").stdout)
        busybox = [r for r in listing["items"] if r["repository"] == "library/busybox"]
        assert len(busybox) == 1
        assert busybox[0]["description"]  # from the curated library file
        assert busybox[0]["pull_command"] == f"docker pull {stack.registry.host}/library/busybox:latest"
        table = imagehub(stack, "library").stdout
        assert "busybox" in table


class TestDeadLetters:
    """An event the catalog cannot use is parked, filed by the desk, shown to the admin only, and
    handled once when replayed after its cause is fixed — on the running suite, through the CLI."""

    def test_parked_shown_and_replayed_once_after_the_cause_is_fixed(self, stack, tenant):
        session = stack.session(tenant)
        pushed = push_image(stack.registry.url, f"{tenant}/a", "v1", content=tenant.encode(), session=session)
        wait_for_tag(stack, tenant, f"{tenant}/a", "v1", pushed["digest"])
        # What a registry would say of a push of that manifest into <tenant>/b, which does not hold
        # it yet: the catalog cannot fetch it there, and retrying cannot help.
        event = make_event(
            ImagePushed,
            namespace=tenant,
            repository=f"{tenant}/b",
            tag="v1",
            digest=pushed["digest"],
            media_type=DOCKER_MANIFEST_V2,
            source_event_id=str(uuid.uuid4()),
            pushed_at=datetime.now(UTC).isoformat(),
        )
        event_dispatcher({"AMQP_URI": stack.amqp_uri})(WEBHOOK, IMAGE_PUSHED, event)

        def parked():
            letters = json.loads(imagehub(stack, "--json", "dead-letters", "list", "--status", "parked").stdout)
            return [letter for letter in letters["items"] if letter["event_id"] == event["event_id"]]

        [letter] = wait_until(parked, timeout=20, what="the dead letter")
        assert (letter["queue"], letter["reason"], letter["deaths"]) == (
            "evt-webhook-image_pushed--catalog.handle_image_pushed",
            "rejected",
            1,
        )
        assert letter["error"].startswith("NotInRegistry:")
        shown = imagehub(stack, "dead-letters", "show", str(letter["id"])).stdout
        assert event["event_id"] in shown and "NotInRegistry" in shown
        refused = imagehub(stack, "--tenant", tenant, "dead-letters", "list", check=False)
        assert refused.returncode == 1 and "is not a platform admin" in refused.stderr

        # The cause fixed: <tenant>/b now holds the manifest. Replayed twice, handled once.
        push_image(stack.registry.url, f"{tenant}/b", "other", content=tenant.encode(), session=session)
        for _ in range(2):
            out = imagehub(stack, "dead-letters", "replay", str(letter["id"])).stdout
            assert out.startswith(f"Replayed dead letter {letter['id']} ")
        wait_for_tag(stack, tenant, f"{tenant}/b", "v1", pushed["digest"])
        history = stack.rpc("catalog", "list_tag_history", tenant, f"{tenant}/b", "v1")["items"]
        replayed = json.loads(imagehub(stack, "--json", "dead-letters", "show", str(letter["id"])).stdout)
        print(
            f"replays={replayed['replays']} deaths={replayed['deaths']} "
            f"history_rows_for_event={sum(1 for h in history if h['event_id'] == event['event_id'])}"
        )
        assert [h["event_id"] for h in history] == [event["event_id"]]
        assert (replayed["status"], replayed["replays"], replayed["deaths"]) == ("replayed", 2, 1)
