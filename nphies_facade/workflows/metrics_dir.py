"""Where processes that share metrics write them: prometheus_client's multiprocess directory.

Set before the first metric is created (before `workflows.metrics` is imported), so `nphies-facade
serve` and `worker` call `prepare` first thing; processes they start inherit the environment.
"""

import os
from pathlib import Path

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare(data_dir: Path, *, fresh: bool) -> Path:
    """Uses `{data_dir}/metrics` unless the environment already names a directory; `fresh` (a server
    starting) removes the values earlier runs left, so counters start from zero like a single process."""
    given = os.environ.get(MULTIPROCESS_ENV)
    directory = Path(given) if given else data_dir / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    if fresh:
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    return directory
