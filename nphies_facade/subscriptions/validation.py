"""The FhirService write hook for Subscriptions: refuse what cannot be served, keep status server-owned.

Clients create and update Subscriptions as `requested` or `off`; `active` and `error` are the server's
to set. A client update that keeps criteria and channel may carry the status it read; any other
client-set `active` or `error` becomes `requested`, so the server activates it again.
"""

from .. import exact_json
from ..resources.context import RequestContext
from ..resources.service import WriteHook
from ..resources.store import StoreTransaction
from .criteria import CriteriaParser
from .status import SYSTEM_ACTOR

CLIENT_STATUSES = frozenset({"requested", "off"})
IDENTITY = ("criteria", "channel")


def subscription_write_hook(parser: CriteriaParser) -> WriteHook:
    async def check_subscription(tx: StoreTransaction, ctx: RequestContext, resource: dict) -> None:
        if resource.get("resourceType") != "Subscription":
            return
        parser.parse(resource)
        if ctx.actor == SYSTEM_ACTOR or resource.get("status") in CLIENT_STATUSES:
            return
        if not await _keeps_server_status(tx, resource):
            resource["status"] = "requested"
            resource.pop("error", None)

    return check_subscription


async def _keeps_server_status(tx: StoreTransaction, resource: dict) -> bool:
    current = await tx.current("Subscription", resource["id"])
    if current is None or current.deleted:
        return False
    before = exact_json.loads(current.body)
    return before.get("status") == resource.get("status") and all(
        before.get(key) == resource.get(key) for key in IDENTITY
    )
