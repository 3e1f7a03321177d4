"""Domain errors. Each has a snake_case `code`; `chalicelib.web.http` maps them to HTTP statuses."""

from typing import Any


class SluiceError(Exception):
    """Base of every error sluice raises on purpose. `message` is what the client reads: never
    driver text, hosts, user names or account ids (those go to the log, with the request id)."""

    code = "error"

    def __init__(self, message: str, *, details: Any = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}


class ConfigError(SluiceError):
    code = "config_error"


class MigrationError(SluiceError):
    """The database cannot be brought to this code's schema (see chalicelib.database.schema)."""

    code = "migration_error"


class ValidationError(SluiceError):
    """The request is well-formed JSON but a field is wrong; `details` names each field."""

    code = "invalid_request"


class InvalidJSONError(SluiceError):
    code = "invalid_json"


class InvalidEncodingError(SluiceError):
    """The body does not decode as its Content-Encoding says (a corrupt or cut gzip stream)."""

    code = "invalid_encoding"


class UnsupportedMediaTypeError(SluiceError):
    code = "unsupported_media_type"


class PayloadTooLargeError(SluiceError):
    code = "payload_too_large"


class UnauthorizedError(SluiceError):
    code = "unauthorized"


class ForbiddenError(SluiceError):
    code = "forbidden"


class NotFoundError(SluiceError):
    code = "not_found"


class RateLimitedError(SluiceError):
    """Over a rate limit: the request did nothing; `headers` say when to come back."""

    code = "rate_limited"


class DatabaseError(SluiceError):
    """MySQL refused a statement for a reason a retry cannot fix (a privilege, a missing table)."""

    code = "database_error"


class DependencyUnavailableError(SluiceError):
    """A service sluice depends on (MySQL, Redis, SQS) did not answer."""

    code = "dependency_unavailable"

    def __init__(self, dependency: str, message: str, *, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.dependency = dependency


class QueueUnavailableError(DependencyUnavailableError):
    code = "queue_unavailable"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__("queue", message, details=details)


class DatabaseUnavailableError(DependencyUnavailableError):
    code = "database_unavailable"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__("mysql", message, details=details)


class QueryTimeoutError(DependencyUnavailableError):
    """MySQL stopped a statement at MYSQL_STATEMENT_TIMEOUT_S: it is overloaded, or the query is too costly."""

    code = "query_timeout"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__("mysql", message, details=details)


class BudgetExhaustedError(DependencyUnavailableError):
    """No MySQL connection slot freed in time: the connection budget is fully used."""

    code = "connection_budget_exhausted"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__("mysql", message, details=details)


class SecretsUnavailableError(DependencyUnavailableError):
    """AWS Secrets Manager did not answer (not: a secret that is missing or not allowed, a ConfigError)."""

    code = "secrets_unavailable"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__("secrets", message, details=details)
