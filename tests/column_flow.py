"""One JobSpy-shaped posting from a frame to the lake, as the scrape and analyse flows move it; run as a script.

`python tests/column_flow.py INDEX [COLUMN VALUE]` takes the bundled sample's indeed posting number INDEX
as JobSpy's scrape_jobs frame, adds COLUMN with VALUE to that frame (a field a newer JobSpy gives),
normalises it, publishes it as the scrape flow does onto the queue of the JOBPING_* settings, drains the
queue into the lake with the offline analyser, and prints the modules' paths as JSON (which copy of the
product ran). test_columns.py runs it against a copy of the product whose declaration has one column more.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

import jobping
from jobping.contract import SCRAPE_PRODUCER, encode_cut
from jobping.engine.drain import drain
from jobping.profile import load_profile
from jobping.settings import Settings
from storage.lake import Lake
from storage.store import LakeStore, open_lake
from tasks.jobspy.normalise import normalise
from tasks.jobspy.source import jobspy_frame, sample_posts, to_polars
from tasks.llm.offline import OfflineAnalyser
from tasks.sqs.client import make_sqs_client
from tasks.sqs.messages import send_entries
from tasks.sqs.queue import SqsQueue
from tasks.sqs.queues import ensure_queues


def main(index: int, column: str | None, value: str | None) -> None:
    frame = jobspy_frame(sample_posts("indeed")[index : index + 1])
    if column is not None:
        frame[column] = [value]
    normalised = normalise(to_polars(frame, "indeed", "data engineer", "Berlin"), datetime.now(UTC))
    settings = Settings()
    sqs = make_sqs_client(settings, start_emulator=False)
    queues = ensure_queues(sqs, settings.sqs)
    bodies = [encode_cut(e.model_copy(update={"producer": SCRAPE_PRODUCER}))[0] for e in normalised.envelopes]
    sent = send_entries(sqs, queues.url, [{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)])
    queue = SqsQueue(sqs, queues.url, queues.dlq_url, settings.sqs.visibility_timeout_seconds)
    lake = open_lake(Lake.from_settings(settings))
    store = LakeStore(lake, settings.catalog_path)
    report = asyncio.run(drain(queue, store, OfflineAnalyser(load_profile(settings.profile_path))))
    print(json.dumps({"product": jobping.__file__, "sent": sent.sent, "stored": report.stored}))


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main(int(arguments[0]), *(arguments[1:3] if len(arguments) == 3 else (None, None)))
