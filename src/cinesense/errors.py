"""Errors a user can act on. The CLI prints their message and exits non-zero."""


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
