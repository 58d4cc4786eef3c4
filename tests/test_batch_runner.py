"""The worker plan: pool size and zstd threads per pack."""

from __future__ import annotations

import pytest

from fastpack.batch.runner import plan_workers


@pytest.mark.parametrize(
    ("jobs", "pending", "cores", "plan"),
    [(None, 200, 2, (3, 1)), (None, 200, 8, (12, 1)), (None, 1, 8, (1, 8)), (1, 200, 8, (1, 8)), (4, 2, 8, (2, 4))],
)
def test_worker_plan(jobs: int | None, pending: int, cores: int, plan: tuple[int, int]) -> None:
    assert plan_workers(jobs, pending, cores) == plan
