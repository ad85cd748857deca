// fhir-kit-client (the JavaScript FHIR client) against a running server: node fhir_kit_client.mjs BASE_URL
// with FHIR_KIT_CLIENT set to the installed package's entry module. Exits non-zero on the first mismatch.
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';

const { Client } = await import(pathToFileURL(process.env.FHIR_KIT_CLIENT).href);
const client = new Client({ baseUrl: process.argv[2] });
const SYSTEM = 'urn:oid:1.2.3.4.6';

async function status(promise) {
  try {
    await promise;
    return 200;
  } catch (error) {
    assert.equal(error.response.data.resourceType, 'OperationOutcome');
    return error.response.status;
  }
}

const patient = await client.create({
  resourceType: 'Patient',
  body: { resourceType: 'Patient', name: [{ family: 'Alotaibi', given: ['Reem'] }], gender: 'female' },
});
assert.ok(patient.id);
assert.equal(patient.meta.versionId, '1');

const found = await client.search({ resourceType: 'Patient', searchParams: { family: 'Alotaibi' } });
assert.equal(found.total, 1);
assert.deepEqual(found.entry.map((e) => e.resource.id), [patient.id]);
const counted = await client.search({ resourceType: 'Patient', searchParams: { family: 'Alotaibi', _summary: 'count' } });
assert.equal(counted.total, 1);
const none = await client.search({ resourceType: 'Patient', searchParams: { family: 'Nobody' } });
assert.equal(none.total, 0);
assert.equal(none.entry, undefined);

const patched = await client.patch({
  resourceType: 'Patient',
  id: patient.id,
  jsonPatch: [{ op: 'replace', path: '/gender', value: 'other' }],
  options: { headers: { 'If-Match': 'W/"1"' } },
});
assert.equal(patched.gender, 'other');
assert.equal(patched.meta.versionId, '2');
const stale = client.patch({
  resourceType: 'Patient',
  id: patient.id,
  jsonPatch: [{ op: 'replace', path: '/gender', value: 'male' }],
  options: { headers: { 'If-Match': 'W/"1"' } },
});
assert.equal(await status(stale), 412);

const twin = { resourceType: 'Patient', identifier: [{ system: SYSTEM, value: 'fk-1' }], gender: 'male' };
const ifNoneExist = { headers: { 'If-None-Exist': `identifier=${SYSTEM}|fk-1` } };
const first = await client.create({ resourceType: 'Patient', body: twin, options: ifNoneExist });
const again = await client.create({ resourceType: 'Patient', body: twin, options: ifNoneExist });
assert.equal(again.id, first.id);
const twins = await client.search({ resourceType: 'Patient', searchParams: { identifier: `${SYSTEM}|fk-1` } });
assert.equal(twins.total, 1);

const updated = await client.update({
  resourceType: 'Patient',
  id: patient.id,
  body: { ...patched, active: true },
});
assert.equal(updated.meta.versionId, '3');
assert.equal((await client.read({ resourceType: 'Patient', id: patient.id })).active, true);

await client.delete({ resourceType: 'Patient', id: patient.id });
assert.equal(await status(client.read({ resourceType: 'Patient', id: patient.id })), 410);
assert.equal(await status(client.request('no/such/route')), 404);
console.log('fhir-kit-client: ok');
