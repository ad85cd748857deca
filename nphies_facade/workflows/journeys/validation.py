"""Checks a journey makes before it asks the payer: NPHIES profile rules on the stored Patient and
Coverage, and the business rules of a Claim. Pure functions: resources in, findings (strings) out."""

from datetime import date, datetime

from ...nphies import canonical
from ...nphies.fhirjson import code_of, codings, copy_json, money
from ...profiles import check_resource
from ...profiles.checks import PROFILE_BASE
from .settings import JourneySettings

# Patient identifier type -> the NPHIES identifier system it must use (MR: the provider's own system).
IDENTIFIER_SYSTEMS = {
    "NI": "http://nphies.sa/identifier/nationalid",
    "PRC": "http://nphies.sa/identifier/iqama",
    "PPN": "http://nphies.sa/identifier/passportnumber",
    "BN": "http://nphies.sa/identifier/bordernumber",
    "DP": "http://nphies.sa/identifier/displacedperson",
    "VP": "http://nphies.sa/identifier/visa",
}
# National ids start with 1, iqamas (resident cards) with 2; both have ten digits.
ID_PREFIX = {"NI": "1", "PRC": "2"}
GENDERS = frozenset({"male", "female", "other", "unknown"})
MONEY_TOLERANCE = 0.005


def profile_findings(resource: dict, profile_id: str) -> list[str]:
    """Where the resource, as it would be sent, breaks the NPHIES profile `profile_id`."""
    claimed = copy_json(resource)
    claimed.setdefault("meta", {})["profile"] = [f"{PROFILE_BASE}{profile_id}|1.0.0"]
    issues = check_resource(claimed, profile_id, resource.get("resourceType", "Resource"))
    return [
        f"{i.expression}: {i.message}" + (f" ({i.rule})" if i.rule else "")
        for i in issues
        if i.severity in ("error", "fatal")
    ]


def patient_findings(patient: dict, today: date) -> list[str]:
    """Demographics NPHIES needs: identifier type and system, name, gender, birth date."""
    found = profile_findings(patient, "patient")
    for index, identifier in enumerate(patient.get("identifier") or []):
        found += _identifier_findings(identifier, f"Patient.identifier[{index}]")
    names = patient.get("name") or []
    if names and not any(n.get("text") or n.get("family") or n.get("given") for n in names):
        found.append("Patient.name: a name needs a text, a family name or a given name")
    if patient.get("gender") and patient["gender"] not in GENDERS:
        found.append(f"Patient.gender: {patient['gender']!r} is not an administrative gender")
    born = _date(patient.get("birthDate"))
    if patient.get("birthDate") and born is None:
        found.append("Patient.birthDate: not a date")
    elif born is not None and born > today:
        found.append("Patient.birthDate: in the future")
    return found


def _identifier_findings(identifier: dict, where: str) -> list[str]:
    type_code = next((c.get("code") for c in codings(identifier.get("type"))), None)
    expected = IDENTIFIER_SYSTEMS.get(str(type_code))
    found = []
    if expected and identifier.get("system") != expected:
        found.append(f"{where}.system: an identifier of type {type_code} has the system {expected}")
    value, prefix = str(identifier.get("value") or ""), ID_PREFIX.get(str(type_code))
    if prefix and not (len(value) == 10 and value.isdigit() and value.startswith(prefix)):
        found.append(f"{where}.value: a {type_code} number has ten digits and starts with {prefix}")
    return found


def coverage_findings(coverage: dict, payer: dict | None, patient: str, today: date) -> list[str]:
    """The Coverage NPHIES can check: a member id, the payer's license, the patient, a period covering today."""
    found = profile_findings(coverage, "coverage")
    if not any(i.get("value") for i in coverage.get("identifier") or []):
        found.append("Coverage.identifier: the member id is missing")
    if (coverage.get("beneficiary") or {}).get("reference") != patient:
        found.append(f"Coverage.beneficiary: is not {patient}")
    if payer is None:
        found.append("Coverage.payor: the payer Organization is not stored")
    elif not payer_license(payer):
        found.append(f"Coverage.payor: the payer Organization has no {canonical.PAYER_LICENSE} identifier")
    if not covers(coverage.get("period"), today):
        found.append(f"Coverage.period: does not cover {today.isoformat()}")
    return found


def payer_license(organization: dict) -> str | None:
    return next(
        (
            i.get("value")
            for i in organization.get("identifier") or []
            if i.get("system") == canonical.PAYER_LICENSE and i.get("value")
        ),
        None,
    )


def covers(period: object, day: date) -> bool:
    """Whether a Period (open ends allowed) includes the day; no period covers every day."""
    if not isinstance(period, dict):
        return True
    start, end = _date(period.get("start")), _date(period.get("end"))
    return (start is None or start <= day) and (end is None or day <= end)


def claim_findings(claim: dict, coverage: dict | None, settings: JourneySettings) -> list[str]:
    """Business rules: the total is the sum of the item nets, every service lies in the coverage
    period, and items that need a prior authorization come with its reference."""
    found = []
    items = claim.get("item") or []
    if not items:
        found.append("Claim.item: a claim needs at least one item")
    nets = [money(item.get("net")) for item in items]
    total = money(claim.get("total"))
    if any(n is None for n in nets):
        found.append("Claim.item.net: every item needs a net amount")
    elif total is None:
        found.append("Claim.total: missing")
    elif abs(total - sum(n for n in nets if n is not None)) > MONEY_TOLERANCE:
        found.append(f"Claim.total: {total:.2f} is not the sum of the item nets ({sum(nets):.2f})")
    period = (coverage or {}).get("period")
    authorized = any(i.get("preAuthRef") for i in claim.get("insurance") or [])
    for index, item in enumerate(items):
        where = f"Claim.item[{index}]"
        for day in _service_days(item):
            if not covers(period, day):
                found.append(f"{where}: served on {day.isoformat()}, outside the coverage period")
        coding = next(codings(item.get("productOrService")), {})
        if not authorized and settings.needs_prior_auth(coding.get("system"), coding.get("code")):
            found.append(f"{where}: {coding.get('code')} needs a prior authorization (insurance.preAuthRef)")
    if coverage is None:
        found.append("Claim.insurance: the focal Coverage is not stored")
    return found


def focal_coverage(claim: dict) -> str | None:
    insurances = claim.get("insurance") or []
    focal = next((i for i in insurances if i.get("focal")), insurances[0] if insurances else None)
    return ((focal or {}).get("coverage") or {}).get("reference")


def claim_type(claim: dict) -> str | None:
    return code_of(claim.get("type"), canonical.CLAIM_TYPE) or code_of(claim.get("type"))


def _service_days(item: dict) -> list[date]:
    days = [_date(item.get("servicedDate"))]
    period = item.get("servicedPeriod") or {}
    days += [_date(period.get("start")), _date(period.get("end"))]
    return [d for d in days if d is not None]


def _date(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value.replace("Z", "+00:00")).date()
    except ValueError:
        return None
