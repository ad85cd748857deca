"""Regenerates profiles/data/*.json from the NPHIES spec CSVs: `python -m nphies_facade.profiles.vendoring SPEC_DIR`.

SPEC_DIR is `../shared/nphies/spec` (profiles-v5.2-csv, codeable-concepts-v5.3-csv, validation-rules-v2.6-csv).
Only what the checks use is kept: required elements, fixed values and bindings of each profile; the codes of
small code systems; the NPHIES rule codes of cardinality and binding errors by element.
"""

import csv
import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"

# Profile table (CSV file stem) -> profile id.
TABLES = {
    "Bundle_Message": "bundle",
    "MessageHeader": "message-header",
    "Eligibility_Request": "eligibility-request",
    "Eligibility_Response": "eligibility-response",
    "Authorization_institutional": "institutional-priorauth",
    "Authorization_professional": "professional-priorauth",
    "Authorization_Pharmacy": "pharmacy-priorauth",
    "Authorization_Dental": "oral-priorauth",
    "Authorization_Vision": "vision-priorauth",
    "Authorization_Response": "prior-auth-response",
    "Claim_Institutional": "institutional-claim",
    "Claim_Professional": "professional-claim",
    "Claim_Pharmacy": "pharmacy-claim",
    "Claim_Dental": "oral-claim",
    "Claim_Vision": "vision-claim",
    "Claim_Response": "claim-response",
    "Communication": "communication",
    "Communication_Request": "communication-request",
    "Coverage": "coverage",
    "Encounter": "encounter",
    "Location_Department": "location",
    "Organization_Payer": "insurer-organization",
    "Organization_Provider": "provider-organization",
    "Organization_PolicyHolder": "policyholder-organization",
    "Patient": "patient",
    "Payment_Notice": "payment-notice",
    "Payment_Reconciliation": "payment-reconciliation",
    "Practitioner": "practitioner",
    "Task": "task",
    "VisionPrescription": "vision-prescription",
}

# Slips in the tables, corrected: path typos, and slices whose comment names the wrong extension.
PATH_FIXES = {"ClaimResponse.item.sequence": "ClaimResponse.item.itemSequence"}
EXTENSION_FIXES = {
    "patientShare": "http://nphies.sa/fhir/ksa/nphies-fs/StructureDefinition/extension-patient-share"
}
FIXED_FROM_COMMENT = re.compile(r'fixed value\s+"([^"]+)"', re.IGNORECASE)
EXTENSION_URL = re.compile(
    r"http://nphies\.sa/fhir/ksa/nphies-fs/StructureDefinition/extension-[A-Za-z0-9-]+"
)
CODE_LIST = re.compile(r"^\(([^)]+)\)$")
SMALL_CODE_SYSTEM = 400


def _path(raw: str, resource_type: str) -> str:
    parts = [p for p in re.split(r"[.\s]+", raw.strip()) if p]
    parts[0] = resource_type
    path = ".".join(parts)
    return PATH_FIXES.get(path, path)


def _capitalised(path: str) -> str:
    return path[:1].upper() + path[1:]


def _value_set(raw: str) -> str | None:
    token = raw.strip().split()[0] if raw.strip() else ""
    return token if token.startswith("http") else None


def _element(row: list[str], resource_type: str, profile: str) -> dict | None:
    path = _path(row[0], resource_type)
    minimum = row[2].strip()
    element: dict = {
        "path": path,
        "min": int(minimum) if minimum.isdigit() else 0,
        "max": row[3].strip() or "1",
    }
    if ".extension." in f"{path}.":
        head, _, slice_name = path.partition(".extension.")
        url = EXTENSION_FIXES.get(slice_name) or next(iter(EXTENSION_URL.findall(row[7])), None)
        if url is None or "." in slice_name:
            return None
        element.update(path=head, extension=url, slice=slice_name)
    fixed = FIXED_FROM_COMMENT.search(row[7])
    if fixed and row[4].strip().lower() != "boolean":
        element["fixed"] = fixed.group(1)
    if path.endswith(".use") and path.count(".") == 1 and row[7].strip() in ("claim", "preauthorization"):
        element["fixed"] = row[7].strip()
    if path == "Claim.type":
        element["fixed"] = profile.split("-")[0]
    value_set = _value_set(row[8]) if len(row) > 8 else None
    if value_set:
        element["valueSet"] = value_set
    if element["min"] == 0 and "fixed" not in element and "valueSet" not in element:
        return None
    return element


def profile_elements(table_dir: Path) -> dict:
    profiles = {}
    for stem, profile in TABLES.items():
        rows = list(csv.reader((table_dir / f"{stem}.csv").open(encoding="utf-8")))
        resource_type = next(r[0].split(".")[0].strip() for r in rows[2:] if "." in r[0])
        resource_type = _capitalised(resource_type)
        elements = [_element(r, resource_type, profile) for r in rows[2:] if len(r) > 8 and "." in r[0]]
        profiles[profile] = {"resourceType": resource_type, "elements": [e for e in elements if e]}
    return profiles


def terminology(concepts_dir: Path) -> dict:
    systems: dict[str, list[str]] = {}
    current = None
    for row in list(csv.reader((concepts_dir / "nphies_CodeSystems.csv").open(encoding="utf-8")))[1:]:
        if row[1].strip():
            current = row[1].strip().strip('"')
            systems.setdefault(current, [])
        if current and len(row) > 10 and row[10].strip():
            systems[current].append(row[10].strip())
    value_sets: dict[str, dict] = {}
    current = None
    for row in list(csv.reader((concepts_dir / "nphies_ValueSets.csv").open(encoding="utf-8")))[1:]:
        if row[1].strip():
            current = row[1].strip()
            value_sets[current] = {"systems": [], "codes": {}}
        if current is None or not row[10].strip():
            continue
        system = row[10].strip()
        value_sets[current]["systems"].append(system)
        restricted = CODE_LIST.match(row[8].strip())
        if restricted:
            value_sets[current]["codes"][system] = [c.strip() for c in restricted.group(1).split(",")]
    used = {s for vs in value_sets.values() for s in vs["systems"]}
    small = {s: codes for s, codes in systems.items() if s in used and 0 < len(codes) <= SMALL_CODE_SYSTEM}
    small = {s: codes for s, codes in small.items() if codes != ["---"]}
    return {"value_sets": value_sets, "code_systems": small}


def rule_codes(rules_dir: Path, table_dir: Path) -> dict:
    index: dict[str, dict[str, str]] = {"IC": {}, "IB": {}}
    for row in list(csv.reader((rules_dir / "Nphies_Rules_and_Codes-_OBA.csv").open(encoding="utf-8")))[1:]:
        if len(row) < 11 or row[10].strip():
            continue
        code, kind, element = row[0].strip(), row[1].strip(), row[3].strip()
        if kind in index and element and " " not in element:
            index[kind].setdefault(_capitalised(element), code)
    since = {}
    for row in list(csv.reader((table_dir / "Update.csv").open(encoding="utf-8")))[1:]:
        if len(row) > 3 and row[0].strip() == "5.2" and re.match(r"^[A-Za-z]+\.[\w.]+$", row[1].strip()):
            if re.search(r"mandat|new field|^added", row[2].strip(), re.IGNORECASE):
                since[_capitalised(row[1].strip())] = f"profiles v5.2 ({row[3].strip()[:10]})"
    return {**index, "since": since}


def main(spec_dir: str) -> None:
    spec = Path(spec_dir)
    tables, concepts, rules = (
        spec / "profiles-v5.2-csv",
        spec / "codeable-concepts-v5.3-csv",
        spec / "validation-rules-v2.6-csv",
    )
    DATA.mkdir(exist_ok=True)
    outputs = {
        "elements.json": profile_elements(tables),
        "terminology.json": terminology(concepts),
        "rules.json": rule_codes(rules, tables),
    }
    for name, content in outputs.items():
        (DATA / name).write_text(json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/nphies/spec")
