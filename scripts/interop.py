"""make interop: the lake's tables read by engines that do not know jobping, against its own views.

A lake of generated rows (synthetic) is written as analyse writes it, maintained, and then
given one more batch, so that ``enriched_jobs`` joins the latest table to recent history.
Then each engine reads the tables and must get exactly the rows of ``enriched_jobs_history``
and, deduplicated, of ``enriched_jobs``:

- polars ``scan_delta``, deltalake's pyarrow dataset, DuckDB ``delta_scan`` (always);
- Spark in local mode, with Java and a Python that has pyspark (``--spark-python``, which
  ``make interop`` prepares in ``.venv-interop``). With the Delta jars (``--delta-jars``, or
  ``--delta-package`` when Maven Central answers) Spark reads the tables as Delta; without
  them it reads their folders as plain hive-partitioned Parquet, which is right once a
  vacuum with no retention has left only the current snapshot's files.

Exit 0 when every engine that ran agrees, 1 when one does not; an engine that could not run
is named as NOT RUN with the reason.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
from deltalake import DeltaTable

from bench.lake import add_night, generate
from storage.lake import DELTA, Lake, load_extension
from storage.maintenance import maintain
from storage.reader import reader
from storage.views import HISTORY_VIEW, LATEST_VIEW

KEY = ["job_key", "message_id", "fit_score"]
Rows = list[tuple[object, ...]]

SPARK_READ = textwrap.dedent(
    """
    import json, sys
    from pyspark.sql import SparkSession, Window, functions as F
    history, latest, form, jars = sys.argv[1:5]
    builder = SparkSession.builder.master("local[1]").appName("jobping-interop")
    if form == "delta":
        builder = (builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
                   .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"))
        builder = builder.config("spark.jars", jars) if jars.endswith(".jar") or "," in jars else builder.config(
            "spark.jars.packages", jars)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    def read(path):
        if form == "delta":
            return spark.read.format("delta").load(path)
        return spark.read.option("basePath", path).parquet(path)
    key = ["job_key", "message_id", "fit_score"]
    h = read(history)
    newest = Window.partitionBy("job_key").orderBy(F.col("analysed_at").desc(), F.col("message_id").desc())
    deduped = h.withColumn("n", F.row_number().over(newest)).where("n = 1")
    out = {name: sorted([list(r) for r in frame.select(*key).collect()])
           for name, frame in (("history", h), ("deduplicated", deduped), ("latest table", read(latest)))}
    print(json.dumps(out))
    """
)


def keys(frame: pl.DataFrame) -> Rows:
    return sorted(frame.select(KEY).iter_rows())


def deduplicated(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["analysed_at", "message_id"], descending=True).unique("job_key", keep="first")


def make_lake(folder: Path, rows: int) -> Lake:
    lake = Lake(folder)
    generate(lake, rows, max(1, rows // 500))
    # no retention: the folders then hold only the current snapshot, for a plain Parquet reader
    maintain(lake, retention=timedelta(0))
    add_night(lake, rows=100, files=2, key_space=int(rows * 0.9))
    maintain(lake, retention=timedelta(0))
    add_night(lake, rows=50, files=1, key_space=int(rows * 0.9), seed=8)
    return lake


def views(lake: Lake) -> tuple[Rows, Rows]:
    with reader(lake) as con:
        columns = ", ".join(KEY)
        history = sorted(con.execute(f"SELECT {columns} FROM {HISTORY_VIEW}").fetchall())
        latest = sorted(con.execute(f"SELECT {columns} FROM {LATEST_VIEW}").fetchall())
    return history, latest


def python_engines(lake: Lake) -> dict[str, pl.DataFrame]:
    arrow = DeltaTable(lake.history_uri).to_pyarrow_dataset().to_table()
    with duckdb.connect() as con:
        load_extension(con, DELTA)
        scanned = con.execute("SELECT * FROM delta_scan(?)", [lake.history_uri]).pl()
    return {
        "polars scan_delta": pl.scan_delta(lake.history_uri).collect(),
        "deltalake pyarrow dataset": pl.DataFrame(arrow),
        "duckdb delta_scan": scanned,
    }


def spark(lake: Lake, python: str, jars: str | None) -> dict[str, Rows] | str:
    """What Spark read, or why it did not run."""
    if shutil.which("java") is None:
        return "NOT RUN: no java on PATH"
    if shutil.which(python) is None:
        return f"NOT RUN: no {python} (`make interop` makes it, with pyspark)"
    probe = subprocess.run([python, "-c", "import pyspark"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"NOT RUN: {python} has no pyspark (`make interop` installs it in .venv-interop)"
    form = "delta" if jars else "parquet"
    done = subprocess.run(
        [python, "-c", SPARK_READ, lake.history_uri, lake.latest_uri, form, jars or ""],
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip
    if done.returncode != 0:
        return f"FAILED: {done.stderr.strip()[-2000:]}"
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: [tuple(row) for row in rows] for name, rows in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=20_000, help="generated rows before the last batches")
    parser.add_argument("--spark-python", default=".venv-interop/bin/python", help="a Python with pyspark")
    parser.add_argument("--delta-jars", help="comma-separated delta-spark and delta-storage jars, for Spark")
    parser.add_argument("--delta-package", help="e.g. io.delta:delta-spark_2.13:4.0.0, fetched from Maven")
    args = parser.parse_args()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="jobping-interop-") as tmp:
        lake = make_lake(Path(tmp) / "lake", args.rows)
        history, latest = views(lake)
        print(f"{len(history):,} rows in {HISTORY_VIEW}, {len(latest):,} in {LATEST_VIEW} (synthetic rows)")
        for engine, frame in python_engines(lake).items():
            agrees = keys(frame) == history and keys(deduplicated(frame)) == latest
            print(f"{engine}: {'the same rows' if agrees else 'DIFFERENT rows'}")
            if not agrees:
                problems.append(engine)
        read = spark(lake, args.spark_python, args.delta_jars or args.delta_package)
        if isinstance(read, str):
            print(f"spark: {read}")
            if read.startswith("FAILED"):
                problems.append("spark")
        else:
            how = "as Delta" if (args.delta_jars or args.delta_package) else "its folders as plain Parquet"
            table = keys(pl.scan_delta(lake.latest_uri).collect())
            for name, expected in (("history", history), ("deduplicated", latest), ("latest table", table)):
                agrees = read[name] == expected
                print(f"spark reading {how}, {name}: {'the same rows' if agrees else 'DIFFERENT rows'}")
                if not agrees:
                    problems.append(f"spark {name}")
    if problems:
        print(f"disagree: {', '.join(problems)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
