"""Search over HTTP: searchset Bundles, links and paging, totals, summaries, includes, strict and lenient
handling, POST _search, system search and the portal's Task queries."""

import pytest

BASE = "http://fhir.test"
NID = "http://nphies.sa/identifier/nationalid"
SUBSETTED = "SUBSETTED"


def _patient(family: str, born: str, nid: str, **extra) -> dict:
    return {
        "resourceType": "Patient",
        "name": [{"family": family, "given": ["Test"]}],
        "birthDate": born,
        "gender": "female",
        "identifier": [{"system": NID, "value": nid}],
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        **extra,
    }


async def _create(client, resource: dict) -> str:
    response = await client.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def _patients(client, n: int) -> list[str]:
    return [
        await _create(client, _patient(f"Family{i}", f"19{60 + i}-01-01", f"10{i:08d}")) for i in range(n)
    ]


def _ids(bundle: dict, mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def _link(bundle: dict, relation: str) -> str | None:
    return next((link["url"] for link in bundle["link"] if link["relation"] == relation), None)


async def _get(client, url: str) -> dict:
    response = await client.get(url.removeprefix(BASE))
    assert response.status_code == 200, response.text
    return response.json()


async def test_searchset_has_full_urls_modes_and_a_self_link(client):
    pid = (await _patients(client, 1))[0]
    bundle = await _get(client, "/Patient?family=family&_count=10")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    assert bundle["total"] == 1  # the first page holds every match
    assert bundle["entry"] == [
        {
            "fullUrl": f"{BASE}/Patient/{pid}",
            "resource": bundle["entry"][0]["resource"],
            "search": {"mode": "match"},
        }
    ]
    assert _link(bundle, "self") == f"{BASE}/Patient?family=family&_count=10"
    assert _link(bundle, "next") is None


async def test_total_is_given_only_when_asked(client):
    await _patients(client, 3)
    assert "total" not in await _get(client, "/Patient?_count=1")
    assert (await _get(client, "/Patient?_count=1&_total=accurate"))["total"] == 3
    assert (await _get(client, "/Patient?_count=1&_total=estimate"))["total"] == 3
    counted = await _get(client, "/Patient?_summary=count")
    assert counted["total"] == 3 and "entry" not in counted


async def test_next_and_previous_links_walk_every_match_once(client):
    created = await _patients(client, 5)
    page = await _get(client, "/Patient?_count=2&_sort=birthdate")
    forward = _ids(page)
    while _link(page, "next"):
        page = await _get(client, _link(page, "next"))
        forward += _ids(page)
    assert forward == created
    backward = list(reversed(_ids(page)))
    while _link(page, "previous"):
        page = await _get(client, _link(page, "previous"))
        backward += list(reversed(_ids(page)))
    assert backward == list(reversed(created))


async def test_a_cursor_from_another_sort_is_refused(client):
    await _patients(client, 3)
    page = await _get(client, "/Patient?_count=1&_sort=birthdate")
    cursor = _link(page, "next").split("_cursor=")[1]
    response = await client.get(f"/Patient?_count=1&_sort=-_lastUpdated&_cursor={cursor}")
    assert response.status_code == 400
    assert (await client.get("/Patient?_cursor=garbage")).status_code == 400


async def test_unknown_parameters_are_reported_or_refused(client):
    await _patients(client, 1)
    lenient = await _get(client, "/Patient?nonsense=1&family=family")
    assert len(_ids(lenient)) == 1
    outcome = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome[0]["resource"]["issue"][0]["expression"] == ["nonsense"]
    assert outcome[0]["fullUrl"].startswith("urn:uuid:")
    assert "nonsense" not in _link(lenient, "self")
    strict = await client.get("/Patient?nonsense=1", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["expression"] == ["nonsense"]


@pytest.mark.parametrize("query", ["birthdate=notadate", "birthdate=zz2020", "gender:exact=x", "_count=-1"])
async def test_malformed_values_are_400_even_when_lenient(client, query):
    response = await client.get(f"/Patient?{query}")
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.json()["issue"][0]["expression"] == [query.split("=")[0]]


async def test_unknown_type_is_404(client):
    assert (await client.get("/Nonsense?x=1")).status_code == 404


async def test_post_search_takes_form_parameters_and_the_url_query(client):
    ids = await _patients(client, 3)
    response = await client.post(
        "/Patient/_search?_count=5",
        content=f"identifier={NID}|1000000001",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert _ids(response.json()) == [ids[1]]
    assert "identifier=" in _link(response.json(), "self")
    wrong = await client.post("/Patient/_search", json={"identifier": "x"})
    assert wrong.status_code == 415


async def test_system_search_by_type_and_over_everything(client):
    pids = await _patients(client, 2)
    org = await _create(client, {"resourceType": "Organization", "name": "Payer"})
    typed = await _get(client, "/?_type=Organization,Patient&_count=10")
    assert sorted(_ids(typed)) == sorted([*pids, org])
    only = await _get(client, f"/?_type=Organization&_id={org}")
    assert _ids(only) == [org]
    everything = await _get(client, "/?_count=2")
    seen = _ids(everything)
    while _link(everything, "next"):
        everything = await _get(client, _link(everything, "next"))
        seen += _ids(everything)
    assert set(seen) >= {*pids, org}
    posted = await client.post(
        "/_search",
        content="_type=Patient&_count=5",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert sorted(_ids(posted.json())) == sorted(pids)


async def test_summary_and_elements_subset_and_tag_the_resources(client):
    await _create(client, _patient("Summary", "1970-01-01", "1", maritalStatus={"text": "M"}))
    summary = (await _get(client, "/Patient?_summary=true"))["entry"][0]["resource"]
    assert {"name", "birthDate", "identifier", "gender"} <= summary.keys()
    assert "maritalStatus" not in summary and "text" not in summary
    assert any(t["code"] == SUBSETTED for t in summary["meta"]["tag"])
    text = (await _get(client, "/Patient?_summary=text"))["entry"][0]["resource"]
    assert set(text) == {"resourceType", "id", "meta", "text"}
    data = (await _get(client, "/Patient?_summary=data"))["entry"][0]["resource"]
    assert "text" not in data and "maritalStatus" in data
    elements = (await _get(client, "/Patient?_elements=gender,deceased"))["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "gender"}
    assert any(t["code"] == SUBSETTED for t in elements["meta"]["tag"])
    whole = (await _get(client, "/Patient"))["entry"][0]["resource"]
    assert "maritalStatus" in whole and "tag" not in whole["meta"]


async def _portal_data(client) -> dict:
    patient = await _create(client, _patient("Portal", "1980-01-01", "42"))
    # references must name resources that exist: the provider (the Tasks' owner) and the coverage
    provider = await client.put(
        "/Organization/prov", json={"resourceType": "Organization", "id": "prov", "name": "Provider"}
    )
    assert provider.status_code == 201, provider.text
    coverage = await _create(
        client,
        {
            "resourceType": "Coverage",
            "status": "active",
            "beneficiary": {"reference": f"Patient/{patient}"},
            "payor": [{"reference": "Organization/prov"}],
        },
    )
    claim = await _create(
        client,
        {
            "resourceType": "Claim",
            "status": "active",
            "use": "claim",
            "type": {"coding": [{"code": "institutional"}]},
            "created": "2024-01-01",
            "patient": {"reference": f"Patient/{patient}"},
            "provider": {"reference": "Organization/prov"},
            "priority": {"coding": [{"code": "normal"}]},
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{coverage}"}}],
        },
    )
    tasks = []
    for status in ("requested", "in-progress", "completed", "requested"):
        tasks.append(
            await _create(
                client,
                {
                    "resourceType": "Task",
                    "status": status,
                    "intent": "order",
                    "owner": {"reference": "Organization/prov"},
                    "focus": {"reference": f"Claim/{claim}"},
                    "for": {"reference": f"Patient/{patient}"},
                    "businessStatus": {"coding": [{"code": "waiting"}]},
                },
            )
        )
    return {"patient": patient, "claim": claim, "tasks": tasks}


async def test_portal_task_query_sorts_newest_first_and_includes_focus_and_patient(client):
    data = await _portal_data(client)
    query = (
        "/Task?owner=Organization/prov&status=requested,in-progress&business-status=waiting"
        "&_sort=-_lastUpdated&_include=Task:focus&_include=Task:patient&_count=2"
    )
    page = await _get(client, query)
    tasks = data["tasks"]
    assert _ids(page) == [tasks[3], tasks[1]]
    assert sorted(_ids(page, "include")) == sorted([data["claim"], data["patient"]])
    rest = await _get(client, _link(page, "next"))
    assert _ids(rest) == [tasks[0]] and _link(rest, "next") is None
    # an update moves a task to the front; pages already handed out keep their place
    await client.put(
        f"/Task/{tasks[0]}", json={**(await client.get(f"/Task/{tasks[0]}")).json(), "status": "in-progress"}
    )
    assert _ids(await _get(client, query))[0] == tasks[0]


async def test_includes_iterate_star_target_type_and_revinclude(client):
    data = await _portal_data(client)
    task = data["tasks"][0]
    iterated = await _get(client, f"/Task?_id={task}&_include=Task:focus&_include:iterate=Claim:patient")
    assert sorted(_ids(iterated, "include")) == sorted([data["claim"], data["patient"]])
    not_iterated = await _get(client, f"/Task?_id={task}&_include=Task:focus&_include=Claim:patient")
    assert _ids(not_iterated, "include") == [data["claim"]]
    star = await _get(client, f"/Task?_id={task}&_include=*")
    assert sorted(_ids(star, "include")) == sorted([data["claim"], data["patient"], "prov"])  # owner too
    narrowed = await _get(client, f"/Task?_id={task}&_include=Task:focus:Patient")
    assert _ids(narrowed, "include") == []
    reverse = await _get(client, f"/Patient?_id={data['patient']}&_revinclude=Task:patient")
    assert sorted(_ids(reverse, "include")) == sorted(data["tasks"])
    both_ways = await _get(
        client, f"/Claim?_id={data['claim']}&_revinclude=Task:focus&_include:iterate=Task:patient"
    )
    assert sorted(_ids(both_ways, "include")) == sorted([*data["tasks"], data["patient"]])
    # the Tasks still refer to the Claim, so it cannot be deleted and their includes never dangle
    refused = await client.delete(f"/Claim/{data['claim']}")
    assert refused.status_code == 409, refused.text
    still = await _get(client, f"/Task?_id={task}&_include=Task:focus")
    assert _ids(still, "include") == [data["claim"]]


async def test_chains_and_reverse_chains_over_http(client):
    data = await _portal_data(client)
    chained = await _get(client, f"/Claim?patient.identifier={NID}|42")
    assert _ids(chained) == [data["claim"]]
    reverse = await _get(client, "/Claim?_has:Task:focus:status=completed")
    assert _ids(reverse) == [data["claim"]]
    assert _ids(await _get(client, "/Claim?_has:Task:focus:status=cancelled")) == []


async def test_bundle_get_entries_search_and_see_the_transaction_writes(client):
    await _patients(client, 2)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"request": {"method": "GET", "url": "Patient?family=family1&_total=accurate"}}],
    }
    answered = (await client.post("/", json=batch)).json()["entry"][0]
    assert answered["response"]["status"].startswith("200")
    assert answered["resource"]["type"] == "searchset" and answered["resource"]["total"] == 1
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": _patient("Newcomer", "2000-01-01", "99"),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"request": {"method": "GET", "url": "Patient?identifier=99"}},
        ],
    }
    response = await client.post("/", json=transaction)
    assert response.status_code == 200, response.text
    found = response.json()["entry"][1]["resource"]
    assert [e["resource"]["name"][0]["family"] for e in found["entry"]] == ["Newcomer"]
