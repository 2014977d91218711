"""Migration: copy a project, or some of its datasets with their lineage, to another platform.

Connectors are copied without their secrets (the platform never returns them): they arrive marked as needing
credentials unless ``secrets=`` gives them. Dataset files stream from one platform to the other through a
temporary file, never as a DataFrame. Everything is looked up by name on the other side first, so a second run
after a failure completes the first without duplicating anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._transfer import apply_plan, find_or_create_project, plan_from_project
from .client import Client
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .datasets import Dataset
    from .project import Project


def migrate_project(
    project: Project,
    to: Client | Project,
    datasets: Iterable[Dataset | str] | None = None,
    name: str | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> Project:
    """Copy ``project`` (or the chosen datasets) to another platform (see :meth:`Project.migrate`)."""
    from .project import Project

    chosen = None if datasets is None else list(datasets)
    if chosen is not None and not chosen:
        raise ConfigurationError("datasets= names no dataset; pass None to migrate them all.")
    plan = plan_from_project(project, chosen)
    if isinstance(to, Project):
        target = to
    elif isinstance(to, Client):
        target = find_or_create_project(to, name or project.name, project.description)
    else:
        raise ConfigurationError(f"to= must be a Client or a Project, not {type(to).__name__}.")
    if target.client is project.client and target.id == project.id:
        raise ConfigurationError("Cannot migrate a project into itself.")
    apply_plan(plan, target, secrets=secrets)
    return target


def copy_dataset(dataset: Dataset, other_project: Project, **kwargs: Any) -> Dataset:
    """Copy one dataset with its datasource and connector to ``other_project`` (:meth:`Dataset.copy_to`).

    Returns:
        The dataset in ``other_project`` (the one already there, if a dataset of that name exists).
    """
    from .project import Project

    source = Project.from_id(dataset.project_id, dataset.client)
    migrate_project(source, other_project, datasets=[dataset.name], **kwargs)
    for candidate in other_project.list_datasets():
        if candidate.name == dataset.name:
            return candidate
    raise ConfigurationError(f"Dataset {dataset.name!r} did not arrive in {other_project.name!r}.")
