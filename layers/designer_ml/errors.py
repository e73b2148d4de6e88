"""Domain exceptions. The API layer maps them to the one error shape of API.md (see api.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service answers with a 4xx/5xx status."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class Unprocessable(DomainError):
    """JSON that breaks the schema, or data that cannot carry the request."""

    status = 422
    code = "validation_error"


class StorageUnavailable(DomainError):
    """A backend (DynamoDB, S3, SQS) failed; not the client's fault, worth a retry."""

    status = 503
    code = "storage_unavailable"


class StorageRefused(Exception):
    """A backend refused a request as malformed (``ValidationException``...): our bug, which a
    retry cannot mend, so a 500 (never a domain error), not a 503 telling the client to retry."""


class VersionConflict(Exception):
    """A conditional write lost a race; callers re-read and retry (never reaches a client)."""


class ModelIntegrityError(Exception):
    """An exported model failed its parity check or an artifact is corrupt; never stored/served."""
