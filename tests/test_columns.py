"""The stored row is declared once (jobping/columns.py): what is made from it agrees with it, and a new
JobSpy field is one line of it."""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import types
import typing
from dataclasses import is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from deltalake import DeltaTable
from pydantic import BaseModel

from jobping import posting, stored
from jobping.analysis import AnalysisResult
from jobping.columns import COLUMNS, ROW_COLUMNS, Column, Kind
from jobping.contract import Envelope, JobPosting
from jobping.settings import Settings
from scripts.columns_table import table
from storage.lake import DELTA, Lake, load_extension
from storage.reader import reader
from storage.rows import ROW_SCHEMA, empty_rows

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("app", "flows", "tasks", "storage", "jobping")
README = (ROOT / "README.md").read_text(encoding="utf-8")
ORIGINS: dict[str, type] = {"jobspy": JobPosting, "envelope": Envelope, "analysis": AnalysisResult, "run": stored._Run}
PYTHON_TYPES: dict[Kind, type] = {
    "text": str, "texts": list, "bool": bool, "int16": int, "int32": int, "int64": int, "float": float, "date": date,
    "timestamp": datetime,
}  # fmt: skip


def annotation_of(origin: type, path: str) -> Any:
    """The type a column's value has where it is read: the field at ``path`` of the model or dataclass."""
    for name in path.split("."):
        if isinstance(origin, type) and issubclass(origin, BaseModel):
            hint = origin.model_fields[name].annotation
        else:
            assert is_dataclass(origin), origin
            hint = typing.get_type_hints(origin)[name]
        origin = hint
    return origin


def kind_and_nullable(hint: Any) -> tuple[type, bool]:
    args = typing.get_args(hint)
    nullable = typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args
    if nullable:
        (hint,) = [arg for arg in args if arg is not type(None)]
    if typing.get_origin(hint) is typing.Literal:
        return type(typing.get_args(hint)[0]), nullable
    return typing.get_origin(hint) or hint, nullable


@pytest.mark.parametrize("column", ROW_COLUMNS, ids=lambda column: column.name)
def test_each_stored_column_has_the_type_and_nullability_of_the_field_it_is_read_from(column: Column) -> None:
    kind, nullable = kind_and_nullable(annotation_of(ORIGINS[column.source], column.read_as))
    assert (kind, nullable) == (PYTHON_TYPES[column.kind], column.nullable)


def typed_posting_fields() -> dict[str, Any]:
    """What mypy knows of a posting: the annotations PostingFields declares for type checking only."""
    tree = ast.parse(inspect.getsource(posting))
    (fields,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "PostingFields"]
    (block,) = [node for node in fields.body if isinstance(node, ast.If)]
    return {
        node.target.id: eval(ast.unparse(node.annotation), vars(posting))
        for node in block.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def test_the_fields_mypy_knows_of_a_posting_have_the_types_the_declaration_makes() -> None:
    typed = typed_posting_fields()
    assert {"title", "job_url", "description"} <= set(typed)
    for name, hint in typed.items():
        assert hint == JobPosting.model_fields[name].annotation, name


def test_the_tables_and_the_views_have_the_declared_columns_in_order() -> None:
    assert list(ROW_SCHEMA) == [column.name for column in ROW_COLUMNS]
    assert empty_rows().columns == [column.name for column in COLUMNS]


def test_the_readme_s_column_table_is_the_one_the_declaration_makes() -> None:
    assert table() in README, "run `python -m scripts.columns_table`"


def test_the_readme_names_the_posting_s_fields_as_jobspy_does() -> None:
    section = README.split("under JobSpy's own names:", 1)[1].split("The analyse flow also accepts", 1)[0]
    named = section.replace("`", "").replace("\n", " ").strip(" .").split(", ")
    assert sorted(named) == sorted(JobPosting.model_fields)


def modules_naming(name: str) -> list[str]:
    word = re.compile(rf"\b{name}\b")
    return sorted(
        str(path.relative_to(ROOT))
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if word.search(path.read_text(encoding="utf-8"))
    )


# the rest of JobSpy's JobPost: fields the code reads by no attribute of its own
PASSED_THROUGH = [c for c in COLUMNS if c.source == "jobspy" and c.read_as not in typed_posting_fields()]


@pytest.mark.parametrize("column", PASSED_THROUGH, ids=lambda column: column.name)
def test_a_jobspy_field_no_code_reads_by_attribute_is_named_in_two_product_modules_at_most(column: Column) -> None:
    assert len(modules_naming(column.read_as)) <= 2, modules_naming(column.read_as)


NEW_COLUMN = '    Column("benefits", "text", "jobspy", max_chars=MAX_SHORT_TEXT_CHARS),\n'
AFTER = 'Column("company_reviews_count"'


def product_with_a_new_column(copy: Path) -> None:
    """A copy of the product whose declaration has one line more: a JobSpy field ``benefits``."""
    for package in PRODUCT:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    declaration = copy / "jobping" / "columns.py"
    lines = declaration.read_text(encoding="utf-8").splitlines(keepends=True)
    (at,) = [i for i, line in enumerate(lines) if AFTER in line]
    lines.insert(at + 1, NEW_COLUMN)
    declaration.write_text("".join(lines), encoding="utf-8")


def changed_lines(copy: Path) -> list[str]:
    """The lines the copy of the product adds or removes."""
    changed = []
    for package in PRODUCT:
        for path in (copy / package).rglob("*.py"):
            old = (ROOT / path.relative_to(copy)).read_text(encoding="utf-8").splitlines()
            new = path.read_text(encoding="utf-8").splitlines()
            diff = difflib.unified_diff(old, new, lineterm="", n=0)
            changed += [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    return changed


def run_flow(env: dict[str, str], *arguments: str, product: Path | None = None) -> dict[str, Any]:
    environ = dict(os.environ) | env | ({"PYTHONPATH": str(product)} if product else {})
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "column_flow.py"), *arguments],
        env=environ, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3_000:]
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_a_jobspy_field_added_to_the_declaration_reaches_the_stored_row_and_the_views(
    tmp_path: Path, env: dict[str, str], settings: Settings
) -> None:
    # a lake stored before the field existed, by the product as it is
    before = run_flow(env, "0")
    assert (before["sent"], before["stored"]) == (1, 1)
    copy = tmp_path / "product"
    product_with_a_new_column(copy)
    changed = changed_lines(copy)
    assert changed == ["+" + NEW_COLUMN.rstrip("\n")]

    after = run_flow(env, "1", "benefits", "gym, lunch", product=copy)
    assert after["product"] == str(copy / "jobping" / "__init__.py")
    assert (after["sent"], after["stored"]) == (1, 1)

    lake = Lake(settings.lake_dir)
    # the table stored before gained the column, typed as the other text columns
    stored_types = {field.name: field.type for field in DeltaTable(lake.history_uri).schema().fields}
    assert stored_types["benefits"] == stored_types["title"]
    query = "SELECT benefits FROM {} ORDER BY benefits NULLS FIRST"
    with reader(lake) as con:
        for view in ("enriched_jobs", "enriched_jobs_history"):
            assert con.execute(query.format(view)).fetchall() == [(None,), ("gym, lunch",)], view
    # the catalog file's views, as a DuckDB shell opens them
    with duckdb.connect(str(settings.catalog_path), read_only=True) as con:
        load_extension(con, DELTA)
        assert con.execute(query.format("enriched_jobs")).fetchall() == [(None,), ("gym, lunch",)]
