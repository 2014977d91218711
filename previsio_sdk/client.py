"""The HTTP client: the single choke point between the SDK and the platform.

Every request goes through :meth:`Client.request`, which joins the URL, adds the token and a timeout, retries
what is safe to retry, and turns an error answer into an exception of :mod:`previsio_sdk.errors`. Lists are
paged by :meth:`Client.iter_pages` and jobs are waited for by :meth:`Client.wait_job`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests

from . import config
from ._progress import Progress
from ._progress import wanted as progress_wanted
from .errors import (
    APIError,
    ConfigurationError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    ServerUnreachableError,
    ValidationError,
    error_class_for_status,
)

API_PREFIX = "/api/v1"
DEFAULT_TIMEOUT = 60.0
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_HEADER = "Idempotency-Key"

#: The SDK's logger; :func:`previsio_sdk.verbose` sets its level.
logger = logging.getLogger("previsio_sdk")


def format_path(template: str, *args: str) -> str:
    """Fill ``{}`` placeholders of a path with URL-escaped values (ids never reshape a path)."""
    return template.format(*(quote(str(a), safe="") for a in args))


class Client:
    """A connection to a previsio platform.

    Args:
        url: Base URL of the platform, such as ``https://previsio.example.com``. When None, the URL given to
            :func:`init_client`, then ``PREVISIO_URL`` (or Prevision.io's ``PREVISION_URL``), is used; when
            none is set, the embedded local platform under ``home`` is started (or reused) and used.
        token: API token. Defaults like ``url`` (``PREVISIO_TOKEN`` or ``PREVISION_MASTER_TOKEN``); the local
            platform's own token is used with the local platform.
        timeout: Seconds to wait for each HTTP answer.
        session: A ``requests.Session`` to use (for proxies, certificates, adapters).
        max_retries: How many times an idempotent request is retried on a connection error or a 502/503/504;
            ``config.request_retries`` (read at each request) when None.
        home: Home of the local platform (``PREVISIO_HOME`` or ``~/.previsio`` when None).

    Raises:
        ConfigurationError: ``PREVISION_MASTER_TOKEN`` is set but no URL is (the local platform is not
            started in place of the one the token is for).
        ConfigurationError: No URL was configured and the local platform is not installed (the SDK alone:
            ``pip install 'previsio_sdk[platform]'`` adds it).
        ServerUnreachableError: No URL was configured and the local platform could not be started.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
        max_retries: int | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        from . import _default

        if url is None:
            url = _default.configured_url() or config.env_url()
            if url is not None and url == config.env_url() and config.env_urls_disagree():
                logger.warning(
                    "%s and %s name different platforms; using %s.",
                    config.ENV_URL,
                    config.ENV_PREVISION_URL,
                    url,
                )
        if token is None and url is not None:
            # A configured token goes only to the URL it was configured with, never to another host.
            if _default.configured_url() and _same_url(url, _default.configured_url()):
                token = _default.configured_token()
            elif (
                _default.configured_url() is None and _default.configured_token() and config.env_url() is None
            ):
                token = _default.configured_token()
            if token is None and (config.env_url() is None or _same_url(url, config.env_url())):
                token = config.env_token()
        self.is_local = url is None
        if url is None:
            orphan = config.orphan_token_variable()
            if orphan is not None:
                raise ConfigurationError(
                    f"{orphan} is set but no platform URL is: set {config.ENV_PREVISION_URL} (or "
                    f"{config.ENV_URL}), or call init_client(url, token). Unset {orphan} to use the embedded "
                    "local platform."
                )
            from .local import ensure_local_platform

            logger.info("No platform URL configured: using the embedded local platform.")
            url, local_token = ensure_local_platform(config.home_dir(home))
            token = token or local_token
        self.url = url.rstrip("/")
        #: Whether the platform may share dataset files with this process (it is on this machine): true for a
        #: loopback URL until the platform says it does not share them.
        self.may_share_files = (urlsplit(self.url).hostname or "") in ("127.0.0.1", "localhost", "::1")
        self._token = token
        self.timeout = timeout
        self._max_retries = max_retries
        self.session = session or requests.Session()
        # A new Session already holds requests' own User-Agent, so replace that one but keep a caller's.
        if self.session.headers.get("User-Agent") in (None, requests.utils.default_user_agent()):
            self.session.headers["User-Agent"] = f"previsio_sdk/{_version()}"

    def __repr__(self) -> str:
        return f"Client(url={_without_userinfo(self.url)!r}{', local' if self.is_local else ''})"

    @property
    def max_retries(self) -> int:
        """Retries of a request that is safe to repeat: the client's own, else ``config.request_retries``."""
        return config.request_retries if self._max_retries is None else self._max_retries

    @max_retries.setter
    def max_retries(self, value: int | None) -> None:
        self._max_retries = value

    # -- the choke point -------------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> requests.Response:
        """Send one request to the platform and return its successful answer.

        GET, HEAD, OPTIONS, PUT and DELETE are retried on a connection error or a 502/503/504 answer, with a
        capped, jittered backoff; so is a POST sent with an ``idempotency_key``, which the platform uses to
        answer a repeated request with its first answer instead of creating a second resource.

        Args:
            method: HTTP method.
            path: Path below ``/api/v1``, already escaped (see ``format_path``).
            params: Query parameters.
            json: JSON body.
            data: Raw body (bytes or a binary file object, streamed).
            headers: Extra headers.
            stream: Do not read the body before returning (downloads).
            timeout: Seconds for this request instead of the client's timeout.
            idempotency_key: Sent as the ``Idempotency-Key`` header; makes the request safe to retry. A raw
                body is then sent again from where it started (a file object must be seekable).

        Returns:
            The ``requests`` response, status 2xx.

        Raises:
            APIError: The platform answered with an error status (the subclass tells which).
            ServerUnreachableError: The platform could not be reached after the retries.
        """
        method = method.upper()
        url = f"{self.url}{API_PREFIX}{path}"
        all_headers = {"Accept": "application/json", **(headers or {})}
        if self._token:
            all_headers["Authorization"] = f"Bearer {self._token}"
        retryable = method in _IDEMPOTENT and data is None
        body_start: int | None = None
        if idempotency_key is not None:
            all_headers[IDEMPOTENCY_HEADER] = idempotency_key
            retryable = data is None or isinstance(data, bytes) or _seekable(data)
            if data is not None and not isinstance(data, bytes) and retryable:
                body_start = data.tell()
        attempt = 0
        while True:
            if attempt and body_start is not None:
                data.seek(body_start)  # type: ignore[union-attr]
            try:
                resp = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=all_headers,
                    stream=stream,
                    timeout=timeout or self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if retryable and attempt < self.max_retries:
                    attempt += 1
                    self._backoff(attempt)
                    continue
                raise ServerUnreachableError(
                    f"Cannot reach the platform at {_without_userinfo(self.url)}: {type(exc).__name__}."
                ) from None
            logger.debug("%s %s%s -> %s", method, API_PREFIX, path, resp.status_code)
            again = resp.status_code in _RETRY_STATUSES or (
                idempotency_key is not None and _key_in_use(resp)  # its twin is still being handled
            )
            if again and retryable and attempt < self.max_retries:
                attempt += 1
                resp.close()
                self._backoff(attempt)
                continue
            if resp.status_code >= 400:
                raise self._error(method, resp)
            return resp

    @staticmethod
    def _backoff(attempt: int) -> None:
        delay = min(float(config.request_retry_time), 0.1 * 2**attempt)
        time.sleep(delay / 2 + random.uniform(0, delay / 2))

    @staticmethod
    def _error(method: str, resp: requests.Response) -> APIError:
        request_id = resp.headers.get("X-Request-ID")
        code = None
        details = None
        message = resp.reason or f"HTTP {resp.status_code}"
        try:
            body = resp.json()
            error = body.get("error") if isinstance(body, dict) else None
            if not isinstance(error, dict):  # a proxy or another service may answer in its own shape
                error = {}
            code = error.get("code")
            message = error.get("message") or message
            details = error.get("details")
            request_id = error.get("request_id") or request_id
        except ValueError:
            pass
        cls = error_class_for_status(resp.status_code)
        return cls(message, status=resp.status_code, code=code, request_id=request_id, details=details)

    # -- helpers ---------------------------------------------------------------------------------------------
    def get(self, path: str, /, **params: Any) -> Any:
        """GET ``path`` and return the decoded JSON answer."""
        return self.request("GET", path, params=params or None).json()

    def post(self, path: str, body: Any = None, /, **params: Any) -> Any:
        """POST a JSON body to ``path`` and return the decoded JSON answer.

        The request carries a new idempotency key, so it is retried like a GET: sent twice, it still creates
        one resource.
        """
        return self.request(
            "POST", path, json=body, params=params or None, idempotency_key=new_idempotency_key()
        ).json()

    def patch(self, path: str, body: Any) -> Any:
        """PATCH ``path`` with a JSON body and return the decoded JSON answer."""
        return self.request("PATCH", path, json=body).json()

    def delete(self, path: str, /, **params: Any) -> None:
        """DELETE ``path``."""
        self.request("DELETE", path, params=params or None)

    def iter_pages(self, path: str, /, page_size: int = 500, **params: Any) -> Iterator[dict[str, Any]]:
        """Yield every item of a paged list, fetching page after page.

        A platform configured with a smaller largest page answers 422 naming it; the pages are then that size.
        """
        page = 1
        seen = 0
        while True:
            try:
                body = self.get(path, page=page, page_size=page_size, **params)
            except ValidationError as exc:
                limit = _page_size_limit(exc)
                if limit is None or limit >= page_size or seen:
                    raise
                page_size = limit
                continue
            items = body["items"]
            yield from items
            seen += len(items)
            if not items or seen >= body["total"]:
                return
            page += 1

    def list_items(self, path: str, /, all: bool = True, **params: Any) -> list[dict[str, Any]]:
        """The items of a paged list: every page (``all``), or the first one only (previsionio's ``all=``)."""
        if all:
            return list(self.iter_pages(path, **params))
        return list(self.get(path, **params)["items"])

    def wait_job(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        progress: bool | None = None,
        description: str = "",
        path: str | None = None,
        bar: Progress | None = None,
        resume: str | None = None,
        cancellable: bool = True,
    ) -> dict[str, Any]:
        """Poll a job until it ends, showing rows written so far (see :mod:`previsio_sdk._progress`).

        Args:
            job_id: The job to wait for.
            timeout: Seconds to wait at most; None means ``config.default_timeout`` (by default: as long as
                it takes).
            progress: Show progress; None shows it in a notebook or a terminal (``PREVISIO_PROGRESS=0``: not).
            description: Label of the progress display.
            path: What to poll, below ``/api/v1``: ``/jobs/<job_id>`` when None; another resource with the
                same ``status``, ``progress_rows``, ``error_code`` and ``error_message`` (an export).
            bar: A progress display to update (and leave open, for the caller to close with its summary)
                instead of one made and closed here.
            resume: The Python expression giving the job back (``pio.Job.from_id('...')``), printed when
                the wait is interrupted.
            cancellable: Whether that hint may offer ``.cancel()``.

        Returns:
            The finished job, as the platform describes it.

        Raises:
            JobFailedError: The job failed; ``code`` and ``message`` carry the platform's reason.
            JobCancelledError: The job was cancelled (a :class:`JobFailedError` with code ``cancelled``).
            JobTimeoutError: ``timeout`` passed first (the job goes on).
            KeyboardInterrupt: The wait was interrupted (the job goes on; how to get back to it is printed).
        """
        __tracebackhide__ = True
        if timeout is None:
            timeout = config.default_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        own = bar is None
        if bar is None:
            bar = Progress(description or "job", enabled=progress_wanted(progress))
        delay = 0.01
        path = path or format_path("/jobs/{}", job_id)
        resume = resume or f"pio.Job.from_id({job_id!r})"
        try:
            while True:
                job = self.get(path)
                bar.update(job["progress_rows"], job.get("progress_total"))
                if job["status"] == "succeeded":
                    if own:
                        bar.close()
                    return job
                if job["status"] == "cancelled":
                    raise JobCancelledError(
                        job.get("error_message") or "The job was cancelled.",
                        code=job.get("error_code") or "cancelled",
                        job_id=job_id,
                    )
                if job["status"] == "failed":
                    raise JobFailedError(
                        job.get("error_message") or "The job failed.",
                        code=job.get("error_code"),
                        job_id=job_id,
                    )
                if deadline is not None and time.monotonic() >= deadline:
                    raise JobTimeoutError(
                        f"Job {job_id} is still {job['status']} after {timeout} s; get back to it with "
                        f"{resume}.wait().",
                        job_id=job_id,
                    )
                time.sleep(delay)
                delay = min(delay * 1.5, 0.1)  # a poll costs ~1 ms on the platform: answer quickly
        except KeyboardInterrupt:
            bar.close(f"interrupted after {bar.done:,} rows", ok=False)
            print(interrupted_hint(resume, cancellable), file=sys.stderr)
            raise
        except BaseException:
            bar.close(f"failed after {bar.done:,} rows", ok=False)
            raise

    def download(
        self,
        path: str,
        target: str | os.PathLike[str] | IO[bytes],
        *,
        progress: bool | None = None,
        description: str = "download",
        bar: Progress | None = None,
    ) -> int:
        """Stream the body of a GET to a file path or a binary file object; return the bytes written.

        Args:
            path: What to GET, below ``/api/v1``.
            target: A file path (written under a temporary name, then renamed) or a binary file object.
            progress: Show the bytes received (a bar when the size is known); None: in a notebook or a
                terminal (``PREVISIO_PROGRESS=0``: not).
            description: Label of the progress display.
            bar: A progress display to advance (and leave open for the caller) instead of a new one.
        """
        __tracebackhide__ = True
        resp = self.request("GET", path, stream=True, headers={"Accept": "*/*"})
        try:
            total = int(resp.headers.get("Content-Length") or 0) or None
        except ValueError:
            total = None

        def chunks() -> Iterator[bytes]:
            try:
                yield from resp.iter_content(1 << 20)
            except requests.RequestException as exc:
                raise ServerUnreachableError(
                    f"The download from {_without_userinfo(self.url)} was cut off: {type(exc).__name__}."
                ) from None

        own = bar is None
        if bar is None:
            bar = Progress(description, total, unit="bytes", enabled=progress_wanted(progress))
        start = bar.done
        with resp, bar if own else contextlib.nullcontext(bar):
            if isinstance(target, (str, os.PathLike)):
                target_path = Path(target)
                tmp = target_path.with_name(target_path.name + ".part")
                try:
                    with open(tmp, "wb") as fh:
                        for chunk in chunks():
                            fh.write(chunk)
                            bar.advance(len(chunk))
                    os.replace(tmp, target_path)
                except BaseException:
                    tmp.unlink(missing_ok=True)  # an interrupted transfer leaves nothing behind
                    raise
            else:
                for chunk in chunks():
                    target.write(chunk)
                    bar.advance(len(chunk))
        return bar.done - start


def init_client(prevision_url: str | None = None, token: str | None = None, **kwargs: Any) -> Client:
    """Set the default client, as ``previsionio.client.init_client(prevision_url, token)`` does.

    Same as :func:`previsio_sdk.init_client`; kept here so that ``pio.client.init_client(url, token)`` of a
    Prevision.io script works unchanged.

    Args:
        prevision_url: Platform URL.
        token: API token.
        **kwargs: Other :class:`Client` options.

    Returns:
        The new default client.
    """
    from ._default import init_client as _init_client

    return _init_client(prevision_url, token, **kwargs)


def _page_size_limit(exc: ValidationError) -> int | None:
    """The largest page size a 422 about ``page_size`` names, if it names one."""
    details = exc.details if isinstance(exc.details, dict) else {}
    limit = details.get("max") if details.get("field") == "page_size" else None
    return limit if isinstance(limit, int) and limit >= 1 else None


def new_idempotency_key() -> str:
    """A new random ``Idempotency-Key``."""
    return uuid.uuid4().hex


def _seekable(data: Any) -> bool:
    try:
        return bool(data.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _key_in_use(resp: requests.Response) -> bool:
    if resp.status_code != 409:
        return False
    try:
        return resp.json()["error"]["code"] == "idempotency_key_in_use"
    except (ValueError, KeyError, TypeError):
        return False


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def _without_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` part removed (for messages and reprs)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def interrupted_hint(resume: str, cancellable: bool = True) -> str:
    """What to print when a wait is interrupted: the job goes on, and how to get back to it or stop it."""
    stop = f", or stop it with {resume}.cancel()" if cancellable else ""
    return f"Interrupted: the job goes on on the platform. Get back to it with {resume}.wait(){stop}."


def _version() -> str:
    from . import __version__

    return __version__


def verbose(v: bool, debug: bool = False, event_log: bool = False) -> None:
    """Set how much the SDK logs, as ``previsionio.verbose`` does.

    Args:
        v: Log what the SDK does (INFO); False logs warnings and errors only.
        debug: With ``v``, also log each request (DEBUG): method, path and status, never a header or a body.
        event_log: Accepted for previsionio scripts; this SDK polls jobs and has no event stream to log.
    """
    if v:
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        if not logger.handlers and not logging.getLogger().handlers:
            logger.addHandler(logging.StreamHandler())  # no logging configured: show it on stderr
    else:
        logger.setLevel(logging.WARNING)
