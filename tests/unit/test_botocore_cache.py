"""botocore's data files through the shared package's marshal cache (storage.py)."""

from __future__ import annotations

import json
from pathlib import Path

import botocore
import pytest

from designer_ml import storage


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setattr(storage, "_DATA_CACHE", folder)
    return folder


def _model_path() -> str:
    """The DynamoDB service model's path without extension, as botocore asks for it."""
    data = Path(botocore.__file__).parent / "data" / "dynamodb"
    version = sorted(p.name for p in data.iterdir() if p.is_dir())[-1]
    return str(data / version / "service-2")


def test_a_file_decoded_once_is_read_back_from_the_cache_unchanged(cache: Path, monkeypatch) -> None:
    loader = storage._PlainJSONFileLoader()
    first = loader.load_file(_model_path())
    entries = list(cache.glob("*.marshal"))

    # When it is loaded again, JSON decoding is not used
    monkeypatch.setattr(storage.json, "loads", lambda *_: pytest.fail("decoded JSON despite the cache"))
    again = loader.load_file(_model_path())

    assert len(entries) == 1 and first == again
    assert first["metadata"]["serviceId"] == "DynamoDB" and type(again) is dict


def test_clients_built_from_the_cache_behave_as_botocores_own(cache: Path) -> None:
    built = storage.build_data_cache()
    session = storage.new_session()
    client = session.create_client("dynamodb", region_name="us-east-1")
    stock = botocore.session.get_session().create_client("dynamodb", region_name="us-east-1")

    assert len(built) >= 7, [p.name for p in built]
    assert sorted(client.meta.service_model.operation_names) == sorted(stock.meta.service_model.operation_names)
    assert client.meta.endpoint_url == stock.meta.endpoint_url


def test_a_corrupt_or_stale_entry_falls_back_to_json(cache: Path, monkeypatch) -> None:
    loader = storage._PlainJSONFileLoader()
    expected = loader.load_file(_model_path())
    (entry,) = cache.glob("*.marshal")
    entry.write_bytes(b"\x00not marshal")
    assert loader.load_file(_model_path()) == expected

    # Another botocore release names another entry: the old one is not read
    monkeypatch.setattr(botocore, "__version__", "0.0.0-other")
    entry.write_bytes(b"\x00not marshal")
    decoded: list[int] = []
    real = json.loads
    monkeypatch.setattr(storage.json, "loads", lambda raw: decoded.append(1) or real(raw))
    assert loader.load_file(_model_path()) == expected and decoded == [1]
    assert len(list(cache.glob("*.marshal"))) == 2


def test_an_unwritable_cache_folder_only_costs_the_speed(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setattr(storage, "_DATA_CACHE", blocker / "cache")
    loader = storage._PlainJSONFileLoader()
    assert loader.load_file(_model_path())["metadata"]["serviceId"] == "DynamoDB"
    assert loader.load_file(str(tmp_path / "no-such-file")) is None
