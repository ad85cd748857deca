"""Server settings, from environment variables with the prefix NPHIES_FACADE_ (documented in docs/configuration.md)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..subscriptions.config import SubscriptionConfig

# Signature algorithms an access token may use: asymmetric only, so `none` and HMAC with a public key
# as the secret can never verify.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NPHIES_FACADE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("./data")
    workers: int = Field(1, ge=1, le=64)
    base_url: str | None = None
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_bundle_entries: int = Field(1000, ge=1)
    default_page_size: int = Field(50, ge=1)
    max_page_size: int = Field(1000, ge=1)
    log_level: str = "info"
    # Log lines as text or JSON objects (one a line); an access log line per request unless turned off.
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    # Also validate the resources the server builds itself (Tasks, exchange records, events); the
    # test suite turns it on, so a server-built resource that breaks R4 fails the tests.
    validate_own_resources: bool = False
    # strict: a reference to a resource of this server must name one that exists, and a resource others
    # refer to cannot be deleted (409); off: neither is checked (the reference format and type still are).
    referential_integrity: Literal["strict", "off"] = "strict"
    # Freeze what start-up loaded and collect the youngest generation less often (see app.py); the test
    # suite, which starts many apps in one process, turns it off.
    gc_tuning: bool = True
    # GET /metrics needs a token with a system scope unless this is off (a scraper on a private network).
    metrics_auth: bool = True

    # The production store (docs/mongodb.md): MongoDB instead of the SQLite file when the URL is set.
    mongodb_url: str | None = None
    mongodb_database: str = "nphies_facade"

    # Subscriptions and jobs (docs/subscriptions.md); durations in seconds.
    redis_url: str | None = None
    workflow_modules: str = "nphies_facade.workflows.journeys.registered"
    webhook_secret: str | None = None
    delivery_timeout: float = Field(10.0, gt=0)
    retry_initial: float = Field(1.0, gt=0)
    retry_max: float = Field(3600.0, gt=0)
    retry_window: float = Field(86400.0, gt=0)
    failures_before_error: int = Field(3, ge=1)
    job_timeout: float = Field(300.0, gt=0)
    job_lease_grace: float = Field(10.0, ge=0)
    job_concurrency: int = Field(8, ge=1)
    relay_batch_size: int = Field(500, ge=1)
    relay_poll_interval: float = Field(0.05, gt=0)
    relay_lease_ttl: float = Field(15.0, gt=0)
    reconcile_interval: float = Field(5.0, gt=0)
    requeue_after: float = Field(30.0, gt=0)
    delivery_retention_days: float = Field(30.0, gt=0)
    # The workflow engine (docs/workflows.md): seconds between sweeps for due steps and passed SLAs.
    workflow_sweep_interval: float = Field(5.0, gt=0)
    workflow_concurrency: int = Field(8, ge=1)

    # Security (docs/security.md). Durations in seconds; lists are comma-separated.
    auth: Literal["on", "off"] = "on"
    auth_issuer: str | None = None
    auth_jwks_url: str | None = None
    auth_token_url: str | None = None
    auth_authorize_url: str | None = None
    auth_audience: str | None = None
    auth_algorithms: str = "RS256,RS384,ES256,ES384"
    auth_leeway: float = Field(30.0, ge=0, le=300)
    auth_jwks_cache_seconds: float = Field(300.0, gt=0)
    auth_jwks_refetch_interval: float = Field(10.0, ge=0)
    auth_token_lifetime: int = Field(300, ge=30, le=86400)
    # SMART App Launch with the built-in authorization server (users and apps).
    auth_login_max_failures: int = Field(5, ge=1, le=100)
    auth_login_lockout_seconds: float = Field(900.0, ge=1)
    auth_login_request_lifetime: int = Field(600, ge=60, le=3600)
    auth_code_lifetime: int = Field(60, ge=5, le=600)
    auth_launch_lifetime: int = Field(300, ge=30, le=3600)
    auth_online_refresh_lifetime: int = Field(8 * 3600, ge=60)
    auth_offline_refresh_lifetime: int = Field(30 * 86400, ge=60)
    abac_policy_file: Path | None = None
    audit_hmac_key: SecretStr | None = None
    audit_hmac_key_file: Path | None = None
    retention: dict[str, dict] = Field(default_factory=dict)
    retention_file: Path | None = None
    retention_interval: float = Field(3600.0, ge=0)
    max_json_depth: int = Field(64, ge=4, le=1000)
    rate_limit: float = Field(50.0, ge=0)
    rate_limit_burst: int = Field(100, ge=1)
    cors_origins: str = ""

    # NPHIES exchange and operations (docs/nphies.md). No URL: the embedded sandbox simulator.
    nphies_url: str | None = None
    nphies_provider_license: str = "PR-FHIR"
    nphies_provider_name: str = "nphies-facade provider"
    nphies_provider_type: str = "1"
    nphies_payer_license: str = "INS-FHIR"
    nphies_payer_name: str | None = None
    nphies_source_endpoint: str | None = None
    nphies_timeout: float = Field(60.0, gt=0)
    nphies_connect_timeout: float = Field(10.0, gt=0)
    nphies_retries: int = Field(2, ge=0, le=10)
    nphies_backoff: float = Field(0.5, ge=0)
    nphies_max_backoff: float = Field(5.0, ge=0)
    nphies_cert_file: Path | None = None
    nphies_key_file: Path | None = None
    nphies_ca_file: Path | None = None
    nphies_headers: dict[str, SecretStr] = Field(default_factory=dict)
    nphies_eligibility_cache_ttl: float = Field(3600.0, ge=0)
    nphies_poll_schedule: str = "1,2,5,10,30,60,120,300,600,1800,3600"
    nphies_answer_deadline: float = Field(7 * 86400.0, gt=0)
    nphies_send_attempts: int = Field(5, ge=1)
    nphies_retry_schedule: str = "1,5,30,120,600"
    nphies_step_concurrency: int = Field(8, ge=1)
    nphies_sweep_interval: float = Field(30.0, gt=0)
    nphies_simulator_config: Path | None = None

    @field_validator("auth_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: str) -> str:
        algorithms = [a.strip() for a in value.split(",") if a.strip()]
        unsafe = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
        if unsafe or not algorithms:
            raise ValueError(f"auth_algorithms takes only {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}")
        return ",".join(algorithms)

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "on"

    @property
    def public_base_url(self) -> str:
        """The FHIR base URL clients use: tokens are issued for it (aud) and by `{it}/auth` (iss)."""
        return (self.base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "nphies-facade.sqlite3"

    def subscription_config(self) -> SubscriptionConfig:
        return SubscriptionConfig(
            redis_url=self.redis_url or None,
            workflow_modules=tuple(m.strip() for m in self.workflow_modules.split(",") if m.strip()),
            webhook_secret=self.webhook_secret or None,
            base_url=self.public_base_url,
            delivery_timeout=self.delivery_timeout,
            retry_initial=self.retry_initial,
            retry_max=self.retry_max,
            retry_window=self.retry_window,
            failures_before_error=self.failures_before_error,
            job_timeout=self.job_timeout,
            job_lease_grace=self.job_lease_grace,
            job_concurrency=self.job_concurrency,
            relay_batch_size=self.relay_batch_size,
            relay_poll_interval=self.relay_poll_interval,
            lease_ttl=self.relay_lease_ttl,
            reconcile_interval=self.reconcile_interval,
            requeue_after=self.requeue_after,
            retention=self.delivery_retention_days * 86400.0,
        )
