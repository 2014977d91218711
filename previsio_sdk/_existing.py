"""Re-runnable cells: creating what already exists with the same settings gives back the existing resource.

The ``create_*`` methods take ``exist_ok=True``: when the platform answers that the name is taken, the
resource of that name is fetched and compared with what was asked. Same settings: it is returned. Different
settings: :class:`~previsio_sdk.errors.ConflictError` names each difference. Secrets are never compared (the
platform never returns them); only whether one is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from .client import Client
from .errors import ConflictError

T = TypeVar("T")


def differences(existing: Mapping[str, Any], wanted: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """The settings of ``wanted`` that ``existing`` does not have, as ``host 'a' (asked 'b')``.

    A setting left out of ``wanted`` (None, or an empty options dict) is not compared: the platform's default
    or what exists is fine. ``password`` compares only whether one is set.
    """
    found = []
    for key in keys:
        asked = wanted.get(key)
        if asked is None or asked == {} or asked == "":
            continue
        if key == "password":
            if not existing.get("has_password"):
                found.append("password (the existing one has none)")
            continue
        have = existing.get(key)
        if key == "options" and isinstance(have, Mapping):
            have = {k: have.get(k) for k in asked}
        if have != asked:
            found.append(f"{key} {have!r} (asked {asked!r})")
    return found


def existing_or_raise(
    client: Client,
    list_path: str,
    kind: str,
    wanted: Mapping[str, Any],
    keys: Iterable[str],
    build: Callable[[dict[str, Any]], T],
    conflict: ConflictError,
) -> T:
    """The resource named ``wanted["name"]`` at ``list_path`` if it has the settings asked; else raise.

    Args:
        client: Client to list with.
        list_path: The paged list holding the resource (``/projects/<id>/connectors``).
        kind: What it is, for the message (``Connector``).
        wanted: The creation body that was refused.
        keys: The settings to compare.
        build: Makes the resource object from its description.
        conflict: The platform's refusal, raised again when no resource of that name is found.

    Raises:
        ConflictError: The existing resource has other settings (the message and ``details`` name them), or
            none of that name is visible (another conflict).
    """
    name = wanted["name"]
    for item in client.iter_pages(list_path):
        if item.get("name") != name:
            continue
        diffs = differences(item, wanted, keys)
        if diffs:
            raise ConflictError(
                f"{kind} {name!r} already exists with other settings: {'; '.join(diffs)}. Use another name, "
                "or change it with update() / delete it first.",
                status=409,
                code="conflict",
                details={"existing_id": item.get("id"), "differences": diffs},
            )
        return build(item)
    raise conflict
