"""Setting a repository's description and overview through the gateway: the API's PATCH and the
console's form, over fake RPC proxies (who may, what the catalog is asked, what a refusal shows)."""

import json
import re

import pytest

from gateway.api import ApiRoutes
from shared.contracts.errors import Forbidden, InvalidRequest, NotFound
from tests.unit.gateway.conftest import Console, make_developer, make_request

REPOSITORY = {
    "repository": "acme/app",
    "namespace": "acme",
    "name": "app",
    "description": "Our app.",
    "overview": "**Runs** it.\n\n<script>alert(1)</script> [x](javascript:alert(1))",
    "tag_count": 0,
}
LIBRARY = dict(REPOSITORY, repository="library/busybox", namespace="library", name="busybox")


class Gateway(ApiRoutes, Console):
    """The API's routes and the console's pages over the same fakes."""


def gateway(admin=False, tenant="acme"):
    found = Gateway(make_developer(tenant=tenant, admin=admin))
    found.catalog.answers.update(
        get_repository=lambda tenant, repository: LIBRARY if repository.startswith("library/") else REPOSITORY,
        list_tags={"items": [], "total": 0, "page": 1, "page_size": 25},
        set_repository_info=REPOSITORY,
    )
    return found


def patch(body):
    return make_request("PATCH", "/api/v1/repositories/x/y", data=json.dumps(body), content_type="application/json")


class TestApi:
    def test_the_owner_sets_only_the_fields_given(self):
        api = gateway()
        response = api.set_repository_info(patch({"description": "New."}), "acme", "app")
        assert (response.status_code, json.loads(response.get_data())) == (200, REPOSITORY)
        assert api.catalog.calls == [("set_repository_info", ("acme", "acme/app"), {"description": "New."})]

    def test_an_admin_describes_the_library_and_no_one_else_does(self):
        admin = gateway(admin=True, tenant=None)
        admin.set_repository_info(patch({"overview": "# busybox"}), "library", "busybox")
        assert admin.catalog.calls == [("set_repository_info", (None, "library/busybox"), {"overview": "# busybox"})]
        developer = gateway()
        with pytest.raises(Forbidden, match="only a platform admin"):
            developer.set_repository_info(patch({"description": "Mine."}), "library", "busybox")
        assert developer.catalog.calls == []

    def test_another_tenants_repository_is_not_found_and_the_catalog_never_asked(self):
        for api in (gateway(), gateway(admin=True)):
            with pytest.raises(NotFound):
                api.set_repository_info(patch({"description": "Hijacked."}), "globex", "app")
            assert api.catalog.calls == []

    @pytest.mark.parametrize(("body", "field"), [({"description": 5}, "description"), ({"readme": "x"}, "readme")])
    def test_a_body_of_other_fields_or_types_is_refused_naming_them(self, body, field):
        api = gateway()
        with pytest.raises(InvalidRequest) as refused:
            api.set_repository_info(patch(body), "acme", "app")
        assert [e["field"] for e in refused.value.field_errors] == [field]
        assert api.catalog.calls == []


class TestConsole:
    def test_the_overview_is_rendered_as_markdown_without_html_or_script_links(self):
        html = gateway().repository(make_request(), "acme", "app").get_data(as_text=True)
        overview = re.search(r'data-testid="repository-overview">(.*?)</div>', html, re.S).group(1)
        assert "<strong>Runs</strong>" in overview
        assert "<script>" not in overview and "&lt;script&gt;" in overview
        assert "javascript:" not in re.sub(r"&[a-z]+;", "", "".join(re.findall(r'href="([^"]*)"', overview)))

    def test_the_form_is_there_for_the_owner_and_a_library_admin_only(self):
        def has_form(pages, call):
            return 'data-testid="describe-form"' in call(pages).get_data(as_text=True)

        own = lambda pages: pages.repository(make_request(), "acme", "app")  # noqa: E731
        library = lambda pages: pages.library_image(make_request(), "busybox")  # noqa: E731
        assert has_form(gateway(), own) and not has_form(gateway(), library)
        assert has_form(gateway(admin=True), library)

    def test_saving_sends_unix_line_ends_and_goes_back_to_the_page(self):
        pages = gateway()
        form = {"csrf_token": "csrf-123", "description": " New. ", "overview": "# Title\r\n\r\nText\r\n"}
        response = pages.repository_info(make_request("POST", "/x", data=form), "acme", "app")
        assert (response.status_code, response.headers["Location"]) == (303, "/repositories/acme/app?saved=1")
        assert pages.catalog.calls == [
            ("set_repository_info", ("acme", "acme/app"), {"description": "New.", "overview": "# Title\n\nText"})
        ]

    def test_a_refusal_is_shown_next_to_its_field_with_what_was_typed(self):
        pages = gateway()
        pages.catalog.answers["set_repository_info"] = InvalidRequest(
            "overview must not contain raw HTML, got '<b>' in the block from line 1: put it in a code span or block"
        )
        form = {"description": "Fine.", "overview": "<b>bold</b>"}
        response = pages.repository_info(make_request("POST", "/x", data=form), "acme", "app")
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert re.search(r'data-testid="field-error-info-overview">\s*<li>must not contain raw HTML', html)
        assert ">&lt;b&gt;bold&lt;/b&gt;</textarea>" in html and 'value="Fine."' in html

    def test_the_library_form_is_an_admins_and_goes_back_to_the_library_page(self):
        admin = gateway(admin=True, tenant=None)
        response = admin.repository_info(make_request("POST", "/x", data={"description": "Box."}), "library", "busybox")
        assert response.headers["Location"] == "/library/busybox?saved=1"
        assert admin.catalog.calls == [("set_repository_info", (None, "library/busybox"), {"description": "Box."})]
        with pytest.raises(Forbidden):
            gateway().repository_info(make_request("POST", "/x", data={"description": "Box."}), "library", "busybox")
