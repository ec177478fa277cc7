"""Which analyser a run uses, chosen from the settings."""

from __future__ import annotations

from jobping.analysis import Analyser
from jobping.profile import load_profile
from jobping.settings import Settings
from tasks.llm.offline import OfflineAnalyser


def make_analyser(settings: Settings) -> Analyser:
    """The offline analyser; the LLM analyser joins here once an LLM is configured."""
    return OfflineAnalyser(load_profile(settings.profile_path))
