"""Imported by a toy server process (NPHIES_FACADE_WORKFLOW_MODULES): registers the toy workflows."""

from .toy_workflows import install

install()
