"""`jobping eval`: how well the analyser the settings select judges a labelled set, and the export to label."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from app.cli.common import console, error_exit, errors, friendly_errors, load_settings, make_table
from jobping.labelled import BUNDLED_SET, FORMAT_HELP

if TYPE_CHECKING:
    from tasks.llm.evaluate import EvalReport, Judged

DEFAULT_EXPORT_LIMIT = 50
DEFAULT_SHOWN_MISTAKES = 10
MAX_NOTE_CHARS = 60
# click rewraps every help paragraph but one that starts with this line: the format keeps its layout
NO_REWRAP = "\b\n"
PARAGRAPH = "\n\n"

EVAL_HELP = f"""Measure the analyser the settings select (offline unless an LLM is configured) on a labelled set.

Each posting goes the analyse flow's way (the queue's validation, the analyser's prompt and answer
checks, the hard limits), and the figures are: verdict accuracy, ping precision and recall at
JOBPING_NOTIFY_MIN_SCORE, hard-limit breaks among the pings, the score's mean absolute error,
tokens, cost and seconds. Without FILE, the shipped synthetic set (jobping/eval/{BUNDLED_SET}).
Unlabelled lines (no label.verdict) are skipped and counted.

--from-lake --out FILE writes recent postings of your own lake (analysed within 30 days of its
newest) to label, half that fit and half that do not, best first, each with the stored analysis
under "stored"; fill in each label, then run jobping eval FILE.

{NO_REWRAP}{FORMAT_HELP.replace(PARAGRAPH, PARAGRAPH + NO_REWRAP)}"""


@contextmanager
def _progress(total: int) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; else nothing is drawn."""
    if not errors.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=errors, transient=True) as progress:
        task = progress.add_task("judging", total=total)
        yield lambda: progress.advance(task)


def _print_report(report: EvalReport, shown: int) -> None:
    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    rows = [
        ("analyser", report.model),
        ("postings", f"{report.postings} ({report.unlabelled} unlabelled skipped, {report.failed} failed)"),
        ("verdict accuracy", ratio(report.accuracy)),
        (
            f"ping precision (min score {report.min_score})",
            f"{ratio(report.ping_precision)} ({report.true_pings} of {report.pinged} pinged; goal >= "
            f"{report.goals['ping_precision']})",
        ),
        (
            "ping recall",
            f"{ratio(report.ping_recall)} ({report.true_pings} of {report.labelled_pings} labelled pings; goal >= "
            f"{report.goals['ping_recall']})",
        ),
        ("hard-limit breaks among pings", f"{report.breaks_among_pings} (goal {report.goals['breaks']:g})"),
        (
            "score error (mean absolute)",
            "-" if report.score_error is None else f"{report.score_error:.1f} over {report.scored}",
        ),
        ("tokens", f"{report.prompt_tokens} prompt + {report.completion_tokens} completion"),
        ("cost", f"${report.cost_usd:.4f}"),
        ("seconds", f"{report.seconds:.2f}"),
    ]
    console.print(make_table(["figure", "value"], rows, title="jobping eval"))
    mistakes = report.mistakes
    if mistakes and shown:
        columns = ["id", "title", "label", "got", "score", "ping: label/got", "limits", "note"]
        cells = [
            [
                m.id,
                m.title,
                m.label_verdict,
                m.error or m.verdict,
                m.fit_score,
                f"{'yes' if m.label_ping else 'no'}/{'yes' if m.pinged else 'no'}",
                ", ".join(m.limits_broken),
                m.note[:MAX_NOTE_CHARS],
            ]
            for m in mistakes[:shown]
        ]
        console.print(
            make_table(columns, cells, title=f"{len(mistakes)} disagreements (first {min(shown, len(mistakes))})")
        )


def _export(out: Path, limit: int) -> None:
    from storage.candidates import as_jsonl, candidates
    from storage.lake import Lake

    settings = load_settings()
    if out.exists():
        raise error_exit(f"{out} exists: give another --out, a file of labels is never overwritten", 2)
    with friendly_errors():
        lines = candidates(Lake.from_settings(settings), settings.notify.min_score, limit)
    if not lines:
        raise error_exit(f"the lake at {settings.lake_location} holds no analysed posting to label yet")
    try:
        out.write_text(as_jsonl(lines), encoding="utf-8")
    except OSError as exc:
        raise error_exit(f"cannot write {out}: {exc.strerror}") from exc
    fitting = sum(1 for line in lines if line["stored"]["fits"])
    console.print(
        Text(f"wrote {len(lines)} postings to label to {out} ({fitting} that fit, {len(lines) - fitting} that do not); "
             f"fill in each label, then: jobping eval {out}"),
        soft_wrap=True,
    )  # fmt: skip


def evaluate(
    file: Annotated[
        Path | None, typer.Argument(help="A labelled set (JSON Lines, format below); default: the shipped one.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with every figure on stdout.")] = False,
    show: Annotated[
        int, typer.Option(min=0, max=10_000, help="Show this many disagreements.")
    ] = DEFAULT_SHOWN_MISTAKES,
    from_lake: Annotated[
        bool, typer.Option("--from-lake", help="Export postings of your lake to label (with --out), instead.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="With --from-lake: this many postings.")] = (
        DEFAULT_EXPORT_LIMIT
    ),
    out: Annotated[Path | None, typer.Option(help="With --from-lake: the file to write (never overwritten).")] = None,
) -> None:
    from jobping.labelled import bundled_set_text, parse_labelled, read_labelled
    from jobping.profile import load_profile
    from tasks.llm.evaluate import evaluate as run_evaluation

    if from_lake:
        if out is None:
            raise error_exit("--from-lake needs --out FILE: where to write the postings to label", 2)
        _export(out, limit)
        return
    settings = load_settings()
    with friendly_errors():
        profile = load_profile(settings.profile_path)
        labelled = (
            read_labelled(file, profile)
            if file is not None
            else parse_labelled(bundled_set_text(), f"shipped {BUNDLED_SET}", profile)
        )
        with _progress(len(labelled.postings)) as advance:

            def judged(_: Judged) -> None:
                if advance is not None:
                    advance()

            report = asyncio.run(run_evaluation(labelled, settings.llm, settings.notify.min_score, on_judged=judged))
    if as_json:
        sys.stdout.write(json.dumps(report.as_json(), ensure_ascii=False) + "\n")
        return
    _print_report(report, show)
