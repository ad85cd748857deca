"""The toy workflow server most engine tests run against, one per test; the subscriptions suite's app, API
client and rest-hook receiver for the workflow-event tests."""

from collections.abc import AsyncIterator

import pytest

from ..subscriptions.conftest import api, receiver, sub_app, sub_settings  # noqa: F401 (fixtures)
from .engine_support import Toys, toy_server


@pytest.fixture
async def toys(tmp_path) -> AsyncIterator[Toys]:
    async with toy_server(tmp_path / "data") as served:
        yield served
