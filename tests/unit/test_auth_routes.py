"""Every route of the router's real app needs an API key, except health, readiness and metrics."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from starlette.routing import Route
from starlette.testclient import TestClient

from frontier.security.keys import generate_key
from frontier.testing.asgi_app import router_app

KEY = generate_key()
PUBLIC = {"/healthz", "/readyz", "/metrics"}


@pytest.fixture(scope="module")
def app():
    app, _ = router_app(keys=[KEY])
    return app


def _endpoints(app):
    """(method, path) of every route the app serves, the framework's own (OpenAPI, docs) included."""
    for route in app.routes:
        assert isinstance(route, (APIRoute, Route)), f"unchecked kind of route: {route!r}"
        for method in sorted(route.methods - {"HEAD"}):
            yield method, route.path


def test_the_app_has_the_routes_this_test_expects(app):
    paths = {path for _, path in _endpoints(app)}
    assert {"/v1/chat/completions", "/v1/models", "/v1/feedback", "/openapi.json", "/docs"} | PUBLIC <= paths


def test_every_route_but_health_readiness_and_metrics_needs_a_key(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        for method, path in _endpoints(app):
            anonymous = client.request(method, path, json={})
            wrong = client.request(method, path, json={}, headers={"Authorization": "Bearer fk-wrong"})
            keyed = client.request(method, path, json={}, headers={"Authorization": f"Bearer {KEY}"})
            if path in PUBLIC:
                assert anonymous.status_code != 401 and wrong.status_code != 401, (method, path)
            else:
                assert anonymous.status_code == 401, (method, path, anonymous.status_code)
                assert anonymous.json()["error"]["code"] == "missing_api_key", (method, path)
                assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key", (method, path)
            assert keyed.status_code != 401, (method, path)
            assert keyed.status_code < 500, (method, path, keyed.status_code, keyed.text[:200])


def test_paths_no_route_serves_need_a_key_too(app):
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/", "/v1", "/v1/completions", "/healthz/../v1/models", "/HEALTHZ"):
            assert client.get(path).status_code == 401, path
