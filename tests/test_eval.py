"""`jobping eval`: the figures of an analyser on a labelled set, the set's format, and the export to label."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from jobping.analysis import AnalysisResult, JobAnalysis, Verdict
from jobping.contract import SCRAPE_PRODUCER, JobPosting, envelope_for
from jobping.engine.ports import Analysed
from jobping.fits import fits
from jobping.grouping import Grouping
from jobping.labelled import FORMAT_HELP, LIMITS, bundled_set_text, parse_labelled
from jobping.profile import Profile
from jobping.settings import DEFAULT_PRICES, LlmSettings
from standins.servers import StandIn
from storage.lake import Lake
from storage.store import LakeStore, open_lake
from tasks.llm.analyser import cost_usd
from tasks.llm.evaluate import evaluate
from tests.conftest import FAKE_OPENAI_KEY

JOBPING = shutil.which("jobping", path=str(Path(sys.executable).parent)) or "jobping"
CLI_TIMEOUT_SECONDS = 120
PROFILE = {
    "wanted_titles": ["data engineer"],
    "skills": ["python"],
    "locations": ["berlin"],
    "salary_floor_yearly": 70000,
}
# every figure the report carries, --json included
FIGURES = {
    "model", "min_score", "postings", "unlabelled", "failed", "accuracy", "ping_precision", "ping_recall", "pinged",
    "labelled_pings", "true_pings", "breaks_among_pings", "score_error", "scored", "prompt_tokens",
    "completion_tokens", "cost_usd", "seconds", "goals", "outcomes",
}  # fmt: skip


def line(key: str, verdict: Verdict | None, *, ping: bool | None = None, score: int | None = None,
         limits: list[str] | None = None, profile: object = "p") -> str:  # fmt: skip
    posting = {
        "id": key,
        "site": "indeed",
        "job_url": f"https://example.invalid/{key}",
        "title": f"Data Engineer {key}",
    }
    label: dict[str, Any] = {"verdict": verdict, "limits_broken": limits or []}
    if ping is not None:
        label["ping"] = ping
    if score is not None:
        label["score"] = score
    return json.dumps({"id": key, "profile": profile, "posting": posting, "label": label})


def labelled_file(*lines: str) -> str:
    return "\n".join([json.dumps({"profile_name": "p", "profile": PROFILE}), *lines]) + "\n"


# what the analyser says of each posting (verdict, fit_score); min score 80
ANSWERS: dict[str, tuple[Verdict, int]] = {
    "a": ("apply", 90),  # labelled apply: a true ping, verdict right
    "b": ("apply", 85),  # labelled skip, breaks a limit: a wrong ping and a break
    "c": ("apply", 70),  # labelled apply: verdict right, no ping (under the min score): a missed ping
    "d": ("skip", 10),  # labelled skip: right
    "e": ("maybe", 60),  # labelled apply with ping false: wrong verdict, no ping, rightly
}
TINY = labelled_file(
    line("a", "apply", score=80),
    line("b", "skip", score=20, limits=["places"]),
    line("c", "apply", score=75),
    line("d", "skip"),
    line("e", "apply", ping=False, score=50),
    line("f", None),
)


class Known:
    """An analyser whose answers are the table above: the figures can be worked out by hand."""

    model = "known"
    prompt_version = "known-1"

    async def analyse(self, posting: JobPosting) -> AnalysisResult:
        verdict, score = ANSWERS[str(posting.id)]
        analysis = JobAnalysis(
            fit_score=score, verdict=verdict, seniority="mid", remote_policy="unknown", skills=[],
            salary_min_yearly=None, salary_max_yearly=None, salary_currency=None, red_flags=[], summary="known",
        )  # fmt: skip
        return AnalysisResult(analysis=analysis, model=self.model, prompt_version=self.prompt_version,
                              prompt_tokens=100, completion_tokens=10, cost_usd=0.001)  # fmt: skip


def test_the_figures_of_a_hand_labelled_file_are_those_worked_out_by_hand() -> None:
    labelled = parse_labelled(TINY, "tiny.jsonl", Profile())
    report = asyncio.run(evaluate(labelled, LlmSettings(), 80, make=lambda _llm, _profile: Known()))
    assert (report.postings, report.unlabelled, report.failed) == (5, 1, 0)
    assert report.accuracy == 0.6  # a, c, d
    # pinged: a, b; labelled pings: a, c (e is apply but ping false)
    assert (report.pinged, report.labelled_pings, report.true_pings) == (2, 2, 1)
    assert (report.ping_precision, report.ping_recall) == (0.5, 0.5)
    assert report.breaks_among_pings == 1
    # |80-90| + |20-85| + |75-70| + |50-60| over the 4 labelled scores
    assert (report.score_error, report.scored) == (22.5, 4)
    assert (report.prompt_tokens, report.completion_tokens, report.cost_usd) == (500, 50, 0.005)
    assert [m.id for m in report.mistakes] == ["b", "c", "e"]


def test_the_pings_and_eval_share_one_fits_rule_for_a_value_and_a_table() -> None:
    cases = [("apply", 80), ("apply", 79), ("maybe", 95), ("skip", 100), ("apply", 100)]
    frame = pl.DataFrame({"verdict": [v for v, _ in cases], "fit_score": [s for _, s in cases]})
    by_table = frame.select(fits(pl.col("verdict"), pl.col("fit_score"), 80).alias("fits"))["fits"].to_list()
    assert by_table == [fits(v, s, 80) for v, s in cases] == [True, False, False, False, True]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [JOBPING, *args], env=dict(os.environ), cwd=cwd, capture_output=True, text=True,
        timeout=CLI_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip


@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_json_is_one_object_on_stdout_that_carries_every_figure(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "tiny.jsonl"
    path.write_text(labelled_file(line("a", "apply", score=90), line("b", "skip", limits=["salary"])), encoding="utf-8")
    done = run_cli("eval", str(path), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == FIGURES
    assert (report["postings"], report["min_score"], report["seconds"] >= 0) == (2, 80, True)
    assert [o["id"] for o in report["outcomes"]] == ["a", "b"]
    assert report["goals"] == {"ping_precision": 0.95, "ping_recall": 0.9, "breaks": 0}


@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_help_documents_every_field_of_the_format(env: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("eval", "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for word in ("profile_name", "posting", "label", "verdict", "apply, maybe or skip", "ping", "score",
                 "limits_broken", "note", "job_url", "interval", "--from-lake", "--json", *LIMITS):  # fmt: skip
        assert word in done.stdout, word


@pytest.mark.parametrize(
    ("text", "where"),
    [
        pytest.param(
            labelled_file(line("a", "apply"), line("b", "yes")), "line 3: label.verdict", id="unknown-verdict"
        ),
        pytest.param(labelled_file(line("a", "apply"), "{not json"), "line 3: not JSON", id="not-json"),
        pytest.param(
            labelled_file('{"posting": {"job_url": "https://x.invalid/1"}, "label": {"verdict": "skip"}}'),
            "line 2: posting: invalid posting: title",
            id="no-title",
        ),
        pytest.param(
            labelled_file(line("a", "apply", profile="nobody")), "line 2: profile 'nobody'", id="unknown-profile"
        ),
        pytest.param(
            labelled_file(line("a", "apply", limits=["commute"])), "line 2: label.limits_broken", id="unknown-limit"
        ),
        pytest.param("", "nothing to evaluate: it has no posting lines", id="empty"),
        pytest.param(
            labelled_file(line("a", None)),
            "nothing to evaluate: none of its 1 posting lines has a label.verdict",
            id="all-unlabelled",
        ),
    ],
)
@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_a_bad_file_gives_one_line_naming_the_line_and_the_field(
    env: dict[str, str], tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    done = run_cli("eval", str(path), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    assert f"{path} {where}" in done.stderr or f"{path}: {where}" in done.stderr, done.stderr


def test_the_shipped_set_is_big_enough_in_three_languages_and_labels_no_break_as_a_ping() -> None:
    labelled = parse_labelled(bundled_set_text(), "shipped", Profile())
    assert len(labelled.postings) >= 120
    assert labelled.unlabelled == 0
    assert {case.id.split("-")[0] for case in labelled.postings} == {"en", "de", "fr"}
    assert len({case.profile.fingerprint for case in labelled.postings}) == 3
    assert not [case.id for case in labelled.postings if case.label.limits_broken and case.label.pinged]
    assert {limit for case in labelled.postings for limit in case.label.limits_broken} == set(LIMITS)


def store_postings(settings_dir: Path, scores: dict[str, tuple[Verdict, int]], days_ago: dict[str, int]) -> None:
    """Postings analysed (``days_ago``, else now) and written as the analyse flow writes them: one LakeStore commit."""
    lake = open_lake(Lake.of(settings_dir / "lake"))
    now = datetime.now(UTC)
    analysed = []
    for index, (key, (verdict, score)) in enumerate(scores.items()):
        posting = JobPosting(
            id=key, site="indeed", job_url=f"https://example.invalid/{key}", title=f"Data Engineer {key}",
            company="ACME", location="Berlin", min_amount=80000.0, interval="yearly",
        )  # fmt: skip
        analysis = JobAnalysis(
            fit_score=score, verdict=verdict, seniority="mid", remote_policy="hybrid", skills=["python"],
            salary_min_yearly=80000, salary_max_yearly=None, salary_currency="EUR", red_flags=[], summary=f"{key}",
        )  # fmt: skip
        envelope = envelope_for(posting, now - timedelta(hours=1), producer=SCRAPE_PRODUCER)
        result = AnalysisResult(analysis=analysis, model="m", prompt_version="p1")
        grouping = Grouping(None, envelope.job_key)
        when = now + timedelta(seconds=index) - timedelta(days=days_ago.get(key, 0))
        analysed.append(Analysed(envelope, result, when, f"msg-{key}", grouping))
    LakeStore(lake).write(analysed)


@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_from_lake_exports_pings_and_misses_best_first_and_the_labelled_export_evaluates(
    env: dict[str, str], tmp_path: Path
) -> None:
    stored = {"p1": ("apply", 95), "p2": ("apply", 85), "p3": ("apply", 81), "n1": ("maybe", 70), "n2": ("skip", 20)}
    # the best of all, analysed long before the rest: not a recent posting
    old: dict[str, tuple[Verdict, int]] = {"old": ("apply", 99)}
    store_postings(Path(env["JOBPING_DATA_DIR"]), stored | old, {"old": 40})
    out = tmp_path / "to-label.jsonl"
    done = run_cli("eval", "--from-lake", "--limit", "4", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(text) for text in out.read_text(encoding="utf-8").splitlines()]
    assert [entry["posting"]["id"] for entry in lines] == ["p1", "p2", "n1", "n2"]
    assert [entry["stored"]["fits"] for entry in lines] == [True, True, False, False]
    assert all(entry["label"]["verdict"] is None and "profile" not in entry for entry in lines)
    assert lines[0]["posting"]["min_amount"] == 80000.0
    assert lines[0]["posting"]["company"] == "ACME"
    # the user labels three of the four; the fourth stays unlabelled and is skipped
    for entry, verdict in zip(lines, ["apply", "skip", "maybe"], strict=False):
        entry["label"]["verdict"] = verdict
    out.write_text("".join(json.dumps(entry) + "\n" for entry in lines), encoding="utf-8")
    again = run_cli("eval", "--from-lake", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 2
    assert "never overwritten" in again.stderr
    done = run_cli("eval", str(out), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["postings"], report["unlabelled"], report["failed"]) == (3, 1, 0)
    assert [o["label_verdict"] for o in report["outcomes"]] == ["apply", "skip", "maybe"]


@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_the_llm_path_counts_every_token_and_its_cost_and_keeps_the_set_concurrency(
    standin: StandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBPING_LLM_CONCURRENCY", "3")
    standin.configure(latency_ms=300)
    path = tmp_path / "llm.jsonl"
    path.write_text(labelled_file(*(line(f"k{i}", "apply") for i in range(6))), encoding="utf-8")
    done = run_cli("eval", str(path), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    stats = standin.stats()
    assert (report["postings"], report["failed"], report["model"]) == (6, 0, "gpt-4.1-mini")
    # the stand-in answers 120 completion tokens and 350 or more prompt tokens a request
    assert report["completion_tokens"] == 6 * 120
    assert report["prompt_tokens"] >= 6 * 350
    price = DEFAULT_PRICES["gpt-4.1-mini"]
    assert report["cost_usd"] == pytest.approx(cost_usd(price, report["prompt_tokens"], report["completion_tokens"]))
    assert stats["max_in_flight"] == 3


def test_the_docs_carry_the_format_that_help_prints() -> None:
    docs = (Path(__file__).parents[1] / "docs" / "EVAL.md").read_text(encoding="utf-8")
    assert FORMAT_HELP in docs


@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_the_progress_bar_is_drawn_on_a_terminal_and_never_into_a_pipe(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "tiny.jsonl"
    path.write_text(labelled_file(line("a", "apply"), line("b", "skip")), encoding="utf-8")
    piped = run_cli("eval", str(path), "--json", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""
    terminal, child = pty.openpty()
    drawn = bytearray()

    def read() -> None:
        # the terminal is read while the command writes, so that a full buffer never holds it up
        with contextlib.suppress(OSError):
            while chunk := os.read(terminal, 4096):
                drawn.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    done = subprocess.run(
        [JOBPING, "eval", str(path), "--json"], env=dict(os.environ), cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=child, text=True, timeout=CLI_TIMEOUT_SECONDS, check=False,
    )  # fmt: skip
    os.close(child)
    reader.join(CLI_TIMEOUT_SECONDS)
    os.close(terminal)
    assert done.returncode == 0
    assert b"judging" in drawn
    assert json.loads(done.stdout)["postings"] == 2


@pytest.mark.timeout(CLI_TIMEOUT_SECONDS)
def test_a_key_the_llm_refuses_stops_the_evaluation_with_one_line_that_never_shows_the_key(
    standin: StandIn, tmp_path: Path
) -> None:
    standin.configure(require_key="sk-another-key", echo_key=True)
    path = tmp_path / "llm.jsonl"
    path.write_text(labelled_file(line("k1", "apply"), line("k2", "skip")), encoding="utf-8")
    done = run_cli("eval", str(path), "--json", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "the LLM refused the configuration: AuthenticationError 401" in done.stderr
    assert FAKE_OPENAI_KEY not in done.stderr
    assert FAKE_OPENAI_KEY[-8:] not in done.stderr
