import type { Resource } from '@medplum/fhirtypes';
import type { IncludeRule } from '../../server/search/search-request';
import { type IncludeReader, resolveIncludes } from '../../server/storage/include-resolution';

/**
 * The include walk on its own, over an in-memory graph: limits are never silent, cycles
 * end, and nothing is included twice. (HTTP tests cover the same walk against PostgreSQL.)
 */
function patient(id: string, link?: string): Resource {
  return { resourceType: 'Patient', id, ...(link ? { link: [{ other: { reference: `Patient/${link}` }, type: 'seealso' }] } : {}) } as Resource;
}

function observation(id: string, subject: string): Resource {
  return { resourceType: 'Observation', id, status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${subject}` } } as Resource;
}

function memoryReader(resources: Resource[]): IncludeReader & { calls: number } {
  const reader = {
    calls: 0,
    readByIds: async (type: string, ids: string[]) => {
      reader.calls++;
      return resources.filter((r) => r.resourceType === type && ids.includes(r.id as string));
    },
    readReferring: async (type: string, code: string, references: string[], limit: number) => {
      reader.calls++;
      const field = code === 'subject' ? 'subject' : code;
      return resources
        .filter((r) => r.resourceType === type && references.includes((r as unknown as Record<string, { reference?: string }>)[field]?.reference ?? ''))
        .slice(0, limit);
    },
  };
  return reader;
}

const rule = (sourceType: string, code: string, iterate = false): IncludeRule => ({ sourceType, code, iterate });
const keys = (rs: Resource[]): string[] => rs.map((r) => `${r.resourceType}/${r.id}`);

test('a cycle of references (Patient.link a → b → c → a) ends once everything is included, each resource once', async () => {
  const graph = [patient('a', 'b'), patient('b', 'c'), patient('c', 'a')];
  const result = await resolveIncludes({ include: [rule('Patient', 'link', true)] }, [graph[0]], memoryReader(graph), 100);
  expect(keys(result.resources)).toEqual(['Patient/b', 'Patient/c']);
  expect(result.truncated).toBe(false);
});

test('without :iterate only the matches’ own references are followed', async () => {
  const graph = [patient('a', 'b'), patient('b', 'c'), patient('c')];
  const result = await resolveIncludes({ include: [rule('Patient', 'link')] }, [graph[0]], memoryReader(graph), 100);
  expect(keys(result.resources)).toEqual(['Patient/b']);
});

test('more included resources than the limit are cut at the limit and reported as truncated', async () => {
  const p = patient('p');
  const observations = Array.from({ length: 12 }, (_, i) => observation(`o${i}`, 'p'));
  const result = await resolveIncludes({ revinclude: [rule('Observation', 'subject')] }, [p], memoryReader([p, ...observations]), 5);
  expect(result.resources).toHaveLength(5);
  expect(result.truncated).toBe(true);
  const exact = await resolveIncludes({ revinclude: [rule('Observation', 'subject')] }, [p], memoryReader([p, ...observations]), 12);
  expect(exact.resources).toHaveLength(12);
  expect(exact.truncated).toBe(false);
});

test('a chain of :iterate longer than the round limit is reported as truncated rather than cut silently', async () => {
  const chain = Array.from({ length: 20 }, (_, i) => patient(`p${i}`, i < 19 ? `p${i + 1}` : undefined));
  const result = await resolveIncludes({ include: [rule('Patient', 'link', true)] }, [chain[0]], memoryReader(chain), 1000);
  expect(result.truncated).toBe(true);
  expect(result.resources.length).toBeGreaterThan(5);
  expect(result.resources.length).toBeLessThan(19);
});

test('no rules, no reads', async () => {
  const reader = memoryReader([]);
  expect(await resolveIncludes({}, [patient('a')], reader, 10)).toEqual({ resources: [], truncated: false });
  expect(reader.calls).toBe(0);
});
