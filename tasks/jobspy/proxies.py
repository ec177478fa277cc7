"""The scrape run's proxies, from a Prefect Secret block or the environment, and its proxy CA.

Read once per run, before any board is asked. The block wins over ``JOBPING_SCRAPE_PROXIES``;
its value is comma-separated text or a JSON list. Nothing here shows a proxy's credentials.
"""

from __future__ import annotations

from jobspy import SCRAPER_MAPPING
from prefect.blocks.system import Secret
from pydantic import SecretStr

from jobping.errors import ConfigurationError
from jobping.proxies import Proxies, Proxy, check_ca_cert, parse_proxies
from jobping.scrape_settings import ScrapeSettings

# jobspy logs a scraper's failure (a proxy's url in it) on the logger of the scraper's module;
# requests' urllib3 and curl_cffi log connections; prefect's run loggers repeat what a task says
LIBRARY_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests", "curl_cffi")
PREFECT_LOGGERS = ("prefect", "prefect.flow_runs", "prefect.task_runs")


def _block_value(name: str) -> object:
    origin = f"the Secret block {name!r} (JOBPING_SCRAPE_PROXIES_BLOCK)"
    try:
        secret = Secret.load(name, _sync=True)  # type: ignore[call-arg]
    except ValueError as exc:
        # the block's name is no secret; prefect's message names it and says it is missing
        raise ConfigurationError(f"{origin} could not be loaded: it does not exist or is no Secret") from exc
    value = secret.get()  # type: ignore[union-attr]
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def proxy_entries(scrape: ScrapeSettings) -> tuple[Proxy, ...]:
    """The checked proxies: the block's when one is named, else the environment's, else none."""
    if scrape.proxies_block:
        origin = f"the Secret block {scrape.proxies_block!r}"
        return parse_proxies(_block_value(scrape.proxies_block), origin)
    if scrape.proxies is not None:
        return parse_proxies(scrape.proxies.get_secret_value(), "JOBPING_SCRAPE_PROXIES")
    return ()


def load_proxies(scrape: ScrapeSettings) -> Proxies:
    """The run's proxies and CA, checked; a ConfigurationError in one line when either is wrong."""
    ca_cert = check_ca_cert(scrape.ca_cert) if scrape.ca_cert is not None else None
    return Proxies(entries=proxy_entries(scrape), ca_cert=ca_cert)


def scrape_loggers() -> tuple[str, ...]:
    """Every logger that may write a proxy's url during a scrape: filters act on each, not on a parent."""
    modules = {scraper.__module__ for scraper in SCRAPER_MAPPING.values()}
    return ("jobspy", *sorted(modules), *LIBRARY_LOGGERS, *PREFECT_LOGGERS)
