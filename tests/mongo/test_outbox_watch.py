"""The outbox change stream wakes the relay on inserts, and a failing stream is opened again."""

import asyncio

from pymongo.errors import OperationFailure

from nphies_facade.resources.mongo.outbox_watch import INSERTS, follow_outbox


class _Stream:
    def __init__(self, changes: list) -> None:
        self._changes = changes

    async def __aenter__(self) -> "_Stream":
        return self

    async def __aexit__(self, *exc) -> None:
        return None

    async def try_next(self):
        await asyncio.sleep(0)
        return self._changes.pop(0) if self._changes else None


class _Outbox:
    """Fails the first watch, then streams two inserts."""

    def __init__(self) -> None:
        self.watches: list = []

    async def watch(self, pipeline, **kwargs):
        self.watches.append(pipeline)
        if len(self.watches) == 1:
            raise OperationFailure("The $changeStream stage is only supported on replica sets", code=40573)
        return _Stream([{"operationType": "insert"}, {"operationType": "insert"}])


async def test_each_insert_wakes_the_relay_and_a_failed_stream_is_opened_again():
    outbox, stop, woken = _Outbox(), asyncio.Event(), []

    def wake() -> None:
        woken.append(1)
        if len(woken) == 2:
            stop.set()

    await asyncio.wait_for(follow_outbox(outbox, wake, stop, retry_after=0.01), timeout=5)
    assert len(woken) == 2 and outbox.watches == [INSERTS, INSERTS]
