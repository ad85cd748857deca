"""`nphies-facade simulate` counts the eligibility messages NPHIES got again (the gateway's resends on
503s), shows only the cases the chosen journey has, and prints progress figures while it runs."""

from nphies_facade.workflows import simulate

from .server_process import run_cli


def test_eligibility_resends_are_counted_and_progress_is_printed_as_it_goes(monkeypatch, tmp_path):
    monkeypatch.setattr(simulate, "PROGRESS_SECONDS", 0.2)
    ran = run_cli(
        "simulate", "--journey", "eligibility", "--n", "30", "--concurrency", "10", "--faults", "5xx=0.3",
        "--data-dir", str(tmp_path / "data"),
    )  # fmt: skip
    assert ran.code == 0, ran.err
    header, *_ = ran.out.splitlines()
    assert "mix not-eligible=0.1,no-consent=0.02)" in header
    assert "partial" not in ran.out and "queued" not in ran.out
    resends = next(line for line in ran.out.splitlines() if "NPHIES resends" in line)
    assert int(resends.rsplit(" ", 1)[1]) > 0, resends
    progress = [line for line in ran.err.splitlines() if line.startswith("  ... ")]
    assert progress, ran.err
    assert all(
        "/30 settled (" in line and " journeys/s, " in line and " failed, " in line for line in progress
    )


def test_a_case_the_journey_does_not_have_is_refused(tmp_path):
    ran = run_cli("simulate", "--journey", "eligibility", "--n", "2", "--mix", "partial=0.1")
    assert ran.code == 2
    assert "unknown eligibility case 'partial'; known: no-consent, not-eligible" in ran.err
