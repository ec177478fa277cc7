"""Where the enriched jobs live: a local folder or ``s3://bucket/prefix`` holding two Delta tables.

    enriched_jobs_history/   every analysis ever stored, appended by each batch (storage/delta.py)
    enriched_jobs_latest/    one row per job_key, merged from the history by the maintenance flow
    sightings/               postings a scrape saw again unchanged: job_key and scraped_at, appended by analyse
    scrape_runs/             what each scrape saw of each board and search, appended by scrape (storage/scrape_runs.py)
    quarantine/              data files no reader could read, each with the reason beside it

:class:`Lake` hides whether the lake is local or on S3: the filesystem that reaches it, the
options delta-rs needs, and DuckDB connections able to read it with no download. A path read
from a table's log is untrusted: :meth:`Lake.resolve` places it inside its table or refuses it,
and the quarantine moves only files inside one of the lake's tables (storage/repair.py).
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, unquote, urlsplit

import fsspec

from jobping.errors import ConfigurationError

if TYPE_CHECKING:
    import duckdb

    from jobping.settings import Settings

logger = logging.getLogger(__name__)

HISTORY_TABLE = "enriched_jobs_history"
LATEST_TABLE = "enriched_jobs_latest"
# postings a scrape saw again unchanged: their job_key and the moment, no analysis (storage/sightings.py)
SIGHTINGS_TABLE = "sightings"
# what each scrape run saw of each board and search: the scrape's own log (storage/scrape_runs.py)
SCRAPE_RUNS_TABLE = "scrape_runs"
# where files the readers cannot read are moved, so that one bad file stops no run
QUARANTINE = "quarantine"
# a table's log: a folder of the table, never a data file
DELTA_LOG = "_delta_log"
# a path that starts with a scheme is an absolute URI to Delta readers (file:, s3:, https:, ...)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# the DuckDB extensions a lake needs, shipped on PyPI for the pinned DuckDB (no download here)
DELTA = "delta"
HTTPFS = "httpfs"


def extension_path(name: str) -> Path:
    """The DuckDB extension ``name`` for the running DuckDB, from the duckdb-extension-<name> package."""
    # DuckDB is imported only where it is used: an analyse process never loads it (bench/RESULTS.md, Memory)
    import duckdb  # noqa: PLC0415

    package, version = f"duckdb_extension_{name}", f"v{duckdb.__version__}"
    try:
        found = resources.files(package).joinpath("extensions", version, f"{name}.duckdb_extension")
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"the {package} package is not installed: `make install` installs it") from exc
    path = Path(str(found))
    if not path.is_file():
        raise ConfigurationError(
            f"{package} holds no {name} extension for DuckDB {version}: "
            "install the duckdb and duckdb-extension-* releases requirements.lock pins"
        )
    return path


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """LOAD an extension from its package's file, before the connection's external access is switched off."""
    # LOAD takes no parameter; the path is our own package's, quoted all the same
    con.execute(f"LOAD {sql_literal(str(extension_path(name)))}")


def sql_literal(text: str) -> str:
    """``text`` as a quoted SQL string, for the few values DuckDB takes no parameter for."""
    return "'" + text.replace("'", "''") + "'"


class Lake:
    """The lake's location, and the filesystem, delta-rs options and DuckDB connections that reach it.

    For S3 the credentials come from the usual AWS chain (environment, profile, instance role);
    ``s3_endpoint_url`` points at an S3-compatible store instead of AWS.
    """

    def __init__(
        self,
        location: str | Path,
        *,
        s3_endpoint_url: str | None = None,
        region: str | None = None,
        s3_max_retries: int | None = None,
    ) -> None:
        text = str(location)
        self.remote = text.startswith("s3://")
        self.s3_endpoint_url = s3_endpoint_url
        # None: delta-rs's own number of retries of one request
        self.s3_max_retries = s3_max_retries
        self.region = region or "us-east-1"
        if self.remote:
            # s3fs is imported only for a lake on S3: importing it slows every start-up
            import s3fs  # noqa: PLC0415

            client_kwargs = {"region_name": self.region}
            if s3_endpoint_url:
                client_kwargs["endpoint_url"] = s3_endpoint_url
            # no listing cache: other machines add files at any moment
            self.fs: fsspec.AbstractFileSystem = s3fs.S3FileSystem(
                client_kwargs=client_kwargs, use_listings_cache=False, skip_instance_cache=True
            )
            self.url = text.rstrip("/")
        else:
            self.fs = fsspec.filesystem("file")
            self.url = str(Path(text).expanduser().resolve())

    @classmethod
    def of(cls, lake: Lake | Path | str) -> Lake:
        return lake if isinstance(lake, Lake) else cls(lake)

    @classmethod
    def from_settings(cls, settings: Settings) -> Lake:
        return cls(
            settings.lake_location, s3_endpoint_url=settings.lake.s3_endpoint_url, region=settings.sqs.region,
            s3_max_retries=settings.lake.s3_max_retries,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def join(self, *parts: str) -> str:
        return "/".join([self.url, *parts])

    @property
    def history_uri(self) -> str:
        return self.join(HISTORY_TABLE)

    @property
    def latest_uri(self) -> str:
        return self.join(LATEST_TABLE)

    @property
    def sightings_uri(self) -> str:
        return self.join(SIGHTINGS_TABLE)

    @property
    def scrape_runs_uri(self) -> str:
        return self.join(SCRAPE_RUNS_TABLE)

    @property
    def storage_options(self) -> dict[str, str] | None:
        """delta-rs's options for this lake; keys come from the environment.

        Commits on S3 use its conditional writes (If-None-Match), which delta-rs uses by
        default: two writers never overwrite each other's commit, with no lock table. A store
        without them needs delta-rs's DynamoDB locking provider instead (docs/SCALING.md).
        """
        if not self.remote:
            return None
        options = {"AWS_REGION": self.region}
        if self.s3_endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.s3_endpoint_url
            if self.s3_endpoint_url.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        return options

    @property
    def write_options(self) -> dict[str, str] | None:
        """delta-rs's options for an analyse batch's writes: :attr:`storage_options`, and how often the S3 client
        retries one request before the write fails (then Prefect retries the batch).

        Not for reads: polars, which reads with the same options, wants the retries as a number.
        """
        options = self.storage_options
        if options is None or self.s3_max_retries is None:
            return options
        return options | {"max_retries": str(self.s3_max_retries)}

    def glob(self, pattern: str) -> list[str]:
        """Full paths (with s3:// for a remote lake) matching a pattern under the lake, sorted."""
        found = self.fs.glob(self.join(pattern))
        prefix = "s3://" if self.remote else ""
        return sorted(prefix + str(path) if not str(path).startswith(prefix) else str(path) for path in found)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def connect(self, database: str = ":memory:", **kwargs: Any) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with ``delta_scan``, able to read this lake (on S3 through httpfs)."""
        import duckdb  # noqa: PLC0415 - see extension_path

        con = duckdb.connect(database, **kwargs)
        try:
            load_extension(con, DELTA)
            if self.remote:
                load_extension(con, HTTPFS)
                con.execute(self._s3_secret())
        except BaseException:
            con.close()
            raise
        return con

    def _s3_secret(self) -> str:
        """A temporary DuckDB secret for the lake's bucket, from the AWS credential chain."""
        # boto3 is imported only for a lake on S3, as s3fs is
        import boto3  # noqa: PLC0415

        found = boto3.Session(region_name=self.region).get_credentials()
        options = {"REGION": self.region}
        if found is not None:
            frozen = found.get_frozen_credentials()
            options |= {"KEY_ID": str(frozen.access_key), "SECRET": str(frozen.secret_key)}
            if frozen.token:
                options["SESSION_TOKEN"] = frozen.token
        parts = [f"{key} {sql_literal(value)}" for key, value in options.items()]
        if self.s3_endpoint_url:
            endpoint = self.s3_endpoint_url.split("://", 1)[-1].rstrip("/")
            parts += [f"ENDPOINT {sql_literal(endpoint)}", "URL_STYLE 'path'"]
            parts.append(f"USE_SSL {'false' if self.s3_endpoint_url.startswith('http://') else 'true'}")
        bucket = self.url.split("/", 3)[2]
        return f"CREATE OR REPLACE TEMPORARY SECRET jobping_lake (TYPE s3, {', '.join(parts)}, SCOPE 's3://{bucket}')"

    def resolve(self, table_uri: str, path: str) -> str | None:
        """Where ``path`` (an ``add`` action's, from the log of the table at ``table_uri``) points, if inside it.

        The log is untrusted: the path is URL-decoded as Delta readers decode it, ``..`` is
        normalised and, on a local lake, symlinks are followed; None when the result leaves the
        table's folder, is the folder itself or lies in its log. An absolute path or URI is
        taken only when it lands inside the table too.
        """
        if self.remote:
            return self._resolve_key(table_uri, path)
        root = os.path.realpath(table_uri)
        if SCHEME.match(path):
            parts = _split(path)
            if parts is None or parts.scheme != "file" or parts.netloc not in ("", "localhost"):
                return None
            target = unquote(parts.path)
        else:
            target = os.path.join(root, unquote(path))
        real = os.path.realpath(target)
        if real == root or os.path.commonpath([real, root]) != root:
            return None
        return None if os.path.relpath(real, root).split(os.sep)[0] == DELTA_LOG else real

    def _resolve_key(self, table_uri: str, path: str) -> str | None:
        bucket, _, prefix = table_uri.removeprefix("s3://").partition("/")
        if SCHEME.match(path):
            parts = _split(path)
            if parts is None or parts.scheme not in ("s3", "s3a") or parts.netloc != bucket:
                return None
            key = unquote(parts.path)
        elif path.startswith("/"):
            return None  # a key from the bucket's root or a local path: no reader of ours means either
        else:
            key = f"{prefix}/{unquote(path)}"
        normal = posixpath.normpath("/" + key).lstrip("/")
        if not normal.startswith(prefix + "/") or normal.removeprefix(prefix + "/").split("/")[0] == DELTA_LOG:
            return None
        return f"s3://{bucket}/{normal}"

    def locate(self, path: str) -> tuple[str, str] | None:
        """The table of the lake holding the data file ``path`` once resolved, and the file's path inside it.

        A path named by a reader's error (DuckDB names a file as the log spelled it, ``..`` and all)
        is resolved before it is trusted: None for the quarantine folder, a table's log and every
        place outside a table.
        """
        relative = path.removeprefix(self.url + "/")
        name = relative.split("/", 1)[0]
        if relative == path or "/" not in relative or name in (".", "..", QUARANTINE):
            return None
        table_uri = self.join(name)
        location = self.resolve(table_uri, relative.split("/", 1)[1])
        if location is None:
            return None
        root = self.resolve_root(table_uri)
        return name, location.removeprefix(root + "/")

    def resolve_root(self, table_uri: str) -> str:
        """The table's folder as :meth:`resolve` compares paths with it."""
        if self.remote:
            bucket, _, key = table_uri.removeprefix("s3://").partition("/")
            return f"s3://{bucket}/{posixpath.normpath('/' + key).lstrip('/')}"
        return os.path.realpath(table_uri)

    def quarantine(self, path: str, reason: str) -> str:
        """Move an unreadable data file of one of the lake's tables to ``quarantine/``, with the reason beside it.

        ``path`` is resolved first: a file that is not inside one of the lake's tables (``..``, a
        symlink, an absolute path, the log) is refused with a ValueError, and nothing moves.
        """
        found = self.locate(path)
        if found is None:
            raise ValueError(f"refusing to quarantine {path}: it is not a data file inside one of {self}'s tables")
        name, relative = found
        source = f"{self.resolve_root(self.join(name))}/{relative}"
        target = self.join(QUARANTINE, name, relative)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(source, target)
        self.fs.pipe_file(target + ".reason.txt", reason.encode("utf-8"))
        logger.warning("moved the unreadable %s to %s: %s", source, target, reason)
        return target

    def quarantined(self) -> list[str]:
        """The files moved to quarantine so far."""
        return [p for p in self.glob(f"{QUARANTINE}/**") if p.endswith(".parquet")]


def _split(uri: str) -> SplitResult | None:
    """``uri`` taken apart; None for one no reader can take apart (``s3://[``), which names no file of ours."""
    try:
        return urlsplit(uri)
    except ValueError:
        return None
