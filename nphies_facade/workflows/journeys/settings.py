"""Settings of the journeys (environment variables with the prefix NPHIES_FACADE_, see docs/configuration.md)."""

from datetime import timedelta
from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class JourneySettings(BaseSettings):
    """Who reviews what, how long they have, and the business limits the journeys apply."""

    model_config = SettingsConfigDict(env_prefix="NPHIES_FACADE_", extra="ignore")

    eligibility_review_owner: str = "CareTeam/eligibility-review"
    eligibility_review_sla_hours: float = Field(4.0, gt=0)
    eligibility_escalation_owner: str = "CareTeam/revenue-cycle-supervisors"
    claim_appeal_days: int = Field(30, ge=0)
    claim_payment_wait_days: float = Field(60.0, gt=0)
    # productOrService codes (system|code or code) whose items need a prior authorization reference.
    prior_auth_codes: str = ""
    consent_purpose: str = "HPAYMT"

    @property
    def review_sla(self) -> timedelta:
        return timedelta(hours=self.eligibility_review_sla_hours)

    @property
    def appeal_window(self) -> timedelta:
        return timedelta(days=self.claim_appeal_days)

    @property
    def payment_wait(self) -> timedelta:
        return timedelta(days=self.claim_payment_wait_days)

    def needs_prior_auth(self, system: str | None, code: str | None) -> bool:
        listed = {c.strip() for c in self.prior_auth_codes.split(",") if c.strip()}
        return bool(code) and (code in listed or f"{system}|{code}" in listed)


@cache
def from_environment() -> JourneySettings:
    return JourneySettings()


def settings_of(given: object) -> JourneySettings:
    """The journey settings a step was given (StepContext.settings), else those of the environment."""
    if isinstance(given, JourneySettings):
        return given
    found = getattr(given, "journeys", None)
    return found if isinstance(found, JourneySettings) else from_environment()
