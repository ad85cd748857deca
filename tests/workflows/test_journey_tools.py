"""`nphies-facade demo` and `nphies-facade simulate` run their journeys to the end and report them."""

from nphies_facade.workflows import simulate
from nphies_facade.workflows.journeys.demo import demo


async def test_the_demo_verifies_eligibility_and_takes_a_claim_to_paid(tmp_path):
    said: list[str] = []
    assert await demo(tmp_path / "data", said.append) == 0
    text = "\n".join(said)
    assert "Patient registration and eligibility: completed, businessStatus verified" in text
    assert "Claims lifecycle: completed, businessStatus paid" in text
    assert "claim.paid" in text and "($submit, its own timeline)" in text


async def test_simulate_reports_the_outcomes_and_kpis_of_every_journey(tmp_path):
    plan = simulate.Plan("claims", 8, concurrency=4, mix={"partial": 0.4, "queued": 0.3}, seed=3)
    said: list[str] = []
    report = await simulate.simulate(plan, tmp_path / "data", said.append)
    assert sum(report.outcomes.values()) == 8
    assert set(report.outcomes) <= {"completed:paid", "completed:partially-paid", "completed:denied"}
    assert report.submissions["success"] == 8
    assert len(report.turnaround) == 8
    assert any(line.strip().startswith("claim submission success") for line in said)


async def test_simulated_reviews_past_their_sla_are_escalated(tmp_path):
    plan = simulate.Plan("eligibility", 6, concurrency=6, mix={"not-eligible": 1.0}, on_time=0.0, seed=1)
    report = await simulate.simulate(plan, tmp_path / "data", lambda line: None)
    assert report.reviews == 6 and report.reviewed_on_time == 0
    assert report.escalated == 6
    assert report.outcomes == {"completed:verified": 6}


def test_fault_and_case_shares_are_checked():
    assert simulate.shares("5xx=0.1,latency=0.5", simulate.FAULT_KINDS, "fault") == {
        "5xx": 0.1,
        "latency": 0.5,
    }
    for bad in ("5xx=2", "boom=0.1", "5xx"):
        try:
            simulate.shares(bad, simulate.FAULT_KINDS, "fault")
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} was accepted")
