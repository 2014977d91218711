"""Users, their API tokens, and project members.

Creating users and tokens needs an administrator's token (``previsio user create`` and ``previsio token
create`` do the same on the platform's host). A project's owners add members with
:meth:`Project.add_member <previsio_sdk.Project.add_member>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import attrs

from . import _display
from ._default import get_client
from ._resource import parse_datetime
from .client import Client, format_path

Role = Literal["viewer", "editor", "owner"]
"""A member's role: a viewer lists and reads, an editor also creates, changes and deletes, an owner also
manages the members and the project itself."""


@attrs.define(frozen=True)
class Token(metaclass=_display.Documented):
    """An API token of a user.

    Attributes:
        id: Platform id (what :meth:`revoke` and ``previsio token revoke`` take).
        user_id: Id of the user it belongs to.
        created_at: Creation time (UTC).
        expires_at: When it stops working (UTC); None: never.
        revoked: Whether it was revoked.
        value: The token itself: set only on the object :meth:`User.create_token` returns, since the platform
            keeps a digest of it only. Never shown in a repr.
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    user_id: str
    created_at: datetime | None = None
    expires_at: datetime | None = None
    revoked: bool = False
    value: str | None = attrs.field(default=None, repr=False)
    _client: Client | None = attrs.field(default=None, repr=False, alias="client", eq=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Token:
        """Build a token object from the platform's description."""
        return cls(
            id=data["id"],
            user_id=data["user_id"],
            created_at=parse_datetime(data.get("created_at")),
            expires_at=parse_datetime(data.get("expires_at")),
            revoked=bool(data.get("revoked", False)),
            value=data.get("token"),
            client=get_client(client),
        )

    def revoke(self) -> None:
        """Revoke the token: it stops working at once (administrators only).

        Raises:
            PermissionDeniedError: The client's token is not an administrator's.
        """
        get_client(self._client).delete(format_path("/tokens/{}", self.id))


@attrs.define(eq=False)
class User(metaclass=_display.Documented):
    """A user of the platform.

    Attributes:
        id: Platform id.
        name: Unique name.
        is_admin: Whether the user administers users and tokens.
        created_at: Creation time (UTC).
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    name: str
    is_admin: bool = False
    created_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> User:
        """Build a user object from the platform's description."""
        return cls(
            id=data["id"],
            name=data["name"],
            is_admin=bool(data.get("is_admin", False)),
            created_at=parse_datetime(data.get("created_at")),
            client=get_client(client),
        )

    @classmethod
    def create(cls, name: str, *, admin: bool = False, client: Client | None = None) -> User:
        """Create a user (administrators only); give it a token with :meth:`create_token`.

        Raises:
            PermissionDeniedError: The client's token is not an administrator's.
            ConflictError: A user of that name exists.
        """
        client = get_client(client)
        return cls.from_dict(client.post("/users", {"name": name, "is_admin": admin}), client)

    @classmethod
    @_display.returns_list
    def list(cls, client: Client | None = None) -> list[User]:
        """Every user, oldest first (administrators only)."""
        client = get_client(client)
        return [cls.from_dict(u, client) for u in client.iter_pages("/users")]

    def create_token(self, expires_in_days: float | None = None) -> Token:
        """Issue a new token for this user (administrators only).

        Args:
            expires_in_days: Days until it stops working; None: it works until revoked.

        Returns:
            The token; its :attr:`~Token.value` is the secret to hand over, available this once.
        """
        client = get_client(self._client)
        data = client.post(format_path("/users/{}/tokens", self.id), {"expires_in_days": expires_in_days})
        return Token.from_dict(data, client)

    @_display.returns_list
    def list_tokens(self) -> list[Token]:
        """This user's tokens, without their values (administrators only)."""
        client = get_client(self._client)
        path = format_path("/users/{}/tokens", self.id)
        return [Token.from_dict(t, client) for t in client.iter_pages(path)]


@attrs.define(frozen=True)
class Member(metaclass=_display.Documented):
    """A user's role in a project.

    Attributes:
        user_id: Id of the user.
        user_name: Name of the user.
        role: ``viewer``, ``editor`` or ``owner``.
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    user_id: str
    user_name: str
    role: Role

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        """Build a member object from the platform's description."""
        return cls(user_id=data["user_id"], user_name=data["user_name"], role=data["role"])
