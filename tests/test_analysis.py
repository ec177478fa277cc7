"""An analysis is checked for shape before it is used: every length the README promises is enforced."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from jobping.analysis import MAX_RED_FLAG_CHARS, MAX_SKILL_CHARS, JobAnalysis

ANSWER: dict[str, Any] = {
    "fit_score": 80,
    "verdict": "apply",
    "seniority": "senior",
    "remote_policy": "hybrid",
    "skills": ["python"],
    "salary_min_yearly": None,
    "salary_max_yearly": None,
    "salary_currency": None,
    "red_flags": [],
    "summary": "A data engineering role.",
}


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        pytest.param("skills", MAX_SKILL_CHARS, id="a skill"),
        pytest.param("red_flags", MAX_RED_FLAG_CHARS, id="a red flag"),
    ],
)
def test_an_answer_with_an_item_longer_than_its_limit_is_refused(field: str, limit: int) -> None:
    assert getattr(JobAnalysis.model_validate(ANSWER | {field: ["x" * limit]}), field) == ["x" * limit]
    with pytest.raises(ValidationError, match=rf"{field}\.1\n  String should have at most {limit} characters"):
        JobAnalysis.model_validate(ANSWER | {field: ["python", "x" * (limit + 1)]})


def test_the_schema_the_llm_answers_in_states_the_item_limits() -> None:
    properties = JobAnalysis.model_json_schema()["properties"]
    assert properties["skills"]["items"]["maxLength"] == MAX_SKILL_CHARS
    assert properties["red_flags"]["items"]["maxLength"] == MAX_RED_FLAG_CHARS
