"""Regenerates simulator/data/rules.json from the NPHIES spec: `python -m nphies_facade.nphies.simulator.vendoring SPEC`.

Keeps the display text of the rule codes the simulator answers with, the RE rule code of each reference
element, the meta.profile cardinality code of each resource type, the valid profiles, the adjudication
error codes payers use (e.g. 1658) and the rejection (adjudication-reason) codes.
"""

import csv
import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"

USED = """
GE-00010 GE-00011 GE-00013 GE-00031 GE-00034 DT-01319 BV-00126 BV-00130 BV-00148 BV-00163 BV-00165 BV-00167
BV-00168 BV-00176 BV-00177 BV-00193 BV-00218 BV-00221 BV-00222 BV-00225 BV-00341 BV-00445 BV-00456 BV-00459
BV-00532 BV-00533 BV-00545 BV-00071 IB-00250 IB-00291 IB-00308 IB-00377 IC-00009 IC-00010 IC-00217 IC-00218
IC-00223 IC-00224 IC-00225 IC-00226 IC-00228 IC-00326 IC-00375 IC-00377 IC-00379 IC-00380 IC-00398 IC-00401
IC-01428 IC-01574 FR-00007 DT-00003 RE-00100 RE-00169 RE-00170 RE-00180 GE-00000 GE-00001 GE-00014 GE-00017 GE-00035 IC-01435
""".split()


def main(spec_dir: str) -> None:
    spec = Path(spec_dir)
    rules = list(csv.reader((spec / "validation-rules-v2.6-csv" / "Nphies_Rules_and_Codes-_OBA.csv").open()))[
        1:
    ]
    active = [r for r in rules if len(r) > 10 and not r[10].strip()]
    display = {r[0].strip(): (r[5] or r[4]).strip() for r in active}
    references, data_types = {}, {}
    meta_profile = {}
    for row in active:
        code, element = row[0].strip(), row[3].strip()
        if code.startswith("RE-") and re.match(r"^[A-Z]\w+(\.\w+)+$", element):
            references.setdefault(element, code)
        if code.startswith("DT-") and re.match(r"^[A-Z]\w+(\.\w+)+$", element):
            data_types.setdefault(element, code)
        if code.startswith("IC-") and element.endswith(".meta.profile"):
            meta_profile.setdefault(element.split(".")[0], code)
    wanted = set(USED) | set(references.values()) | set(meta_profile.values())
    concepts = spec / "codeable-concepts-v5.3-csv"
    errors = {
        r[0].strip(): r[1].strip()
        for r in list(csv.reader((concepts / "Appendix_adjudication-error.csv").open()))[1:]
    }
    reasons = {
        r[0].strip(): r[2].strip() or r[1].strip()
        for r in list(csv.reader((concepts / "Appendix_rejection-reason.csv").open()))[1:]
        if r and r[0].strip()
    }
    table = list(csv.reader((spec / "profiles-v5.2-csv" / "Structure_Definition-profile.csv").open()))[1:]
    profiles: dict[str, list[str]] = {}
    for row in table:
        if len(row) > 3 and "StructureDefinition/" in row[3] and "extension" not in row[3].lower():
            profile = row[3].split("StructureDefinition/")[1].split("|")[0].strip()
            profiles.setdefault(row[0].strip(), []).append(profile)
    # In the profile tables (Organization_PolicyHolder) though missing from the list of structure definitions.
    profiles.setdefault("Organization", []).append("policyholder-organization")
    # What the OBA pseudo-payer itself sends for advanced authorizations (see the poll-response sample).
    profiles.setdefault("ClaimResponse", []).append("advanced-authorization")
    content = {
        "display": {c: d for c, d in display.items() if c in wanted},
        "references": references,
        "data_types": data_types,
        "meta_profile": meta_profile,
        "payer_errors": {"1658": errors.get("1658", "No member found with the supplied patient credentials")},
        "rejection_reasons": reasons,
        "profiles": {k: sorted(set(v)) for k, v in profiles.items()},
    }
    DATA.mkdir(exist_ok=True)
    (DATA / "rules.json").write_text(json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/nphies/spec")
