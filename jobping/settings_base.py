"""The base of every part of the settings tree: one environment, one .env, one naming rule."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Section(BaseSettings):
    """A part of the settings: every part reads the same environment and .env; a field's env name is
    JOBPING_ + its name unless an alias or the part's prefix says otherwise, so the variable names are
    those of the flat settings before."""

    model_config = SettingsConfigDict(
        env_prefix="JOBPING_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )
