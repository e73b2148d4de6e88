"""Fixtures of the selection tests."""

from __future__ import annotations

from typing import Any

import pytest
from selection_helpers import mode_pool_images


@pytest.fixture
def mode_pool() -> list[dict[str, Any]]:
    """4 modes × 5 variants, interleaved so that pool order says nothing about modes."""
    return mode_pool_images()
