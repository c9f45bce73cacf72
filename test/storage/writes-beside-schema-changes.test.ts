import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Writes that run while SearchParameters change a type's index columns. An update reads
 * the current version between building its index values and sending its statement; a
 * SearchParameter written in that gap changed the statement's column list, and the write
 * failed with a 500 ("bind message supplies 52 parameters, but prepared statement …
 * requires 54"; found by fuzzing, ~1 write in 300 while parameters changed). The write now
 * builds its values again for the new statement.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

test('updates keep succeeding while a SearchParameter on their type is created, retired and deleted over and over', async () => {
  const shoe = (i: number) => [{ url: 'http://example.org/shoe', valueString: `size${i % 7}` }];
  for (let p = 0; p < 8; p++) {
    expect((await fhirRequest('PUT', `${server.base}/Patient/shoe-${p}`, { body: { resourceType: 'Patient', id: `shoe-${p}`, extension: shoe(p) } })).status).toBe(201);
  }
  let changing = true;
  const statuses: number[] = [];
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; changing; i++) {
      const id = `shoe-${(w * 2 + (i % 2)) % 8}`;
      statuses.push((await fhirRequest('PUT', `${server.base}/Patient/${id}`, { body: { resourceType: 'Patient', id, name: [{ family: `F${i}` }], extension: shoe(i) } })).status);
    }
  });
  for (let k = 0; k < 24; k++) {
    const code = `shoe${k % 3}`;
    const parameter = {
      resourceType: 'SearchParameter',
      id: `sp-${code}`,
      url: `http://example.org/sp/${code}`,
      name: code,
      status: k % 2 === 0 ? 'active' : 'retired',
      description: 'shoe size',
      code,
      base: ['Patient'],
      type: 'string',
      expression: "Patient.extension.where(url='http://example.org/shoe').value",
    };
    expect((await fhirRequest('PUT', `${server.base}/SearchParameter/sp-${code}`, { body: parameter })).status).toBeLessThan(300);
    if (k % 4 === 3) expect((await fhirRequest('DELETE', `${server.base}/SearchParameter/sp-${code}`)).status).toBe(204);
  }
  changing = false;
  await Promise.all(writers);
  expect(statuses.length).toBeGreaterThan(20);
  expect(statuses.filter((s) => s !== 200)).toEqual([]);
});
