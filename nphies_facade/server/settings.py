"""Server settings, from environment variables with the prefix NPHIES_FACADE_ (documented in docs/configuration.md)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NPHIES_FACADE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    data_dir: Path = Path("./data")
    workers: int = Field(1, ge=1, le=64)
    base_url: str | None = None
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    default_page_size: int = Field(50, ge=1)
    max_page_size: int = Field(1000, ge=1)
    log_level: str = "info"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "nphies-facade.sqlite3"
