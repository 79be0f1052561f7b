"""Errors a user can act on. The CLI prints their message and exits non-zero."""

from __future__ import annotations


class CinesenseError(Exception):
    """Base class: the message says what went wrong and what to do."""


class DataError(CinesenseError):
    """Input data is missing, malformed or fails a data check."""


class ModelError(CinesenseError):
    """A model cannot be found, loaded or trained."""


class NetworkUnavailableError(CinesenseError):
    """A download was needed but the network (or the host) could not be reached."""


class StorageError(CinesenseError):
    """Object storage is unreachable, refuses the credentials, or lacks a bucket or key."""


class RegistryError(CinesenseError):
    """The model registry (MLflow) is unreachable or refuses an operation."""


class CrawlerError(CinesenseError):
    """A review source refused, blocked, changed shape or failed; names source, URL and cause.

    ``kind`` says what went wrong: ``robots`` (robots.txt disallows the URL), ``blocked``
    (a block page or 403), ``rate_limited`` (429 after the retries), ``server`` (5xx after
    the retries), ``timeout``, ``connection``, ``breaker_open``, ``schema`` (the response
    no longer has the expected shape, or HTML came where JSON was expected), ``http``
    (another HTTP status), ``browser`` (Chromium missing or failing), ``input``.
    """

    def __init__(
        self, source: str, url: str, problem: str, kind: str = "http", hint: str | None = None
    ) -> None:
        self.source = source
        self.url = url
        self.problem = problem
        self.kind = kind
        self.hint = hint
        message = f"{source}: {problem} (at {url})."
        super().__init__(f"{message} {hint}" if hint else message)

    @classmethod
    def schema(cls, source: str, url: str, detail: str, changed: str, module: str) -> CrawlerError:
        """The source's answer no longer has the shape its parser expects (``changed``:
        what the site probably changed; ``module``: the parser to update)."""
        return cls(
            source,
            url,
            f"the response no longer has the expected shape: {detail}",
            kind="schema",
            hint=f"{changed}; nothing from this response was stored. Check the payload and "
            f"update {module}.",
        )


class SettingsError(CinesenseError):
    """A setting the running service needs is missing or unusable."""
