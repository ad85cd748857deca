"""Wires the subscription machinery into one process.

Every process that writes installs the Subscription write hook. A process with the relay role (`serve`
in the embedded mode, `nphies-facade worker` with Redis) competes for the relay lease; the leader runs
the relay, the rest-hook deliveries and the reconciler. Server processes follow websocket events. Jobs go
to the given queue (arq) or to an in-process runner.
"""

import asyncio
import contextlib
import importlib
import logging
import os
import socket
import uuid

from ..resources.clock import Clock, system_clock
from ..resources.context import RequestContext
from ..resources.service import FhirService
from ..resources.store import StoredVersion
from .config import SubscriptionConfig
from .criteria import CriteriaParser, SubscriptionSpec
from .dispatch import Dispatcher
from .jobs import JobRunner
from .lease import Leadership
from .queue import InProcessQueue, JobQueue, JobRouter
from .reconciler import Reconciler
from .relay import Relay
from .resthook import RestHookChannel
from .status import StatusWriter
from .validation import subscription_write_hook
from .websocket import WebsocketHub
from .workflow import WorkflowRegistry, install_subscriptions, workflows

log = logging.getLogger("nphies_facade.subscriptions")


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def import_workflow_modules(names: tuple[str, ...]) -> None:
    for name in names:
        importlib.import_module(name)


def install_write_hook(service: FhirService) -> CriteriaParser:
    """Adds the Subscription check to the service once; returns the parser it uses."""
    for hook in service.write_hooks:
        parser = getattr(hook, "criteria_parser", None)
        if parser is not None:
            return parser
    parser = CriteriaParser(service.extractor.registry)
    hook = subscription_write_hook(parser)
    hook.criteria_parser = parser  # type: ignore[attr-defined]
    service.write_hooks.append(hook)
    return parser


class SubscriptionRuntime:
    def __init__(
        self,
        service: FhirService,
        config: SubscriptionConfig,
        clock: Clock = system_clock,
        *,
        relay: bool,
        websockets: bool = True,
        queue: JobQueue | None = None,
        registry: WorkflowRegistry = workflows,
    ) -> None:
        self.service = service
        self.config = config
        self.registry = registry
        self.name = process_name()
        self.ledger = service.store.ledger()
        self.parser = install_write_hook(service)
        self.status = StatusWriter(service)
        self.runner = JobRunner(self.ledger, service, registry, self.status, config, clock, self.name)
        self.jobs = JobRouter(self.runner.run)
        self.queue = (
            queue
            if queue is not None or not relay
            else InProcessQueue(self.jobs.run, config.job_concurrency)
        )
        self.hub = WebsocketHub(self.ledger, config.websocket_poll_interval) if websockets else None
        self.resthook = RestHookChannel(
            self.ledger,
            self._live,
            self.status,
            config,
            clock,
            self.name,
            gate=self._relay_caught_up,
            focus_reader=self._focus_body,
        )
        self.dispatcher = Dispatcher(self.resthook, self.hub, self.queue, self.status)
        self.relay = Relay(
            service.store,
            self.ledger,
            service.extractor,
            self.parser,
            clock,
            self.dispatcher,
            config.relay_batch_size,
        )
        self.reconciler = Reconciler(
            self.ledger, self.relay, self.dispatcher, self.resthook, self.status, config, clock
        )
        self.leadership = Leadership(self.ledger, self.name, config.lease_ttl, clock) if relay else None
        self._stop = asyncio.Event()
        self._leader_stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._leader_tasks: list[asyncio.Task] = []
        self._signal = None  # a CommitSignal in an API server that leaves relaying to workers

    async def start(self) -> None:
        import_workflow_modules(self.config.workflow_modules)
        self._stop.clear()
        if self.hub is not None:
            self._tasks.append(asyncio.create_task(self.hub.run(self._stop)))
        # Every process installs the trigger Subscriptions before it takes writes: an API server that
        # starts before its worker must not take changes that no Subscription existed to match.
        await install_subscriptions(self.service, [s for w in self.registry.all() for s in w.subscriptions])
        if self.leadership is None:
            if self.config.redis_url:
                from .redis_signal import CommitSignal  # redis is needed with a Redis URL only

                self._signal = CommitSignal(self.config.redis_url)
                self.service.commit_hooks.append(self._signal_commit)
            return
        if self.queue is not None:
            await self.queue.start()
        self.service.commit_hooks.append(self._committed)
        self._tasks.append(asyncio.create_task(self.leadership.run(self._stop, self._lead, self._follow)))

    async def stop(self) -> None:
        for hook in (self._committed, self._signal_commit):
            if hook in self.service.commit_hooks:
                self.service.commit_hooks.remove(hook)
        if self._signal is not None:
            await self._signal.close()
            self._signal = None
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await task
        self._tasks.clear()
        if self.queue is not None:
            await self.queue.close()

    def poke(self) -> None:
        """Something changed in the ledger out of band ($resend): reconcile now if leading here."""
        self.reconciler.wakeup.set()
        self.relay.wakeup.set()

    async def _relay_caught_up(self) -> None:
        await self.relay.caught_up.wait()

    async def _focus_body(self, resource_type: str, resource_id: str, version: int | None) -> bytes | None:
        store = self.service.store
        if version is None:
            stored = await store.read(resource_type, resource_id)
        else:
            stored = await store.vread(resource_type, resource_id, version)
        return stored.body if stored is not None else None

    def _live(self, subscription_id: str) -> SubscriptionSpec | None:
        return self.relay.index.get(subscription_id)

    @property
    def leading(self) -> bool:
        return self.leadership is not None and self.leadership.leading

    async def _committed(self, ctx: RequestContext, stored: StoredVersion) -> None:
        """A write committed in this process: relay it now rather than at the next poll."""
        self.relay.wakeup.set()

    async def _signal_commit(self, ctx: RequestContext, stored: StoredVersion) -> None:
        """A write committed here while a worker relays: tell it through Redis."""
        if self._signal is not None:
            self._signal.committed()

    async def _lead(self) -> None:
        await self.relay.load()
        await self.resthook.start()
        self._leader_stop.clear()
        self._leader_tasks = [
            asyncio.create_task(self.relay.run(self._leader_stop, self.config.relay_poll_interval)),
            asyncio.create_task(self.reconciler.run(self._leader_stop)),
        ]
        follow = getattr(self.service.store, "follow_outbox", None)  # a store that can say "new event"
        if follow is not None:
            self._leader_tasks.append(asyncio.create_task(follow(self.relay.wakeup.set, self._leader_stop)))
        if self.config.redis_url:
            from .redis_signal import follow_commits

            signal = follow_commits(self.config.redis_url, self.relay.wakeup.set, self._leader_stop)
            self._leader_tasks.append(asyncio.create_task(signal))

    async def _follow(self) -> None:
        self._leader_stop.set()
        self.relay.wakeup.set()
        self.reconciler.wakeup.set()
        for task in self._leader_tasks:
            with contextlib.suppress(Exception):
                await task
        self._leader_tasks = []
        await self.resthook.stop()
