"""The eligibility cache on Redis (NPHIES_FACADE_REDIS_URL): shared by processes, and Redis down is a miss."""

import shutil
from collections.abc import Iterator

import pytest

from ..integration.conftest import free_port
from ..subscriptions.conftest import RedisServer
from .conftest import fast_settings, serving
from .material import ELIGIBILITY, material, store


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; the Redis cache is not tested")
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


async def test_answers_are_found_through_redis_by_another_process(redis, tmp_path) -> None:
    settings = fast_settings(tmp_path / "data", redis_url=redis.url)
    found = material(ELIGIBILITY)
    async with serving(settings) as first:
        await store(first, found)
        miss = await first.post(f"/{found.coverage}/$eligibility")
        assert miss.headers["x-cache"] == "MISS"
    assert b"nphies-facade:eligibility:" in redis.command("KEYS", "nphies-facade:eligibility:*")
    async with serving(settings) as second:  # a fresh process: nothing in its memory
        hit = await second.post(f"/{found.coverage}/$eligibility")
    assert (hit.headers["x-cache"], hit.json()["id"]) == ("HIT", miss.json()["id"])


async def test_redis_down_asks_nphies(redis, tmp_path) -> None:
    settings = fast_settings(tmp_path / "data", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    found = material(ELIGIBILITY)
    async with serving(settings) as client:
        await store(client, found)
        answer = await client.post(f"/{found.coverage}/$eligibility")
    assert answer.status_code == 200 and answer.headers["x-cache"] == "MISS"
