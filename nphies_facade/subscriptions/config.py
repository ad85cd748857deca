"""What the subscription machinery can be tuned with (filled from the server settings)."""

from dataclasses import dataclass

DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class SubscriptionConfig:
    """Durations are in seconds. `redis_url` None is the embedded mode: relay and jobs run in `serve`."""

    redis_url: str | None = None
    relay_batch_size: int = 500
    relay_poll_interval: float = 0.05
    lease_ttl: float = 15.0
    delivery_timeout: float = 10.0
    delivery_connections: int = 100
    retry_initial: float = 1.0
    retry_max: float = 3600.0
    retry_window: float = DAY
    failures_before_error: int = 3
    webhook_secret: str | None = None
    job_timeout: float = 300.0
    job_lease_grace: float = 10.0
    job_concurrency: int = 8
    queue_poll_interval: float = 0.05
    reconcile_interval: float = 5.0
    requeue_after: float = 30.0
    retention: float = 30 * DAY
    websocket_poll_interval: float = 0.1
    workflow_modules: tuple[str, ...] = ()
    base_url: str = "http://localhost"  # the server's public base, for fullUrls in notifications

    @property
    def embedded(self) -> bool:
        return self.redis_url is None
