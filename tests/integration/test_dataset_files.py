"""The embedded local platform lets an SDK on the same machine read a dataset's file in place."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow.parquet as pq

import previsio_sdk as pio


def test_the_local_platform_shares_the_dataset_file_and_to_arrow_reads_it(project: pio.Project, tmp_path):
    """The local-mode platform gives the file's path and size; to_arrow equals the downloaded copy."""
    frame = pd.DataFrame({"id": range(5000), "label": [f"row {i}" for i in range(5000)]})
    dataset = project.create_dataset("shared", dataframe=frame, progress=False)
    info = project.client.get(f"/datasets/{dataset.id}/file")
    assert os.path.isabs(info["path"]) and os.path.getsize(info["path"]) == dataset.size_bytes
    assert dataset._local_file() == info["path"]
    downloaded = pq.read_table(dataset.download(tmp_path / "copy.parquet"))
    assert dataset.to_arrow().equals(downloaded)


def test_a_shared_path_whose_size_does_not_match_is_not_trusted(project: pio.Project, monkeypatch):
    """If the file at the given path is not the dataset's (another size), the SDK downloads instead."""
    dataset = project.create_dataset("sized", dataframe=pd.DataFrame({"a": [1, 2]}), progress=False)
    client = project.client
    real_get = client.get

    def lying_get(path: str, /, **params):
        answer = real_get(path, **params)
        if path.endswith("/file"):
            answer = {**answer, "size_bytes": answer["size_bytes"] + 1}
        return answer

    monkeypatch.setattr(client, "get", lying_get)
    assert dataset._local_file() is None
    assert dataset.to_pandas()["a"].tolist() == [1, 2]


def test_the_file_of_a_dataset_is_not_visible_to_a_caller_without_a_token(platform, project: pio.Project):
    """GET /datasets/{id}/file needs a token like every route."""
    import requests

    dataset = project.create_dataset("private", dataframe=pd.DataFrame({"a": [1]}), progress=False)
    assert requests.get(f"{platform.url}/api/v1/datasets/{dataset.id}/file", timeout=10).status_code == 401
