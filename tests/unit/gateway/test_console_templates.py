"""The console's templates rendered with realistic context: what a hostile name, description or
overview becomes, where a refusal is shown, and that no page needs an inline script or style."""

import re

import pytest

from gateway import console, templating
from tests.unit.gateway.conftest import make_developer

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
DIGEST = "sha256:" + "ab" * 32


def render(template, status=200, **context):
    context.setdefault("developer", make_developer())
    context.setdefault("registry_host", "registry.example:5000")
    response = console.page(template, status, **context)
    assert response.status_code == status
    assert response.mimetype == "text/html"
    return response.get_data(as_text=True)


def repository(**changes):
    found = {
        "repository": "acme/app",
        "namespace": "acme",
        "name": "app",
        "is_public": False,
        "is_ownbase": False,
        "description": "The app",
        "overview": "# App\n\nRun it.",
        "tag_count": 2,
        "latest_tag": "v2",
        "pull_command": "docker pull registry.example:5000/acme/app:v2",
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-02T10:30:00+00:00",
    }
    found.update(changes)
    return found


def tag(**changes):
    found = {
        "repository": "acme/app",
        "tag": "v1",
        "digest": DIGEST,
        "image_id": "sha256:" + "cd" * 32,
        "size": 3 * 1024 * 1024,
        "created": "2026-01-01T08:00:00+00:00",
        "creator": "alice",
        "pushed_at": "2026-01-01T09:00:00+00:00",
        "os": "linux",
        "architecture": "amd64",
        "variant": None,
        "pull_command": "docker pull registry.example:5000/acme/app:v1",
        "layers": ["sha256:" + "11" * 32, "sha256:" + "22" * 32],
        "platforms": None,
        "other_tags": ["stable"],
    }
    found.update(changes)
    return found


def deployment(**changes):
    found = {
        "id": "d-1",
        "name": "web",
        "pool": "default",
        "image": "acme/app:v1",
        "repository": "acme/app",
        "tag": "v1",
        "revision": 2,
        "serving_revision": 1,
        "serving_image": "acme/app:v0",
        "replicas": 2,
        "status": "starting",
        "reason": None,
        "auto_deploy": {"policy": "never"},
        "instances": [
            {"host": "host-1", "address": "192.0.2.5:31000", "state": "running", "revision": 2, "reason": None},
            {"host": "host-2", "address": None, "state": "starting", "revision": 2, "reason": None},
        ],
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    found.update(changes)
    return found


def revisions():
    return [
        {"revision": 2, "image": "acme/app:v1", "tag": "v1", "status": "starting", "trigger": "update", "reason": None},
        {
            "revision": 1,
            "image": "acme/app:v0",
            "tag": "v0",
            "status": "running",
            "trigger": "create",
            "reason": "health check passed",
        },
    ]


def pages(last=1):
    return {"page": 1, "last": last, "total": 1, "prev": None, "next": "/?page=2" if last > 1 else None}


def every_page():
    """Each template with a realistic context (what the console passes it)."""
    deploy_form = console.deploy_form_defaults("acme/app:v1", "app")
    yield "signin.html", dict(developer=None, next="/", name="", nonce="n", errors={})
    yield "library.html", dict(repositories=[repository(namespace="library", name="busybox")], query="", pages=pages())
    yield "library_image.html", dict(repository=repository(), tags=[tag()], pages=pages(), writable=False)
    yield "repositories.html", dict(repositories=[repository()], query="", ownbase="", pages=pages())
    yield "repository.html", dict(repository=repository(), tags=[tag()], pages=pages(), writable=True)
    yield "tag.html", dict(namespace="acme", name="app", tag=tag(), writable=True)
    yield "tag_delete.html", dict(namespace="acme", name="app", tag="v1", siblings=["stable"])
    yield "deploy.html", dict(form=deploy_form, errors={}, pools=["default"], restart_policies=console.RESTART_POLICIES)
    yield "deployments.html", dict(deployments=[deployment()], pages=pages())
    yield "deployment.html", dict(deployment=deployment(), revisions=revisions(), tags=["v0", "v1"], errors={})
    yield "deployment_delete.html", dict(deployment=deployment())
    yield "how_to_push.html", dict(ownbase_suffix="_ownbase", quoted=str)
    problem = {"status": 404, "title": "Not Found", "detail": "no such tag", "request_id": "r1"}
    yield "error.html", dict(developer=None, problem=problem)


@pytest.mark.parametrize(("template", "context"), list(every_page()), ids=[t for t, _ in every_page()])
def test_no_page_needs_an_inline_script_or_style(template, context):
    html = render(template, **context)
    assert "<script>" not in html and "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)
    assert '<script src="/static/console.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/console.css">' in html


@pytest.mark.parametrize(("template", "context"), list(every_page()), ids=[t for t, _ in every_page()])
def test_every_form_field_has_a_label_and_every_post_a_csrf_token(template, context):
    html = render(template, **context)
    ids = re.findall(r'<(?:input|select|textarea)(?![^>]*type="(?:hidden|submit)")[^>]*\sid="([^"]+)"', html)
    fields = re.findall(r'<(?:input|select|textarea)(?![^>]*type="(?:hidden|submit)")[^>]*>', html)
    assert len(ids) == len(fields)  # every visible field has an id ...
    for field_id in ids:
        assert f'<label for="{field_id}">' in html  # ... and a label for it
    for form in re.findall(r'<form method="post".*?</form>', html, re.S):
        if 'action="/signin"' in form:
            assert 'name="signin_nonce"' in form
        else:
            assert '<input type="hidden" name="csrf_token" value="csrf-123">' in form


def test_the_header_names_the_account_and_tenant_and_signs_out_with_the_csrf_token():
    html = render("how_to_push.html", ownbase_suffix="_ownbase", quoted=str)
    assert '<strong data-testid="account">alice</strong>' in html
    assert '<strong data-testid="tenant">acme</strong>' in html
    assert re.search(r'<form method="post" action="/signout" class="inline">\s*<input type="hidden" name="csrf_token" '
                     r'value="csrf-123">', html)  # fmt: skip


def test_hostile_names_and_descriptions_are_escaped_everywhere():
    evil = repository(name=HOSTILE, description=HOSTILE, latest_tag=HOSTILE, pull_command=HOSTILE)
    for template, context in [
        ("library.html", dict(repositories=[evil], query=HOSTILE, pages=pages())),
        ("repositories.html", dict(repositories=[evil], query=HOSTILE, ownbase="", pages=pages())),
        ("library_image.html", dict(repository=evil, tags=[tag(tag=HOSTILE, creator=HOSTILE)], pages=pages())),
        ("tag.html", dict(namespace="acme", name=HOSTILE, tag=tag(tag=HOSTILE, other_tags=[HOSTILE]), writable=True)),
        ("tag_delete.html", dict(namespace="acme", name="app", tag=HOSTILE, siblings=[HOSTILE])),
        (
            "deployment.html",
            dict(deployment=deployment(name=HOSTILE, reason=HOSTILE), revisions=[], tags=[], errors={}),
        ),
    ]:
        html = render(template, **context)
        assert "<script>alert" not in html, template
        assert "<img src=x" not in html, template
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html, template


def test_links_to_a_hostile_name_are_url_encoded():
    html = render("repositories.html", repositories=[repository(name='a"b?c#d')], query="", ownbase="", pages=pages())
    assert 'href="/repositories/acme/a%22b%3Fc%23d"' in html


def test_the_overview_is_markdown_without_scripts_or_javascript_links():
    overview = (
        "# Title\n\n<script>alert(1)</script>\n\n[click](javascript:alert(1)) [ok](https://example.com)\n\n"
        '<a href="javascript:alert(2)" onclick="x()">raw</a>\n\n![img](javascript:alert(3))'
    )
    html = render("library_image.html", repository=repository(overview=overview), tags=[], pages=pages())
    body = re.search(r'data-testid="repository-overview">(.*?)</div>', html, re.S).group(1)
    assert "<h1>Title</h1>" in body
    assert "<script" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # shown as text
    assert not re.search(r'<[a-z][^<>]*\s(href|src)="javascript', body, re.I)  # in a tag, not shown as text
    assert not re.search(r"<[^>]*\sonclick=", body)
    assert len(re.findall(r"<a ", body)) == 1  # only the https link is a link
    assert '<a href="https://example.com" rel="noopener noreferrer nofollow">ok</a>' in body


def test_the_library_shows_name_description_latest_and_pull_command_with_a_copy_button():
    item = repository(namespace="library", name="busybox", description="Tiny", latest_tag="1.36")
    item["pull_command"] = "docker pull registry.example:5000/library/busybox:1.36"
    html = render("library.html", repositories=[item], query="busy", pages=pages())
    row = re.search(r'<tr data-testid="library-item">(.*?)</tr>', html, re.S).group(1)
    assert '<a href="/library/busybox">busybox</a>' in row
    assert '<td class="wrap">Tiny</td>' in row and "<td>1.36</td>" in row
    assert (
        '<code id="pull-1" data-testid="pull-command">docker pull registry.example:5000/library/busybox:1.36</code>'
        in row
    )
    assert 'data-copy="pull-1" data-testid="copy-button" hidden>' in row
    assert 'value="busy" data-testid="search-input"' in html


def test_an_empty_search_says_nothing_matched():
    html = render("library.html", repositories=[], query="zzz", pages=pages())
    assert "No image matches “zzz”." in html
    assert 'data-testid="library-list"' not in html


def test_versions_link_to_their_detail_and_to_deploy():
    html = render("repository.html", repository=repository(), tags=[tag()], pages=pages(), writable=True)
    assert '<div class="table-scroll" tabindex="0" role="region" aria-label="Versions">' in html  # scrolls by keyboard
    row = re.search(r'<tr data-testid="tag-item">(.*?)</tr>', html, re.S).group(1)
    assert '<a href="/repositories/acme/app/tags/v1">v1</a>' in row
    assert '<code title="' + DIGEST + '">sha256:abababababab</code>' in row
    assert "<td>3.0 MiB</td>" in row
    assert 'href="/deploy?image=acme/app%3Av1" data-testid="deploy-link"' in row


def test_the_pager_links_only_where_there_is_a_page():
    html = render("repository.html", repository=repository(), tags=[tag()], pages=pages(last=3), writable=True)
    assert 'data-testid="pager"' in html and 'href="/?page=2" rel="next"' in html
    assert 'data-testid="pager-prev"' not in html
    assert 'data-testid="pager"' not in render("repository.html", repository=repository(), tags=[tag()], pages=pages())


def test_a_version_shows_its_details_and_delete_only_to_its_tenant():
    html = render("tag.html", namespace="acme", name="app", tag=tag(), writable=True)
    assert '<code data-testid="image-id">sha256:' + "cd" * 32 + "</code>" in html
    assert f'<code data-testid="digest">{DIGEST}</code>' in html
    assert "<dd>linux/amd64</dd>" in " ".join(html.split()) or "linux/amd64" in html
    assert '<a href="/repositories/acme/app/tags/stable">stable</a>' in html
    assert 'href="/repositories/acme/app/tags/v1/delete" data-testid="delete-link"' in html
    assert "Layers (2)" in html
    library = render("tag.html", namespace="library", name="busybox", tag=tag(repository="library/busybox"))
    assert 'data-testid="delete-link"' not in library
    assert 'href="/deploy?image=library/busybox%3Av1"' in library


def test_deleting_a_version_names_the_sibling_tags_that_go_with_it_and_forces_only_then():
    html = render("tag_delete.html", namespace="acme", name="app", tag="v1", siblings=["stable", "latest"])
    siblings = re.search(r'data-testid="sibling-tags">(.*?)</ul>', html, re.S).group(1)
    assert re.findall(r"<code>(.*?)</code>", siblings) == ["stable", "latest"]
    assert '<input type="hidden" name="force" value="true">' in html
    assert "Delete v1 and 2 other tags" in html
    alone = render("tag_delete.html", namespace="acme", name="app", tag="v1", siblings=[])
    assert 'name="force"' not in alone and 'data-testid="sibling-tags"' not in alone


def _right_after(html, field_id, testid):
    """The error list is the next element after the field (or its help text)."""
    tail = html.split(f'id="{field_id}"', 1)[1]
    following = re.search(r"<(ul|label|fieldset|div)\b[^>]*>", tail).group(0)
    return f'data-testid="{testid}"' in following


def test_deploy_refusals_are_shown_next_to_their_fields():
    form = console.deploy_form_defaults("acme/app:v1", "app")
    errors = console.errors_by_field(
        [
            {"field": "name", "message": "must be a DNS label, got 'Bad <b>'"},
            {"field": "ports[0].host_port", "message": "must be a whole number"},
            {"field": "memory", "message": "must be a size"},
            {"field": "health.path", "message": "must start with '/'"},
            {"field": "", "message": "the pool is full"},
        ],
        console.DEPLOY_FIELDS,
    )
    html = render("deploy.html", 400, form=form, errors=errors, pools=[], restart_policies=console.RESTART_POLICIES)
    assert _right_after(html, "name", "field-error-name")
    assert _right_after(html, "ports", "field-error-ports")
    assert _right_after(html, "memory", "field-error-memory")
    assert _right_after(html, "health_path", "field-error-health")
    assert not _right_after(html, "cpu", "field-error-cpu")
    assert "must be a DNS label, got &#39;Bad &lt;b&gt;&#39;" in html
    assert 'id="memory" name="memory" type="text" placeholder="e.g. 256m" value="" aria-invalid="true" ' \
           'aria-describedby="memory-error"' in html  # fmt: skip
    assert re.search(r'data-testid="form-error">\s*<ul><li>the pool is full</li>', html)


def test_the_deploy_form_keeps_what_was_typed():
    form = console.deploy_form_defaults("acme/app:v1", "app")
    form.update(env='A="<b>"', pool="edge", restart_policy="always", health_type="http")
    html = render(
        "deploy.html", 400, form=form, errors={}, pools=["default", "edge"], restart_policies=console.RESTART_POLICIES
    )
    assert "A=&#34;&lt;b&gt;&#34;</textarea>" in html
    assert '<option value="edge" selected>edge</option>' in html
    assert '<option value="always" selected>always</option>' in html
    assert '<option value="http" selected>' in html


def test_a_deployment_shows_status_instances_revisions_and_its_forms():
    html = render("deployment.html", deployment=deployment(), revisions=revisions(), tags=["v0", "v1"], errors={})
    badge = '<span class="badge status-starting" data-testid="status-badge" data-status="starting">starting</span>'
    assert badge in html
    assert 'data-deployment="d-1" data-status="starting"' in html
    assert 'data-testid="refresh-link"' in html  # follows the rollout without a script too
    instances = re.findall(r'<tr data-testid="instance-item">(.*?)</tr>', html, re.S)
    assert len(instances) == 2 and "<code>192.0.2.5:31000</code>" in instances[0] and "host-2" in instances[1]
    revision_rows = re.findall(r'<tr data-testid="revision-item">(.*?)</tr>', html, re.S)
    assert "health check passed" in revision_rows[1] and "serving" in revision_rows[1]
    assert '<option value="v1" selected>v1</option>' in html
    assert '<option value="2">2: v1 (starting)</option>' in html and '<option value="1">' not in html
    for testid in ("scale-form", "update-form", "rollback-form", "auto-deploy-form", "remove-link"):
        assert f'data-testid="{testid}"' in html


def test_a_finished_deployment_is_not_followed():
    html = render("deployment.html", deployment=deployment(status="running"), revisions=[], tags=[], errors={})
    assert 'data-testid="refresh-link"' not in html
    assert 'class="badge status-running"' in html


def test_a_refused_change_is_shown_in_its_own_form():
    errors = {"scale": {"replicas": ["must be a whole number from 0 to 50, got -3"]}}
    html = render("deployment.html", 400, deployment=deployment(), revisions=[], tags=[], errors=errors)
    scale = re.search(r'data-testid="scale-form">(.*?)</form>', html, re.S).group(1)
    assert 'data-testid="field-error-scale-replicas"' in scale
    assert 'aria-describedby="scale-replicas-error"' in scale
    update = re.search(r'data-testid="update-form">(.*?)</form>', html, re.S).group(1)
    assert "field-error" not in update


def test_how_to_push_fills_in_the_registry_and_tenant():
    html = render("how_to_push.html", ownbase_suffix="_ownbase", quoted=lambda s: s)
    assert '<code data-testid="registry-host">registry.example:5000</code>' in html
    assert '<code data-testid="tenant-id">acme</code>' in html
    assert "docker login registry.example:5000 -u alice" in html
    assert "docker push registry.example:5000/acme/my-app:v1" in html
    assert "&lt;registry&gt;/&lt;tenant ID&gt;/&lt;name&gt;:&lt;tag&gt;" in html
    assert "<code>python_ownbase</code>" in html


def test_the_error_page_lists_what_was_wrong_without_a_session():
    problem = {
        "status": 400,
        "title": "Bad Request",
        "detail": "page must be <1>",
        "request_id": "r-9",
        "errors": [{"field": "page", "message": "must be 1 or more"}],
    }
    html = templating.environment.get_template("error.html").render(problem=problem, developer=None)
    assert '<h1 data-testid="error-status">400 Bad Request</h1>' in html
    assert "page must be &lt;1&gt;" in html
    assert "<code>page</code> must be 1 or more" in html
    assert 'data-testid="account"' not in html


def test_the_signin_page_carries_the_nonce_and_a_safe_next():
    html = render("signin.html", developer=None, next="/deployments", name='a"b', nonce="n-1", errors={}, error="Wrong")
    assert '<input type="hidden" name="signin_nonce" value="n-1">' in html
    assert '<input type="hidden" name="next" value="/deployments">' in html
    assert 'value="a&#34;b"' in html
    assert '<p class="alert alert-error" role="alert" data-testid="form-error">Wrong</p>' in html
