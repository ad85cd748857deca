"""What the NPHIES operations are tuned with (filled from the server settings)."""

from dataclasses import dataclass, field

from ..nphies.gateway import GatewaySettings
from ..nphies.messages import ProviderConfig

DAY = 86_400.0


@dataclass(frozen=True)
class OperationsConfig:
    """Durations are in seconds.

    provider: the provider's NPHIES identity (MessageHeader.sender, the provider Organization).
    gateway: where and how messages are sent; `sandbox` says it is the embedded simulator.
    eligibility_ttl: how long an eligibility answer is reused (0: never).
    poll_schedule: the delays between polls for a queued answer; the last one repeats.
    answer_deadline: how long after $submit a final answer may take before the Task fails.
    send_attempts: attempts at a step that got no answer (message not sent, status unknown) before the
        Task fails.
    step_lease: how long a runner owns a step it started; past it the step is taken as abandoned.
    """

    provider: ProviderConfig
    gateway: GatewaySettings
    sandbox: bool = False
    eligibility_ttl: float = 3600.0
    poll_schedule: tuple[float, ...] = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
    answer_deadline: float = 7 * DAY
    send_attempts: int = 5
    step_concurrency: int = 8
    sweep_interval: float = 30.0
    retry_backoff: tuple[float, ...] = field(default=(1, 5, 30, 120, 600))

    @property
    def step_lease(self) -> float:
        """The longest one exchange can take (every attempt timing out, with the backoff between), plus slack."""
        gateway = self.gateway
        per_attempt = gateway.timeout + gateway.connect_timeout
        return (gateway.retries + 1) * (per_attempt + gateway.max_backoff) + 30.0

    def poll_delay(self, attempt: int) -> float:
        return self.poll_schedule[min(attempt, len(self.poll_schedule) - 1)]

    def retry_delay(self, attempt: int) -> float:
        return self.retry_backoff[min(attempt, len(self.retry_backoff) - 1)]
