"""The official R4 examples the R4 specification itself makes invalid in structure (the JSON Schema, the
narrative rules), and those refused by the binding and invariant rules, by file name."""

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def invalid_examples() -> dict[str, str]:
    """File name -> the structural rule of R4 that the official example breaks."""
    rows = json.loads((FIXTURES / "r4-examples-invalid.json").read_text())
    return {row["file"]: row["reason"] for row in rows}


def refused_by_rules() -> dict[str, str]:
    return json.loads((FIXTURES / "r4-examples-refused-by-rules.json").read_text())["refused"]
