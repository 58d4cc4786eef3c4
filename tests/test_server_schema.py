"""schemathesis against the served `/openapi.json`: generated requests never get a 5xx, responses conform."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from helpers_server import TOKEN, running_server

AUTH = {"authorization": f"Bearer {TOKEN}"}
EXCLUDED_CHECKS = [
    # A schema-valid request can still be refused for what a schema cannot say (size must equal the body's
    # length, the key must name a staged upload).
    schemathesis.checks.positive_data_acceptance,
    # Its probes keep the token passed here, so they cannot test auth; test_server_api.py covers 401/403.
    schemathesis.checks.ignored_auth,
]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("server-schema")
    env = {"FASTPACK_API_TOKENS": TOKEN, "FASTPACK_RATE_LIMIT": "0", "EXT_BUNDLES_MAX_BYTES": "1048576"}
    with running_server(str(workdir / "store"), env, workdir / "server.log") as server:
        yield server


def local_document() -> dict:
    """The document the app generates; the served one must be the same (checked below)."""
    from fastpack.server.app import create_app
    from fastpack.server.config import ServerConfig

    return create_app(ServerConfig(store=None)).openapi()


schema = schemathesis.openapi.from_dict(local_document())


def test_served_document_is_the_one_tested(api_server):
    assert httpx.get(f"{api_server.url}/openapi.json").json() == local_document()


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(api_server, case):
    response = case.call_and_validate(base_url=api_server.url, headers=AUTH, excluded_checks=EXCLUDED_CHECKS)
    assert response.status_code < 500
    assert response.headers.get("x-request-id")
