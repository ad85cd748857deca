"""nphies-facade: a FHIR R4 facade server for insurance workflows with NPHIES."""
