"""How resources show themselves: a one-line ``repr``, an HTML view for notebooks, and lists as one table.

Every resource class takes :func:`resource_repr` and :func:`resource_html` as its ``__repr__`` and
``_repr_html_``, and :class:`Documented` as its metaclass (so ``help()`` shows the documented API, not the
machinery attrs adds). ``list_*`` methods return a :class:`ResourceList`: a plain ``list`` that displays
as one table and converts with :meth:`ResourceList.to_pandas`. Nothing here ever shows a secret: connectors
show their address and type, tokens their id, never a password or a token value.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

#: Names attrs adds to a class that say nothing to a user reading ``help()``.
_INTERNAL_NAMES = frozenset(
    {
        "__attrs_attrs__",
        "__attrs_props__",
        "__attrs_own_setattr__",
        "__attrs_pre_init__",
        "__attrs_post_init__",
        "__getstate__",
        "__setstate__",
        "__match_args__",
        "__eq__",
        "__ne__",
        "__lt__",
        "__le__",
        "__gt__",
        "__ge__",
        "__hash__",
        "__setattr__",
        "__delattr__",
        "__weakref__",
        "__slots__",
        "__dict__",
        "__annotations__",
        "__init__",
    }
)
#: Option keys never shown, whatever a connector's type puts in its options.
_SECRET_HINTS = ("password", "secret", "token", "key", "credential", "passphrase")
_HEAD_ROWS = 5
_QUERY_CHARS = 60


class Documented(type):
    """Metaclass of the resource classes: ``help()`` lists their documented API only.

    ``pydoc`` lists what ``dir(cls)`` gives; this ``dir`` leaves out private names and what attrs generates
    (``__attrs_attrs__``, ``__getstate__``...), and keeps ``_repr_html_``.
    """

    def __dir__(cls) -> list[str]:
        return sorted(
            name
            for name in type.__dir__(cls)
            if name == "_repr_html_"
            or (name not in _INTERNAL_NAMES and (name.startswith("__") or not name.startswith("_")))
        )


# -- formatting of values ------------------------------------------------------------------------------------
def human_bytes(n: int | None) -> str:
    """A size in decimal units: ``10.7 MB``, ``512 B``."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def when(value: datetime | None) -> str:
    """A time as ``2026-12-01 13:23 UTC`` (naive times are taken as UTC)."""
    if value is None:
        return "?"
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def count(n: int | None) -> str:
    """A count with thousands separators: ``200,000``."""
    return "?" if n is None else f"{n:,}"


def _short(text: str | None, limit: int = _QUERY_CHARS) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_options(options: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (options or {}).items() if not any(h in k.lower() for h in _SECRET_HINTS)}


# -- one line and one row per resource -----------------------------------------------------------------------
def connector_address(c: Any) -> str:
    """Where a connector points, as a URL without any secret: ``postgresql://me@db:5432/sales``."""
    if c.type == "sql" and c.driver == "sqlite":
        return f"sqlite:///{c.database or ''}"
    scheme = c.driver if c.type == "sql" and c.driver else c.type
    if c.type == "local":
        return f"local://{c.options.get('root') or c.host or ''}"
    if c.type == "http" and c.host and "://" in c.host:
        return c.host
    user = f"{c.username}@" if c.username else ""
    port = f":{c.port}" if c.port else ""
    database = f"/{c.database}" if c.database else ""
    return f"{scheme}://{user}{c.host or ''}{port}{database}"


def datasource_target(d: Any) -> str:
    """What a datasource reads: ``table sales.orders``, ``query SELECT …``, ``file lake/2024/x.csv``."""
    if d.request:
        return f"query {_short(d.request)}"
    if d.table:
        return f"table {d.database + '.' if d.database else ''}{d.table}"
    if d.path or d.bucket:
        return f"file {d.bucket + '/' if d.bucket else ''}{d.path or ''}"
    return "?"


def exporter_target(e: Any) -> str:
    """Where an exporter writes: ``table public.orders_copy`` or ``file out/orders.csv``."""
    if e.table:
        return f"table {e.database + '.' if e.database else ''}{e.table}"
    return f"file {e.bucket + '/' if e.bucket else ''}{e.path or ''}"


def _duration(start: datetime | None, end: datetime | None) -> str:
    return "" if start is None or end is None else f"{(end - start).total_seconds():.1f} s"


def _line_and_row(obj: Any) -> tuple[str, dict[str, Any]]:
    """The one-line description of ``obj`` and its row in a list's table (by class name, base classes too)."""
    for cls in type(obj).__mro__:
        render = _RENDERERS.get(cls.__name__)
        if render is not None:
            return render(obj)
    return type(obj).__name__, {}


def _dataset(d: Any) -> tuple[str, dict[str, Any]]:
    line = (
        f"'{d.name}' {count(d.num_rows)} rows × {len(d.schema)} columns, {human_bytes(d.size_bytes)}, "
        f"{when(d.created_at)}"
    )
    row = {
        "name": d.name,
        "rows": d.num_rows,
        "columns": len(d.schema),
        "size": human_bytes(d.size_bytes),
        "created": when(d.created_at),
        "origin": d.origin,
        "id": d.id,
    }
    return line, row


def _project(p: Any) -> tuple[str, dict[str, Any]]:
    desc = f" — {_short(p.description, 40)}" if p.description else ""
    line = f"'{p.name}'{desc}, created {when(p.created_at)}"
    row = {"name": p.name, "description": p.description or "", "created": when(p.created_at), "id": p.id}
    return line, row


def _connector(c: Any) -> tuple[str, dict[str, Any]]:
    flags = []
    if c.has_password:
        flags.append("password set")
    if c.needs_credentials:
        flags.append("needs credentials")
    line = f"'{c.name}' {connector_address(c)}" + (f", {', '.join(flags)}" if flags else "")
    row = {
        "name": c.name,
        "type": c.type if not c.driver else f"{c.type}/{c.driver}",
        "address": connector_address(c),
        "password set": c.has_password,
        "created": when(c.created_at),
        "id": c.id,
    }
    return line, row


def _datasource(d: Any) -> tuple[str, dict[str, Any]]:
    line = f"'{d.name}' {datasource_target(d)}"
    row = {"name": d.name, "reads": datasource_target(d), "created": when(d.created_at), "id": d.id}
    return line, row


def _exporter(e: Any) -> tuple[str, dict[str, Any]]:
    mode = getattr(e.write_mode, "value", e.write_mode)
    line = f"'{e.name}' → {exporter_target(e)} ({mode})"
    row = {"name": e.name, "writes": exporter_target(e), "write mode": mode, "id": e.id}
    return line, row


def _export(x: Any) -> tuple[str, dict[str, Any]]:
    rows = x.rows if x.rows is not None else x.progress_rows
    took = _duration(x.started_at or x.created_at, x.finished_at)
    line = f"{x.status} {count(rows)} rows" + (f" → {x.destination}" if x.destination else "")
    line += f" in {took}" if took else ""
    if x.status == "failed":
        line += f": {x.error_code}"
    row = {
        "status": x.status,
        "rows": rows,
        "destination": x.destination or "",
        "took": took,
        "created": when(x.created_at),
        "id": x.id,
    }
    return line, row


def _job(j: Any) -> tuple[str, dict[str, Any]]:
    line = f"{j.kind} {j.status} {count(j.progress_rows)} rows, id {j.id}"
    if j.status == "failed":
        line += f": {j.error_code}"
    row = {"kind": j.kind, "status": j.status, "rows": j.progress_rows, "created": when(j.created_at)}
    row["id"] = j.id
    return line, row


def _user(u: Any) -> tuple[str, dict[str, Any]]:
    return f"'{u.name}'" + (" admin" if u.is_admin else ""), {"name": u.name, "admin": u.is_admin, "id": u.id}


def _member(m: Any) -> tuple[str, dict[str, Any]]:
    return f"'{m.user_name}' {m.role}", {"user": m.user_name, "role": m.role, "user id": m.user_id}


def _token(t: Any) -> tuple[str, dict[str, Any]]:
    state = "revoked" if t.revoked else (f"expires {when(t.expires_at)}" if t.expires_at else "never expires")
    return f"{t.id} {state}", {"id": t.id, "state": state, "created": when(t.created_at)}


def _file(f: Any) -> tuple[str, dict[str, Any]]:
    size = "directory" if f.is_dir else human_bytes(f.size) if f.size is not None else "?"
    row = {"path": f.path, "size": size, "modified": when(f.modified_at) if f.modified_at else ""}
    return f"{f.path} {size}", row


_RENDERERS: dict[str, Callable[[Any], tuple[str, dict[str, Any]]]] = {
    "Dataset": _dataset,
    "Project": _project,
    "Connector": _connector,
    "DataSource": _datasource,
    "Exporter": _exporter,
    "Export": _export,
    "Job": _job,
    "User": _user,
    "Member": _member,
    "Token": _token,
    "FileInfo": _file,
}


def resource_repr(obj: Any) -> str:
    """``<Dataset 'sales_v1' 200,000 rows × 7 columns, 10.7 MB, 2026-12-01 13:23 UTC>``: one line."""
    line, _ = _line_and_row(obj)
    return f"<{type(obj).__name__} {line}>"


# -- HTML ----------------------------------------------------------------------------------------------------
def html_table(rows: Iterable[dict[str, Any]], empty: str = "none") -> str:
    """An HTML table of ``rows`` (dicts with the same keys), every value escaped."""
    rows = list(rows)
    if not rows:
        return f"<p><em>{html.escape(empty)}</em></p>"
    heads = list(rows[0])
    out = ['<table class="previsio"><thead><tr>']
    out += [f"<th>{html.escape(str(h))}</th>" for h in heads]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(_cell(row.get(h)))}</td>" for h in heads) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return count(value)
    return str(value)


def _title(obj: Any) -> str:
    line, _ = _line_and_row(obj)
    return f"<p><strong>{html.escape(type(obj).__name__)}</strong> {html.escape(line)}</p>"


def _section(title: str, body: str) -> str:
    return f"<details open><summary>{html.escape(title)}</summary>{body}</details>"


def _safely(fetch: Callable[[], str], what: str) -> str:
    """The HTML ``fetch`` builds, or a note when the platform cannot be asked (a display never raises)."""
    from .errors import PrevisioError

    try:
        return fetch()
    except PrevisioError as exc:
        return f"<p><em>{html.escape(what)} unavailable: {html.escape(type(exc).__name__)}</em></p>"


def resource_html(obj: Any) -> str:
    """The HTML view of a resource, for Jupyter (``_repr_html_``)."""
    kind = type(obj).__name__
    parts = [f'<div class="previsio previsio-{html.escape(kind.lower())}">', _title(obj)]
    for cls in type(obj).__mro__:
        detail = _DETAILS.get(cls.__name__)
        if detail is not None:
            parts.append(detail(obj))
            break
    parts.append("</div>")
    return "".join(parts)


def _dataset_html(d: Any) -> str:
    schema = html_table(
        ({"column": c.name, "type": c.type, "nullable": c.nullable} for c in d.schema), "no columns"
    )

    def head() -> str:
        frame = d.head(_HEAD_ROWS)  # the first row group only, on the platform
        return frame.to_html(index=False, max_cols=20, border=0, classes="previsio")

    return _section(f"Schema ({len(d.schema)} columns)", schema) + _section(
        f"First {_HEAD_ROWS} rows", _safely(head, "rows")
    )


def _project_html(p: Any) -> str:
    return "".join(
        _section(title, _safely(lambda f=fetch: ResourceList(f())._repr_html_(), title))
        for title, fetch in (
            ("Connectors", p.list_connectors),
            ("Datasources", p.list_datasources),
            ("Datasets", p.list_datasets),
        )
    )


def _connector_html(c: Any) -> str:
    rows = [
        {"setting": "type", "value": c.type},
        {"setting": "driver", "value": c.driver},
        {"setting": "address", "value": connector_address(c)},
        {"setting": "host", "value": c.host},
        {"setting": "port", "value": c.port},
        {"setting": "username", "value": c.username},
        {"setting": "database", "value": c.database},
        {"setting": "password set", "value": c.has_password},
        {"setting": "needs credentials", "value": c.needs_credentials},
    ]
    rows += [{"setting": f"option {k}", "value": v} for k, v in _safe_options(c.options).items()]
    return html_table(r for r in rows if r["value"] not in (None, ""))


def _datasource_html(d: Any) -> str:
    rows = [{"setting": "connector id", "value": d.connector_id}]
    for name in ("database", "table", "request", "bucket", "path"):
        if getattr(d, name):
            rows.append({"setting": name, "value": getattr(d, name)})
    return html_table(rows)


_DETAILS: dict[str, Callable[[Any], str]] = {
    "Dataset": _dataset_html,
    "Project": _project_html,
    "Connector": _connector_html,
    "DataSource": _datasource_html,
}


# -- lists ---------------------------------------------------------------------------------------------------
class ResourceList(list):  # type: ignore[type-arg]
    """A list of resources, as the SDK's ``list_*`` methods return it: a ``list`` that displays as one table.

    In a notebook it shows as one HTML table; printed, one line per item. :meth:`to_pandas` gives the same
    table as a DataFrame.
    """

    def __repr__(self) -> str:
        if not self:
            return "[]"
        return "[" + ",\n ".join(repr(x) for x in self) + "]"

    def _rows(self) -> list[dict[str, Any]]:
        return [_line_and_row(x)[1] for x in self]

    def _repr_html_(self) -> str:
        kinds = sorted({type(x).__name__ for x in self})
        title = f"{len(self)} {'/'.join(kinds) or 'item'}{'s' if len(self) != 1 else ''}"
        table = html_table(self._rows())
        return f'<div class="previsio previsio-list"><p>{html.escape(title)}</p>{table}</div>'

    def to_pandas(self) -> pd.DataFrame:
        """The list as a DataFrame: one row per item, the columns its table shows (ids included)."""
        import pandas as pd

        return pd.DataFrame(self._rows())


def returns_list(method: Callable[..., list[T]]) -> Callable[..., ResourceList]:
    """Decorate a ``list_*`` method so that it returns a :class:`ResourceList`."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> ResourceList:
        return ResourceList(method(*args, **kwargs))

    return wrapper
