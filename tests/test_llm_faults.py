"""Every posting ends stored or in the DLQ while the LLM stand-in fails in every way at once."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest

from flows.analyse import analyse
from flows.scrape import scrape
from jobping.settings import Settings
from standins.servers import StandIn
from tasks.jobspy.search import ScrapeParameters
from tasks.jobspy.source import sample_sites
from tasks.sqs.messages import REASON_ATTRIBUTE
from tasks.sqs.queues import Queues, depth
from tests.conftest import FAKE_OPENAI_KEY
from tests.test_llm import drain_dlq, rows
from tests.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.usefixtures("prefect_api")
# the fault mix's visibility timeout: a hung request's batch comes back to a later run after it
FAULT_MIX_VISIBILITY_SECONDS = 8


# up to eight runs and the waits for visibility between them: measured 84 s on a machine 40 to 70
# processes deep for its 2 cores
@pytest.mark.timeout(300)
def test_every_posting_ends_stored_or_in_the_dlq_under_a_fault_mix(
    settings: Settings, standin: StandIn, sqs: SQSClient, queues: Queues, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_VISIBILITY_TIMEOUT_SECONDS", str(FAULT_MIX_VISIBILITY_SECONDS))
    standin.configure(
        rate_429=0.08, rate_500=0.08, rate_hang=0.01, rate_malformed=0.05, rate_invalid=0.05,
        retry_after_seconds=0.1, hang_seconds=30,
    )  # fmt: skip
    published = scrape(ScrapeParameters(source="sample", sites=sample_sites())).published
    runs = []
    for _ in range(8):
        left = depth(sqs, queues.url)
        if left.visible + left.in_flight == 0:
            break
        if left.visible == 0:
            # what a run left in flight (a hung request's batch) comes back once its visibility ends
            wait_until(lambda: (now := depth(sqs, queues.url)).visible or not now.in_flight,
                       timeout=4 * FAULT_MIX_VISIBILITY_SECONDS, what="the messages left in flight back in the queue",
                       seen=lambda: depth(sqs, queues.url))  # fmt: skip
            continue
        runs.append(asyncio.run(analyse()))
    assert all(run.balanced for run in runs)
    in_dlq = drain_dlq(sqs, queues)
    stored = rows(settings, "SELECT count(*), count(DISTINCT job_key) FROM enriched_jobs_history")[0]
    assert stored[0] == stored[1], "a job_key was stored twice"
    assert stored[0] + len(in_dlq) == published
    assert all(m.attributes.get(REASON_ATTRIBUTE) for m in in_dlq)
    # each stored analysis was paid for once, or is another board's posting of a job that was
    reused = rows(settings, "SELECT count(*) FROM enriched_jobs_history WHERE analysis_of IS NOT NULL")[0][0]
    assert 0 < reused < stored[0]
    assert stored[0] - reused <= standin.stats()["ok"]
    assert FAKE_OPENAI_KEY not in json.dumps([m.body for m in in_dlq])
