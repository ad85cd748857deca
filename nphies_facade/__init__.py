"""nphies-facade: a FHIR R4 facade server for insurance workflows with NPHIES."""

__version__ = "0.1.0"
