"""Retention with a virtual clock: PHI past its period is purged or anonymised, history included, each
action audited; resources under legal hold are never touched."""

import orjson
import pytest

from nphies_facade.resources import retention
from nphies_facade.resources.context import RequestContext

from .conftest import patient
from .test_abac import claim


@pytest.fixture
def secure_settings(secure_settings):
    """Referential integrity off: the access-rule cases here refer to people and organizations that only
    their tokens name, and delete what others refer to (tests/integration/test_references_http.py covers
    the references)."""
    return secure_settings.model_copy(update={"referential_integrity": "off"})


SYSTEM = RequestContext.system()
HOLD = {"system": "urn:nphies-facade:retention", "code": "legal-hold"}
RULES = retention.parse_rules(
    {"Claim": {"days": 30, "action": "purge"}, "Patient": {"days": 30, "action": "anonymise"}}
)


@pytest.fixture
def service(secure_app):
    return secure_app.state.service


async def versions(service, resource_type: str, resource_id: str) -> list[dict]:
    async with service.transaction() as tx:
        stored = await service.store.security().versions(tx, resource_type, resource_id)
    return [orjson.loads(v.body) for v in stored if v.body is not None]


async def test_expired_phi_is_purged_or_anonymised_and_held_resources_stay(service, clock, secure_app):
    await service.update(SYSTEM, "Claim", "old-claim", claim("old-claim", "Organization/o1"))
    await service.update(SYSTEM, "Claim", "old-claim", claim("old-claim", "Organization/o2"))
    await service.update(
        SYSTEM, "Claim", "held-claim", {**claim("held-claim", "Organization/o1"), "meta": {"tag": [HOLD]}}
    )
    await service.update(
        SYSTEM, "Patient", "old-patient", patient("old-patient", family="Zahrani", birthDate="1980-04-02")
    )
    await service.update(
        SYSTEM, "Patient", "old-patient", patient("old-patient", family="Zahrani-2", birthDate="1980-04-02")
    )
    clock.advance(days=20)
    await service.update(SYSTEM, "Claim", "young-claim", claim("young-claim", "Organization/o1"))
    await service.audit.drain()
    audited_before = len(await service.store.security().audit_rows(0, 10_000))

    clock.advance(days=15)
    report = await retention.sweep(service, RULES)

    assert (report.purged, report.anonymised, report.held, report.errors) == (1, 1, 1, 0)
    assert await service.store.read("Claim", "old-claim") is None
    assert await service.store.vread("Claim", "old-claim", 1) is None
    assert (await service.store.read("Claim", "held-claim")).body is not None
    assert (await service.store.read("Claim", "young-claim")).body is not None
    for version in await versions(service, "Patient", "old-patient"):
        assert "name" not in version and version["birthDate"] == "1980"
        assert {"system": "urn:nphies-facade:retention", "code": "anonymised"} in version["meta"]["tag"]
        assert "Zahrani" not in orjson.dumps(version).decode()
    await service.audit.drain()
    rows = (await service.store.security().audit_rows(0, 10_000))[audited_before:]
    assert {(r.action, r.subtype, r.entity) for r in rows} >= {
        ("D", "retention-purge", "Claim/old-claim"),
        ("U", "retention-anonymise", "Patient/old-patient"),
    }
    assert all(r.actor == "retention" for r in rows)

    again = await retention.sweep(service, RULES)
    assert (again.purged, again.anonymised, again.held) == (0, 0, 1)


def test_retention_rules_are_checked():
    with pytest.raises(retention.RetentionError, match="days"):
        retention.parse_rules({"Claim": {"days": 0}})
    with pytest.raises(retention.RetentionError, match="action"):
        retention.parse_rules({"Claim": {"days": 5, "action": "shred"}})
    with pytest.raises(retention.RetentionError, match="resource type"):
        retention.parse_rules({"Nonsense": {"days": 5}})
