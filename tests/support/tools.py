"""External programs some tests drive (curl, node, npm).

``./scripts/test.sh`` installs them where it can. A test that needs one calls ``require``:
without it the test is skipped on a developer's machine, but fails under ``CI=true``, so CI can
never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(*programs: str) -> list[str]:
    return [program for program in programs if shutil.which(program) is None]


def require(*programs: str) -> None:
    """Skip (fail under CI=true) unless every program is on PATH."""
    absent = missing(*programs)
    if absent:
        _absent(f"{', '.join(absent)} not installed; ./scripts/test.sh installs it")


def require_file(path: Path, what: str) -> None:
    """Skip (fail under CI=true) unless ``path`` exists: ``what`` names it and its installer."""
    if not path.exists():
        _absent(f"{what} is not installed ({path} is missing)")


def _absent(message: str) -> None:
    if in_ci():
        pytest.fail(f"{message}. CI must run these tests, not skip them.", pytrace=False)
    pytest.skip(message)
