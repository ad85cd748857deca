"""The toy workflow server most engine tests run against, one per test."""

from collections.abc import AsyncIterator

import pytest

from .engine_support import Toys, toy_server


@pytest.fixture
async def toys(tmp_path) -> AsyncIterator[Toys]:
    async with toy_server(tmp_path / "data") as served:
        yield served
