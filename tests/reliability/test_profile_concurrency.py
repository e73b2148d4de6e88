"""20 concurrent updates of one style profile: every record ends up in the final profile.

Each update refits the profile, so this is the slowest reliability test; it has a file of its
own so that pytest-xdist runs it beside the rest of the suite.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reliability_helpers import record, require_route


def test_twenty_concurrent_profile_updates_keep_every_record(aws_env: Any, call: Any) -> None:
    # Given a designer's profile
    create = require_route("POST", "/api/ml/style-profile/create")
    update = require_route("POST", "/api/ml/style-profile/update")
    base = [record(i, i) for i in range(12)]
    status, created = call(create, "POST", "/api/ml/style-profile/create", body={"user_id": "u1", "vlt_records": base})
    assert status == 201, created

    # When 20 updates, each adding its own record, run at once (each Lambda invocation is its own
    # container in AWS; here threads of one process, through the handler, without the local
    # server's 29 s gateway deadline, which 20 refits sharing 2 cores would not meet)
    def add(i: int) -> tuple[int, Any]:
        body = {"user_id": "u1", "vlt_records": [{**record(i, i), "id": f"n{i}"}]}
        return call(update, "POST", "/api/ml/style-profile/update", body=body)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(add, range(20)))

    # Then every update succeeded and the final profile holds every record
    assert [status for status, _ in answers] == [200] * 20, [a for s, a in answers if s != 200]
    status, final = call(create, "GET", "/api/ml/style-profile/u1")
    assert status == 200, final
    profile = final["profile"]
    expected = {r["id"] for r in base} | {f"n{i}" for i in range(20)}
    assert set(profile["assignments"]) == expected
    # (updates that meet may be folded into one refit: the version moves on, by at most 20)
    assert profile["n_records"] == 32 and 2 <= profile["version"] <= 21
