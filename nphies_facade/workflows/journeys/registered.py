"""Importing this module registers the journeys. NPHIES_FACADE_WORKFLOW_MODULES names it by default, so
`serve` and `worker` run them; set that variable to an empty value to run the server without them."""

from .install import install

INSTALLED = install()
