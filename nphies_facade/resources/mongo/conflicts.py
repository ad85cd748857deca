"""Recognising MongoDB's transient transaction errors and reporting them as the port's TransientConflict."""

from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import PyMongoError

from ..store import TransientConflict

TRANSIENT_LABEL = "TransientTransactionError"
UNKNOWN_COMMIT_LABEL = "UnknownTransactionCommitResult"
WRITE_CONFLICT_CODE = 112


def is_transient(exc: BaseException) -> bool:
    """A write conflict, or any error the server or driver labels as worth re-running the transaction."""
    if not isinstance(exc, PyMongoError):
        return False
    return exc.has_error_label(TRANSIENT_LABEL) or getattr(exc, "code", None) == WRITE_CONFLICT_CODE


@contextmanager
def transient_as_conflict() -> Iterator[None]:
    try:
        yield
    except PyMongoError as exc:
        if is_transient(exc):
            raise TransientConflict(f"MongoDB transaction conflict: {exc}") from exc
        raise
