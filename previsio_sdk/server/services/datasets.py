"""Datasets and the projects that hold them: a deletion removes the files from the dataset store too."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Dataset, Project


def delete_dataset(session: Session, store: Any, row: Dataset) -> None:
    """Delete a dataset, then its file (after the commit: a file is never gone while its row is listed)."""
    dataset_id = row.id
    session.delete(row)
    session.commit()
    store.delete(dataset_id)


def delete_project(session: Session, store: Any, project: Project) -> None:
    """Delete a project with everything it holds (the database cascades), then its datasets' files."""
    dataset_ids = list(session.scalars(select(Dataset.id).where(Dataset.project_id == project.id)))
    session.delete(project)
    session.commit()
    for dataset_id in dataset_ids:
        store.delete(dataset_id)
