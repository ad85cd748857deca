"""Subscription status changes made by the server, written through FhirService as new versions."""

import logging

from .. import exact_json
from ..resources.context import RequestContext
from ..resources.errors import FhirError
from ..resources.service import FhirService

log = logging.getLogger("nphies_facade.subscriptions")

SYSTEM_ACTOR = "nphies-facade:subscriptions"
ATTEMPTS = 3


class StatusWriter:
    def __init__(self, service: FhirService) -> None:
        self._service = service
        self._ctx = RequestContext.system(SYSTEM_ACTOR)

    async def change(
        self, subscription_id: str, to: str, *, when: frozenset[str] | set[str], error: str | None = None
    ) -> bool:
        """Sets `status` (and `error`, cleared when None) if the current status is one of `when`.

        Retries when a concurrent write wins; False when nothing was changed.
        """
        for _ in range(ATTEMPTS):
            try:
                stored = await self._service.read("Subscription", subscription_id, ctx=self._ctx)
            except FhirError:
                return False
            body = exact_json.loads(stored.body)
            if body.get("status") not in when or (body.get("status") == to and body.get("error") == error):
                return False
            body["status"] = to
            if error is None:
                body.pop("error", None)
            else:
                body["error"] = error
            try:
                await self._service.update(
                    self._ctx, "Subscription", subscription_id, body, if_match=f'W/"{stored.version}"'
                )
            except FhirError as exc:
                if exc.status in (409, 412):
                    continue
                log.warning(
                    "subscription %s status change to %s refused: %s", subscription_id, to, exc.status
                )
                return False
            log.info("subscription %s is now %s", subscription_id, to)
            return True
        return False
