"""A write-ahead log of paid LLM answers, so that a crash between answer and Parquet write costs nothing twice.

Each process appends to its own JSON-lines file under ``<data>/answers/`` as answers arrive
(flushed to the operating system at once, so a killed process loses none); a later run reads
every file and reuses an answer instead of asking the LLM again. Old files are pruned.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from jobping.analysis import AnalysisResult
from jobping.engine.ports import StoredVersion

logger = logging.getLogger(__name__)

FOLDER = "answers"
KEEP_SECONDS = 7 * 86_400


class AnswerLog:
    """Paid answers by (job_key, content_hash, prompt_version), shared across runs on this machine."""

    def __init__(self, data_dir: Path) -> None:
        self._folder = data_dir / FOLDER
        self._answers: dict[StoredVersion, AnalysisResult] = {}
        self._file: IO[str] | None = None
        self._load()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, version: StoredVersion) -> AnalysisResult | None:
        # an answer is about the text, whoever sent it
        return self._answers.get(replace(version, scraped=False))

    def put(self, version: StoredVersion, result: AnalysisResult) -> None:
        self._answers[replace(version, scraped=False)] = result
        if self._file is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            path = self._folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            self._file = path.open("a", encoding="utf-8")
        line = {
            "job_key": version.job_key,
            "content_hash": version.content_hash,
            "result": result.model_dump(mode="json"),
        }
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        # to the os at once: a killed process keeps what it paid for
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _load(self) -> None:
        if not self._folder.is_dir():
            return
        cutoff = time.time() - KEEP_SECONDS
        for path in sorted(self._folder.glob("*.jsonl")):
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    data = json.loads(line)
                    result = AnalysisResult.model_validate(data["result"])
                except (ValueError, KeyError, TypeError, ValidationError):
                    # a line cut short by a crash: that answer is simply asked for again
                    continue
                self._answers[StoredVersion(data["job_key"], data["content_hash"], result.prompt_version)] = result
