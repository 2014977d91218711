"""Logging of the platform with no secret in it, at any level.

Two guards: the libraries that log credentials or whole requests at debug level (botocore prints signed
request headers, SQLAlchemy the parameters of every statement) are held at WARNING whatever the platform's
level; and every handler gets a :class:`RedactingFilter` that masks bearer and basic credentials,
``password=``-style pairs, credentials in URLs, and every connector secret this process has encrypted or
decrypted.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

#: Libraries whose debug (or info) output can hold credentials, request headers or statement parameters.
QUIET_LOGGERS = (
    "aiobotocore",
    "aiohttp",
    "asyncssh",
    "boto3",
    "botocore",
    "fsspec",
    "paramiko",
    "psycopg",
    "pymysql",
    "s3fs",
    "s3transfer",
    "sqlalchemy",
    "urllib3",
    "multipart",
    "python_multipart",
)

MASK = "***"
_PATTERNS = [
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1" + MASK),
    (re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/]{6,}=*"), r"\1" + MASK),
    (re.compile(r"pvo_[A-Za-z0-9_\-]{8,}"), "pvo_" + MASK),
    (
        re.compile(
            r"(?i)((?:password|passwd|pwd|secret|secret_key|token|api_key|apikey|access_key|private_key)"
            r"[\"']?\s*[=:]\s*[\"']?)[^\"'\s&,;}]+"
        ),
        r"\1" + MASK,
    ),
    (re.compile(r"(://[^\s:/@]+:)\S*@"), r"\1" + MASK + "@"),
]
#: Secrets shorter than this are not searched for: masking every "x" would destroy messages, protect nothing.
MIN_SECRET_LENGTH = 4
#: How many recently seen secrets are masked in log lines.
MAX_KNOWN_SECRETS = 4096

_known: OrderedDict[str, None] = OrderedDict()
_known_lock = threading.Lock()
_known_sorted: list[str] = []


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def secret_forms(value: str, username: str | None = None) -> set[str]:
    """Every form in which a library may echo the secret ``value``, each at least 4 characters long.

    Raw; percent-encoded as ``quote`` (with and without ``/`` kept) and ``quote_plus`` do, in upper and
    lower case hex; JSON-escaped; as a Python repr; quoted for a libpq conninfo string (backslash before
    ``\\`` and ``'``); base64 of ``value`` and, with ``username``, of ``username:value`` (an HTTP basic
    ``Authorization``).
    """
    encoded = {quote(value, safe=""), quote(value), quote_plus(value), quote_plus(value, safe="")}
    forms = {value, *encoded, *(_lower_hex(e) for e in encoded)}
    forms.add(json.dumps(value)[1:-1])
    forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    forms.add(value.replace("\\", "\\\\").replace("'", "\\'"))
    forms.add(repr(value)[1:-1])
    forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    if username is not None:
        forms.add(base64.b64encode(f"{username}:{value}".encode()).decode().rstrip("="))
    return {f for f in forms if len(f) >= MIN_SECRET_LENGTH}


def remember_secrets(values: Iterable[Any]) -> None:
    """Mask these secret values (and every encoded form, :func:`secret_forms`) in every later log line."""
    global _known_sorted
    with _known_lock:
        added = False
        for value in values:
            if not isinstance(value, str) or len(value) < MIN_SECRET_LENGTH:
                continue
            for form in secret_forms(value):
                added = added or form not in _known
                _known[form] = None
                _known.move_to_end(form)
        while len(_known) > MAX_KNOWN_SECRETS:
            _known.popitem(last=False)
            added = True
        if added:  # longest first, so that a secret containing another is masked whole
            _known_sorted = sorted(_known, key=len, reverse=True)


def redact_text(text: str) -> str:
    """``text`` with known secrets, bearer tokens, ``password=`` values and URL credentials masked."""
    for secret in _known_sorted:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    # Any other object (an exception, bytes) is replaced by its masked text only when that text held a secret,
    # so that "%d" and "%r" keep working on the others.
    text = value.decode("utf-8", errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)
    masked = redact_text(text)
    return value if masked == text else masked


#: Loggers whose formatters read the record's arguments one by one (uvicorn's access log colours them): their
#: arguments are masked in place rather than merged into the message.
_ARGUMENT_FORMATTED = ("uvicorn.access",)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments and traceback; never drops a record.

    The message is masked once formatted (a ``password=%s`` format string keeps its placeholder until then),
    except for loggers whose formatters need the arguments, where each argument is masked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if record.name in _ARGUMENT_FORMATTED and isinstance(record.args, tuple):
                record.args = tuple(_redact_arg(a) for a in record.args)
            else:
                full = record.getMessage()
                masked = redact_text(full)
                if masked != full:
                    record.msg, record.args = masked, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact_text(record.exc_text)
        except Exception:  # noqa: BLE001 - a log line is never lost to its filter
            pass
        return True


_FILTER = RedactingFilter()


def harden_logging(logger_names: Iterable[str] = ("", "uvicorn", "uvicorn.access", "uvicorn.error")) -> None:
    """Quiet the credential-printing libraries and put the redacting filter on every handler in use.

    Call after logging is configured (uvicorn configures its own handlers when its ``Config`` is built).
    """
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
