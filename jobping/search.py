"""The scrape's vocabulary: JobSpy's sites and where postings come from.

The scrape flow's parameters, which need JobSpy's own types, are ``tasks.jobspy.search.ScrapeParameters``.
"""

from __future__ import annotations

from typing import Literal

SiteName = Literal[
    "linkedin", "indeed", "zip_recruiter", "glassdoor", "google", "bayt", "naukri", "bdjobs", "hellowork"
]
Source = Literal["jobspy", "sample"]
DEFAULT_SITES: list[SiteName] = ["indeed", "linkedin", "zip_recruiter", "glassdoor"]
