"""How the live scrape reaches the job boards: proxies, a proxy's CA, pauses, and when a failing board is
reported. A part of the settings tree (``Settings.scrape``), read from the same ``JOBPING_*`` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from jobping.settings_base import Section

BOARD_ALERT_RUNS = 3
SCRAPE_PAUSE_SECONDS = 5.0
SCRAPE_RETRY_SECONDS = 60.0


class ScrapeSettings(Section):
    """Proxies and politeness for JobSpy's scrapers, and the board-health alert's threshold."""

    proxies: SecretStr | None = Field(
        default=None,
        validation_alias="JOBPING_SCRAPE_PROXIES",
        description=(
            "Proxies for every job board, comma-separated, in JobSpy's format: 'user:pass@host:port' or "
            "'host:port'; JobSpy rotates through them. Secret: never logged."
        ),
    )
    proxies_block: str | None = Field(
        default=None,
        min_length=1,
        max_length=300,
        validation_alias="JOBPING_SCRAPE_PROXIES_BLOCK",
        description=(
            "Name of a Prefect Secret block holding the proxies (comma-separated, or a JSON list); "
            "wins over JOBPING_SCRAPE_PROXIES."
        ),
    )
    ca_cert: Path | None = Field(
        default=None,
        validation_alias="JOBPING_SCRAPE_CA_CERT",
        description="A CA certificate (PEM) to trust, for a proxy that terminates TLS; checked before any scraping.",
    )
    pause_seconds: float = Field(
        default=SCRAPE_PAUSE_SECONDS,
        ge=0,
        le=600,
        validation_alias="JOBPING_SCRAPE_PAUSE_SECONDS",
        description=(
            "Pause between one board's searches, give or take up to half of it at random; none before its first "
            "search, none for the sample."
        ),
    )
    retry_seconds: float = Field(
        default=SCRAPE_RETRY_SECONDS,
        ge=0,
        le=3_600,
        validation_alias="JOBPING_SCRAPE_RETRY_SECONDS",
        description=(
            "Wait before a blocked or failing board is asked again, doubled for each of its 3 retries, give or "
            "take half at random; the other boards do not wait for it."
        ),
    )
    board_alert_runs: int = Field(
        default=BOARD_ALERT_RUNS,
        ge=1,
        le=1_000,
        validation_alias="JOBPING_BOARD_ALERT_RUNS",
        description=(
            "A board that failed or found nothing in this many scrape runs in a row brings one alert, and one "
            "line when it answers again."
        ),
    )

    @field_validator("proxies", "proxies_block", "ca_cert", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value
