"""Property-based tests of every operation against /openapi.json: no 5xx, responses match their schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.helpers import create_job, register, upload_ok

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


@pytest.fixture
def api_schema(sqlite_client, base_model_dir):
    # Some real resources, so generated requests also reach the non-404 paths.
    register(sqlite_client, "m", base_model_dir)
    create_job(sqlite_client, "m", upload_ok(sqlite_client))
    return schemathesis.openapi.from_asgi("/openapi.json", sqlite_client.app)


def test_api_conforms_to_its_schema(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 17
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def check(case):
            case.call_and_validate(checks=CHECKS)

        check()
