"""Writing test rows into a lake the way analyse does: one append commit to the history table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from jobping.stored import StoredRow
from storage.delta import DeltaHistory
from storage.lake import Lake


def write_rows(lake: Lake | Path | str, rows: Sequence[StoredRow] | Sequence[dict[str, object]]) -> list[str]:
    """Append ``rows`` as one commit; the data files that commit added."""
    history = DeltaHistory(Lake.of(lake))
    history.ensure()
    before = set(history.table().file_uris())
    history.append(rows)  # type: ignore[arg-type]
    return sorted(set(history.table().file_uris()) - before)
