"""A real `nphies-facade serve` on loopback for the client tests (fhirpy, fhir-kit-client)."""

import os
from collections.abc import Iterator

import pytest

from tests.integration.conftest import free_port, running_server, serve_command


@pytest.fixture(scope="module")
def loopback_url(tmp_path_factory) -> Iterator[str]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("first-hour-data")
    env = {**os.environ, "NPHIES_FACADE_LOG_LEVEL": "warning", "NPHIES_FACADE_AUTH": "off"}
    with running_server(serve_command(port, data_dir), f"http://127.0.0.1:{port}", env) as url:
        yield url
