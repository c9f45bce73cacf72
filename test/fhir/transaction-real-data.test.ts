import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundle, expectOutcomeNaming, postBundle } from '../support/bundle-requests';
import { fhirRequest } from '../support/fhir-client';
import { HL7_EXAMPLES_DIR } from '../support/hl7-examples';
import {
  contentBesidesReferences,
  identifierCriteria,
  informationFiles,
  readSyntheaBundle,
  referencesByPath,
  smallestPatientFiles,
  type SyntheaBundle,
} from '../support/synthea-bundles';
import { startTestServer, type TestServer } from '../support/test-server';

/**
 * Transactions of real data: Synthea patient bundles (urn:uuid references between
 * entries, conditional references into the two information batches) and HL7's own
 * Bundle-bundle-transaction. Expectations come from the bundle files, not the server.
 */

let server: TestServer;
/** `Type?identifier=system|value` → `Type/id` of the information batches' resources, as the batch responses located them. */
const shared = new Map<string, string>();

beforeAll(async () => {
  server = await startTestServer();
  for (const file of informationFiles()) {
    const info = readSyntheaBundle(file);
    const res = await postBundle(server.base, info);
    expect(res.status).toBe(200);
    info.entry.forEach((entry, i) => {
      const response = res.body.entry[i].response;
      expect(response.status).toMatch(/^201/);
      for (const criteria of identifierCriteria(entry.resource)) shared.set(criteria, reference(response.location));
    });
  }
});
afterAll(async () => {
  await server.stop();
});

function reference(location: string): string {
  expect(location.startsWith(`${server.base}/`)).toBe(true);
  return location.slice(server.base.length + 1).replace(/\/_history\/\d+$/, '');
}

async function readAll(references: string[]): Promise<Map<string, Record<string, any>>> {
  const found = new Map<string, Record<string, any>>();
  const distinct = [...new Set(references)];
  for (let i = 0; i < distinct.length; i += 16) {
    await Promise.all(
      distinct.slice(i, i + 16).map(async (ref) => {
        const res = await fhirRequest('GET', `${server.base}/${ref}`);
        expect({ ref, status: res.status }).toEqual({ ref, status: 200 });
        found.set(ref, res.body);
      })
    );
  }
  return found;
}

async function countsOf(types: Iterable<string>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const type of new Set(types)) {
    counts[type] = (await fhirRequest('GET', `${server.base}/${type}?_summary=count`)).body.total;
  }
  return counts;
}

/** The newest version in the system's history: unchanged when nothing was written (the AuditEvent of the refusal aside). */
async function newestVersion(): Promise<string> {
  let next: string | undefined = `${server.base}/_history?_count=1000`;
  while (next) {
    const res: { body: any } = await fhirRequest('GET', next);
    const entry = res.body.entry.find((e: { resource?: { resourceType: string } }) => e.resource?.resourceType !== 'AuditEvent');
    if (entry) return `${entry.fullUrl} ${entry.response.etag}`;
    next = res.body.link?.find((l: { relation: string }) => l.relation === 'next')?.url;
  }
  throw new Error('no version but AuditEvents in the history');
}

function patientIdentifier(b: SyntheaBundle): string {
  const p = b.entry.find((e) => e.resource.resourceType === 'Patient')?.resource;
  return `${p?.identifier[0].system}|${p?.identifier[0].value}`;
}

describe('a Synthea patient bundle as a transaction', () => {
  test('every entry is created, and every Reference read back is Type/id of the resource made from the entry with that fullUrl, or of the shared resource with that identifier', async () => {
    const [file] = smallestPatientFiles(1);
    const original = readSyntheaBundle(file);
    const res = await postBundle(server.base, original);
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry).toHaveLength(original.entry.length);

    const locations = original.entry.map((entry, i) => {
      const response = res.body.entry[i].response;
      expect(response.status).toMatch(/^201/);
      expect(response.location).toMatch(new RegExp(`^${server.base}/${entry.resource.resourceType}/[A-Za-z0-9.-]{1,64}/_history/1$`));
      expect(response.etag).toBe('W/"1"');
      expect(new Date(response.lastModified).toISOString()).toBe(response.lastModified);
      return reference(response.location);
    });
    const stored = await readAll(locations);
    const byFullUrl = new Map(original.entry.map((e) => [e.fullUrl as string, e.resource]));

    const pairs: { sent: string; stored: string }[] = [];
    original.entry.forEach((entry, i) => {
      const back = stored.get(locations[i]) as Record<string, any>;
      expect(contentBesidesReferences(back)).toEqual(contentBesidesReferences(entry.resource));
      const sent = referencesByPath(entry.resource);
      const kept = referencesByPath(back);
      expect([...kept.keys()].sort()).toEqual([...sent.keys()].sort());
      for (const [path, value] of sent) pairs.push({ sent: value, stored: kept.get(path) as string });
    });
    expect(pairs.length).toBeGreaterThan(original.entry.length);

    const targets = await readAll(pairs.filter((p) => !p.sent.startsWith('#')).map((p) => p.stored));
    let toEntries = 0;
    let conditional = 0;
    for (const { sent, stored: now } of pairs) {
      if (sent.startsWith('#')) {
        expect(now).toBe(sent);
        continue;
      }
      expect(now).toMatch(/^[A-Z][A-Za-z]+\/[A-Za-z0-9.-]{1,64}$/);
      const target = targets.get(now) as Record<string, any>;
      if (sent.startsWith('urn:uuid:')) {
        const entry = byFullUrl.get(sent) as Record<string, any>;
        expect(target.resourceType).toBe(entry.resourceType);
        expect(contentBesidesReferences(target)).toEqual(contentBesidesReferences(entry));
        toEntries++;
      } else {
        expect(sent).toMatch(/^(Practitioner|Organization|Location)\?identifier=/);
        expect(now).toBe(shared.get(sent));
        expect(identifierCriteria(target)).toContain(sent);
        conditional++;
      }
    }
    expect(toEntries).toBeGreaterThan(0);
    expect(conditional).toBeGreaterThan(0);
    expect(JSON.stringify([...stored.values()])).not.toMatch(/"reference":"(urn:|[A-Za-z]+\?)/);
  });

  test('a bad entry injected in the middle rejects the whole bundle, naming that entry, and nothing from it exists afterwards; the bundle without it loads', async () => {
    const [, file] = smallestPatientFiles(2);
    const original = readSyntheaBundle(file);
    const types = original.entry.map((e) => e.resource.resourceType);
    const before = await countsOf(types);
    const newest = await newestVersion();
    const middle = Math.floor(original.entry.length / 2);
    const patientUrl = original.entry.find((e) => e.resource.resourceType === 'Patient')?.fullUrl;

    // An Observation without its required code (Observation.code is 1..1), and a stale
    // If-Match on a stored resource, which runs after every create of the bundle.
    const badEntries = [
      {
        fullUrl: 'urn:uuid:00000000-0000-4000-8000-0000000bad01',
        resource: { resourceType: 'Observation', status: 'final', subject: { reference: patientUrl } },
        request: { method: 'POST', url: 'Observation' },
      },
      {
        resource: { resourceType: 'Organization', id: shared.values().next().value?.split('/')[1], name: 'Renamed' },
        request: { method: 'PUT', url: shared.values().next().value, ifMatch: 'W/"9"' },
      },
    ];
    for (const [bad, status] of [
      [badEntries[0], 400],
      [badEntries[1], 412],
    ] as const) {
      const injected = { ...original, entry: [...original.entry.slice(0, middle), bad, ...original.entry.slice(middle)] };
      const res = await postBundle(server.base, injected);
      expect(res.status).toBe(status);
      expectOutcomeNaming(res.body, middle);
      expect(await countsOf(types)).toEqual(before);
      expect(await newestVersion()).toBe(newest);
      const patients = await fhirRequest('GET', `${server.base}/Patient?identifier=${patientIdentifier(original)}&_summary=count`);
      expect(patients.body.total).toBe(0);
    }

    const res = await postBundle(server.base, original);
    expect(res.status).toBe(200);
    const after = await countsOf(types);
    for (const type of Object.keys(before)) {
      expect({ type, added: after[type] - before[type] }).toEqual({ type, added: types.filter((t) => t === type).length });
    }
  });
});

describe('the Synthea information batches', () => {
  test('sent again, their conditional creates answer 200 with the resource the first load made, and their plain creates (PractitionerRole) write again', async () => {
    for (const file of informationFiles()) {
      const info = readSyntheaBundle(file);
      // Both kinds of entry, from the start and the end of the file.
      const again = [...info.entry.slice(0, 20), ...info.entry.slice(-20)];
      const res = await postBundle(server.base, { ...info, entry: again });
      expect(res.status).toBe(200);
      expect(res.body.type).toBe('batch-response');
      again.forEach((entry, i) => {
        const response = res.body.entry[i].response;
        if (entry.request.ifNoneExist) {
          expect(response.status).toMatch(/^200/);
          expect(reference(response.location)).toBe(shared.get(identifierCriteria(entry.resource)[0]));
        } else {
          expect(entry.resource.resourceType).toBe('PractitionerRole');
          expect(response.status).toMatch(/^201/);
        }
      });
    }
    const organizations = await fhirRequest('GET', `${server.base}/Organization?_summary=count`);
    const sentOrganizations = readSyntheaBundle(informationFiles()[0]).entry.filter((e) => e.resource.resourceType === 'Organization');
    expect(organizations.body.total).toBe(sentOrganizations.length);
  });
});

describe("HL7's Bundle-bundle-transaction example", () => {
  const example = JSON.parse(readFileSync(join(HL7_EXAMPLES_DIR, 'Bundle-bundle-transaction.json'), 'utf8'));
  const put = (ref: string, body: Record<string, unknown>) => fhirRequest('PUT', `${server.base}/${ref}`, { body });

  test('runs on a server holding what it expects; its ValueSet/$lookup entry, an operation this server lacks, fails it as a whole', async () => {
    const matched = await fhirRequest('POST', `${server.base}/Patient`, {
      body: { resourceType: 'Patient', identifier: [{ system: 'http:/example.org/fhir/ids', value: '234234' }] },
    });
    await put('Patient/123a', { resourceType: 'Patient', id: '123a' });
    await put('Patient/123a', { resourceType: 'Patient', id: '123a', active: false });
    await put('Patient/234', { resourceType: 'Patient', id: '234' });
    const byIdentifier = await fhirRequest('POST', `${server.base}/Patient`, { body: { resourceType: 'Patient', identifier: [{ value: '123456' }] } });
    await put('Patient/12334', { resourceType: 'Patient', id: '12334' });

    const asPublished = await postBundle(server.base, example);
    const lookupAt = example.entry.findIndex((e: any) => e.request.url === 'ValueSet/$lookup');
    expect(asPublished.status).toBeGreaterThanOrEqual(400);
    expect(asPublished.status).toBeLessThan(500);
    expectOutcomeNaming(asPublished.body, lookupAt);
    expect((await fhirRequest('GET', `${server.base}/Patient/123`)).status).toBe(404);
    expect((await fhirRequest('GET', `${server.base}/Patient/234`)).status).toBe(200);
    expect((await fhirRequest('GET', `${server.base}/Patient/123a`)).body.meta.versionId).toBe('2');

    const entries = example.entry.filter((_: unknown, i: number) => i !== lookupAt);
    const res = await postBundle(server.base, bundle('transaction', entries));
    expect(res.status).toBe(200);
    const statuses = res.body.entry.map((e: any) => e.response.status.slice(0, 3));
    // POST, conditional POST (matches), PUT (creates), conditional PUT (creates), PUT If-Match, DELETE, conditional DELETE, GET search, conditional GET.
    expect(statuses).toEqual(['201', '200', '201', '201', '200', '204', '204', '200', '200']);
    const located = res.body.entry.slice(0, 5).map((e: any) => reference(e.response.location));
    expect(located[1]).toBe(`Patient/${matched.body.id}`);
    expect(located[2]).toBe('Patient/123');
    expect(res.body.entry[4].response.etag).toBe('W/"3"');
    expect((await fhirRequest('GET', `${server.base}/Patient/234`)).status).toBe(410);
    expect((await fhirRequest('GET', `${server.base}/Patient/${byIdentifier.body.id}`)).status).toBe(410);
    const peters = res.body.entry[7].resource.entry.map((e: any) => `Patient/${e.resource.id}`).sort();
    expect(peters).toEqual([located[0], located[2], located[3], located[4]].sort());
    expect(res.body.entry[8].resource.id).toBe('12334');
  });
});

describe("HL7's Bundle-xds example (a DocumentReference with its Binary)", () => {
  test("the Attachment.url naming the Binary entry's fullUrl becomes the stored Binary; relative references in an entry with a urn:uuid fullUrl stay as written", async () => {
    const example = JSON.parse(readFileSync(join(HL7_EXAMPLES_DIR, 'Bundle-xds.json'), 'utf8'));
    const entries: any[] = example.entry;
    const res = await postBundle(server.base, example);
    expect(res.status).toBe(200);
    const stored = new Map<string, string>(entries.map((entry, i) => [entry.fullUrl, reference(res.body.entry[i].response.location)]));
    const documentAt = entries.findIndex((entry) => entry.resource.resourceType === 'DocumentReference');
    const document = (await fhirRequest('GET', `${server.base}/${stored.get(entries[documentAt].fullUrl)}`)).body;
    const sent = entries[documentAt].resource;

    const binaryUrl = entries.find((entry) => entry.resource.resourceType === 'Binary').fullUrl;
    expect(sent.content[0].attachment.url).toBe(binaryUrl);
    expect(document.content[0].attachment.url).toBe(stored.get(binaryUrl));
    expect((await fhirRequest('GET', `${server.base}/${document.content[0].attachment.url}`)).status).toBe(200);

    // The authors are written relative (`Practitioner/a3`) in an entry whose fullUrl is a urn:uuid: per
    // bundle.html#references they name resources on this server, not the entries, and stay as written.
    expect(document.author).toEqual(sent.author);
    expect(document.subject).toEqual(sent.subject);
  });
});
