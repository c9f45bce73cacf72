import { OFFICIAL_OPERATION_DEFINITIONS } from '../../server/fhir/capabilities';
import { Repository } from '../../server/storage/repository';
import { publishOperationDefinitions, shippedOperationDefinitions } from '../../server/operations/operation-definitions';
import { routes } from '../../server/fhir/routes';
import { fhirRequest } from '../support/fhir-client';
import { startTestServer, type TestServer } from '../support/test-server';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

describe('OperationDefinitions of the server\'s own operations', () => {
  it('every operation the CapabilityStatement offers names a definition, and ours resolve on this server to the same code', async () => {
    const metadata = (await fhirRequest('GET', `${server.base}/metadata`)).body;
    const offered = metadata.rest[0].resource.flatMap((r: any) => (r.operation ?? []).map((o: any) => ({ type: r.type, ...o })));
    expect(offered.length).toBeGreaterThan(0);
    for (const operation of offered) {
      expect(typeof operation.definition).toBe('string');
      if (!operation.definition.startsWith(server.base)) continue;
      const res = await fhirRequest('GET', operation.definition);
      expect({ url: operation.definition, status: res.status }).toEqual({ url: operation.definition, status: 200 });
      expect(res.body.url).toBe(operation.definition);
      expect(res.body.code).toBe(operation.name);
      expect(res.body.resource).toContain(operation.type);
    }
  });

  it('every routed custom operation has a shipped definition, and every shipped definition is routed', () => {
    // A route that names its definition (HL7's ValueSet- / CodeSystem-validate-code, Bulk Data's) is not one of ours.
    const custom = new Set(
      routes.filter((r) => r.definition === undefined).map((r) => r.operation).filter((o): o is string => o !== undefined && !(o in OFFICIAL_OPERATION_DEFINITIONS))
    );
    expect(new Set(shippedOperationDefinitions('http://x/fhir').map((d) => d.code))).toEqual(custom);
  });

  it('the shipped definitions are valid, and publishing them again adds no version', async () => {
    for (const definition of shippedOperationDefinitions(server.base)) {
      const res = await fhirRequest('POST', `${server.base}/OperationDefinition/$validate`, { body: definition });
      expect({ id: definition.id, issues: res.body.issue.filter((i: any) => i.severity === 'error') }).toEqual({ id: definition.id, issues: [] });
    }
    await publishOperationDefinitions(new Repository(server.server.knex, { searchDefaultCount: 20, searchMaxCount: 100 }), server.base);
    const history = await fhirRequest('GET', `${server.base}/OperationDefinition/transfer/_history`);
    expect(history.body.entry).toHaveLength(1);
  });
});
