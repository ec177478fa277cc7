"""The claims every analyse consumer shares, as small JSON files beside the tables: ``<lake>/claims/``.

One file per generation of a stored version's claim, named by a hash of the version, never by
anything a message says: ``claims/<sha256>.<generation>.json``. A generation is created only if it
does not exist yet: on a local lake by a hard link to a complete temporary file (``link`` fails when
the name exists), on S3 by a conditional PUT (``If-None-Match: *``). One creator wins, on one machine
or many, and no reader ever sees half a claim. The rules of claims live in jobping.engine.claims.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError
from pydantic import ValidationError

from jobping.engine.ports import ClaimEntry, ClaimRecord, StoredVersion, UnreadableClaim
from jobping.errors import ConfigurationError, TransientError, describe
from storage.lake import Lake

logger = logging.getLogger(__name__)

FOLDER = "claims"
# a claim with an answer is a few KB; more is not a claim of ours
MAX_CLAIM_BYTES = 65_536
NAME = re.compile(r"^(?P<digest>[0-9a-f]{64})\.(?P<generation>[0-9]{1,6})\.json$")
TEMPORARY_PREFIX = ".tmp-"
# S3 answers a conditional PUT racing another one with 409 ConditionalRequestConflict: the other goes first
S3_CONFLICT = "ConditionalRequestConflict"


def claim_name(version: StoredVersion, generation: int) -> str:
    # a scraped posting's claim is its own: a stranger's copy of its content in flight does not make it stored
    parts = (version.job_key, version.content_hash, version.prompt_version, *(("scraped",) if version.scraped else ()))
    key = "\x00".join(parts)
    return f"{hashlib.sha256(key.encode('utf-8')).hexdigest()}.{generation}.json"


def parse_claim(data: bytes) -> ClaimEntry | UnreadableClaim:
    if len(data) > MAX_CLAIM_BYTES:
        return UnreadableClaim(f"over {MAX_CLAIM_BYTES} bytes")
    try:
        return ClaimEntry.model_validate_json(data)
    except ValidationError as exc:
        return UnreadableClaim(f"not a claim ({describe(exc, show_input=False)})")


def lake_claims(lake: Lake) -> ClaimRecord:
    """The claims of ``lake``, local or on S3."""
    return S3Claims(lake) if lake.remote else LocalClaims(Path(lake.url))


@contextmanager
def _io(what: str) -> Iterator[None]:
    """The record's failures as the engine judges them: a refusal is configuration, the rest may pass."""
    try:
        yield
    except PermissionError as exc:
        raise ConfigurationError(f"the lake's claims cannot be {what}: {exc}") from exc
    except (OSError, BotoCoreError) as exc:
        raise TransientError(f"the lake's claims could not be {what}: {exc}") from exc


def _prunable(names: list[tuple[str, float]], cutoff: float) -> list[str]:
    """Of (name, modified) pairs, the claims whose generations are all older than ``cutoff``, and old temporaries."""
    versions: dict[str, list[tuple[str, float]]] = {}
    old: list[str] = []
    for name, modified in names:
        found = NAME.match(name)
        if found is not None:
            versions.setdefault(found["digest"], []).append((name, modified))
        elif name.startswith(TEMPORARY_PREFIX) and modified < cutoff:
            old.append(name)
    for generations in versions.values():
        # a generation pruned before a newer one would let a claim be created again under it
        if all(modified < cutoff for _, modified in generations):
            old.extend(name for name, _ in generations)
    return old


class LocalClaims:
    """Claims in a local lake's ``claims/`` folder, which must stay inside the lake."""

    def __init__(self, lake_dir: Path) -> None:
        self.folder = lake_dir / FOLDER
        if self.folder.is_symlink() or (self.folder.exists() and not self.folder.is_dir()):
            raise ConfigurationError(f"{self.folder} is not a folder of the lake: remove it, jobping makes it again")
        with _io("created"):
            self.folder.mkdir(parents=True, exist_ok=True)
        if not self.folder.resolve().is_relative_to(lake_dir.resolve()):
            raise ConfigurationError(f"{self.folder} leads outside the lake: remove it, jobping makes it again")

    def read(self, version: StoredVersion, generation: int) -> ClaimEntry | UnreadableClaim | None:
        path = self.folder / claim_name(version, generation)
        with _io("read"):
            try:
                # no link followed, no fifo waited on
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return UnreadableClaim("a symbolic link")
                raise
            with os.fdopen(fd, "rb") as file:
                if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                    return UnreadableClaim("not a regular file")
                return parse_claim(file.read(MAX_CLAIM_BYTES + 1))

    def create(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> bool:
        with _io("written"):
            temporary = self._write_temporary(entry)
            try:
                os.link(temporary, self.folder / claim_name(version, generation))
            except FileExistsError:
                return False
            finally:
                temporary.unlink(missing_ok=True)
        return True

    def replace(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> None:
        with _io("written"):
            temporary = self._write_temporary(entry)
            try:
                os.replace(temporary, self.folder / claim_name(version, generation))
            finally:
                temporary.unlink(missing_ok=True)

    def prune(self, older_than: datetime) -> int:
        with _io("pruned"), os.scandir(self.folder) as entries:
            names = [(entry.name, entry.stat(follow_symlinks=False).st_mtime) for entry in entries]
        old = _prunable(names, older_than.timestamp())
        for name in old:
            (self.folder / name).unlink(missing_ok=True)
        return len(old)

    def _write_temporary(self, entry: ClaimEntry) -> Path:
        path = self.folder / f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(entry.model_dump_json().encode("utf-8"))
        return path


class S3Claims:
    """Claims under ``s3://bucket/prefix/claims/``, created by conditional PUTs.

    ``If-None-Match: *`` is what AWS S3 (since August 2024) and moto's server honour; a store that
    ignores it lets two consumers both create a generation, and a duplicate is then analysed twice.
    """

    def __init__(self, lake: Lake) -> None:
        self.fs = lake.fs
        self.folder = lake.join(FOLDER)

    def _path(self, version: StoredVersion, generation: int) -> str:
        return f"{self.folder}/{claim_name(version, generation)}"

    def read(self, version: StoredVersion, generation: int) -> ClaimEntry | UnreadableClaim | None:
        with _io("read"):
            try:
                data = self.fs.cat_file(self._path(version, generation), start=0, end=MAX_CLAIM_BYTES + 1)
            except FileNotFoundError:
                return None
        return parse_claim(bytes(data))

    def create(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> bool:
        with _io("written"):
            try:
                self.fs.pipe_file(self._path(version, generation), entry.model_dump_json().encode(), mode="create")
            except FileExistsError:
                return False
            except OSError as exc:
                if S3_CONFLICT in str(exc):
                    return False
                raise
        return True

    def replace(self, version: StoredVersion, generation: int, entry: ClaimEntry) -> None:
        with _io("written"):
            self.fs.pipe_file(self._path(version, generation), entry.model_dump_json().encode())

    def prune(self, older_than: datetime) -> int:
        with _io("pruned"):
            try:
                listed = self.fs.ls(self.folder, detail=True)
            except FileNotFoundError:
                return 0
            names = [
                (str(info["name"]).rsplit("/", 1)[-1], info["LastModified"].timestamp())
                for info in listed
                if "LastModified" in info
            ]
            old = _prunable(names, older_than.timestamp())
            if old:
                self.fs.rm([f"{self.folder}/{name}" for name in old])
        return len(old)
