"""`python -m nphies_facade.nphies.simulator [--host H] [--port P] [--config settings.json]`."""

from .cli import main

raise SystemExit(main())
