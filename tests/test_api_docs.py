"""/docs and /redoc: the API's pages work offline, from the app's own vendored files."""

from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from geo.core.settings import Settings
from tests.conftest import Server


@pytest.fixture(scope="module")
def server(engine):
    running = Server(create_app(Settings(), engine))
    yield running
    running.stop()


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_pages_name_no_outside_origin(engine, path):
    answer = TestClient(create_app(Settings(), engine)).get(path)
    assert answer.status_code == 200
    policy = answer.headers["content-security-policy"]
    assert "https:" not in policy and "unsafe-inline" not in policy.split("style-src")[0]
    assert "https://" not in answer.text  # every script, style and icon from /static/vendor


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "shown"), [("/docs", ".opblock"), ("/redoc", "[data-section-id]")]
)
def test_the_pages_render_in_chromium_without_the_internet(server, browser, path, shown):
    page = browser.new_page()
    asked, problems = [], []
    page.on("request", lambda request: asked.append(request.url))
    page.on("console", lambda m: m.type == "error" and problems.append(m.text))
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(server.base + path)
    page.wait_for_selector(shown, timeout=20_000)
    hosts = {urlparse(url).hostname for url in asked if url.startswith("http")}
    assert hosts == {"127.0.0.1"}
    assert problems == []
    page.close()
