import { extractIndexValues } from '../../server/search/extract-index-values';
import { indexedParams } from '../../server/search/supported-parameters';
import { loadHl7Examples } from './search-fixtures';

describe('index value extraction', () => {
  // Its speed is measured by `npm run bench:extraction`, never asserted in a test.
  test('a Bundle document is searchable by its Composition', () => {
    const bundle = loadHl7Examples(['Bundle']).find((b) => (b as { type?: string }).type === 'document');
    const composition = (bundle as { entry: { resource: { resourceType: string; id: string } }[] }).entry[0].resource;
    expect(indexedParams('Bundle').get('composition')?.expression.compiled).toBe(false);
    expect(extractIndexValues(bundle as never).__composition).toEqual([`${composition.resourceType}/${composition.id}`]);
  });
});
