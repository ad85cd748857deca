"""NPHIES profile conformance of messages we send: required elements, fixed values and code bindings.

A leaf package: FHIR JSON in, a list of issues out (the server turns them into an OperationOutcome).
"""

from .checks import check_entry, check_message, check_resource
from .issues import Issue, has_errors, operation_outcome

__all__ = ["Issue", "check_entry", "check_message", "check_resource", "has_errors", "operation_outcome"]
