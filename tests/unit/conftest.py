import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hm_garments.jsonl"


@pytest.fixture(scope="session")
def hm_records():
    if not DATA.exists():
        pytest.skip(f"real catalogue not found at {DATA}")
    with DATA.open() as fh:
        return [json.loads(line) for line in fh]
