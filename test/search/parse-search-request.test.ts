import { isOperationOutcomeError, type OperationOutcomeError } from '../../server/core/outcome';
import { parseSearchQueryString, parseSearchRequest } from '../../server/search/parse-search-request';

const lenient = { strict: false, defaultCount: 20, maxCount: 100 };
const strict = { ...lenient, strict: true };

function error400(fn: () => unknown): OperationOutcomeError {
  try {
    fn();
  } catch (err) {
    if (isOperationOutcomeError(err)) {
      expect(err.status).toBe(400);
      return err;
    }
    throw err;
  }
  throw new Error('expected a 400');
}

describe('parsing a search request', () => {
  test('an unknown parameter is ignored with a warning naming it, unless strict, which is a 400 naming it', () => {
    const request = parseSearchRequest('Patient', { foo: 'bar', gender: 'male' }, lenient);
    expect(request.filters).toHaveLength(1);
    expect(request.warnings).toHaveLength(1);
    expect(request.warnings[0]).toMatchObject({ severity: 'warning', code: 'not-supported', expression: ['foo'] });
    expect(request.warnings[0].diagnostics).toContain('foo');
    const err = error400(() => parseSearchRequest('Patient', { foo: 'bar' }, strict));
    expect(err.outcome.issue?.[0].diagnostics).toContain('foo');
  });

  test('a known parameter the server does not index (no FHIRPath expression: _query) is treated like an unknown one', () => {
    const request = parseSearchRequest('Observation', { _query: 'x' }, lenient);
    expect(request.filters).toEqual([]);
    expect(request.warnings[0].diagnostics).toContain('_query');
    error400(() => parseSearchRequest('Observation', { _query: 'x' }, strict));
  });

  test('malformed values are a 400 in both modes', () => {
    for (const options of [lenient, strict]) {
      error400(() => parseSearchRequest('Patient', { _lastUpdated: '2020-13-45' }, options));
      error400(() => parseSearchRequest('Patient', { _lastUpdated: 'xx2020' }, options));
      error400(() => parseSearchRequest('Patient', { _lastUpdated: '2021-02-29' }, options));
      error400(() => parseSearchRequest('Patient', { _lastUpdated: '2020-01-01T25:00:00Z' }, options));
      error400(() => parseSearchRequest('Patient', { 'gender:exact': 'male' }, options));
      error400(() => parseSearchRequest('Patient', { 'gender:missing': 'maybe' }, options));
      error400(() => parseSearchRequest('Patient', { identifier: '|' }, options));
      error400(() => parseSearchRequest('Patient', { 'identifier:of-type': 'a|b' }, options));
      error400(() => parseSearchRequest('Patient', { _count: '-1' }, options));
      error400(() => parseSearchRequest('Patient', { _count: 'ten' }, options));
      error400(() => parseSearchRequest('Patient', { _offset: '1.5' }, options));
      error400(() => parseSearchRequest('Patient', { _total: 'some' }, options));
      error400(() => parseSearchRequest('Patient', { _summary: 'maybe' }, options));
      error400(() => parseSearchRequest('Patient', { '_lastUpdated:missing': 'true' }, options));
    }
  });

  test('token values split on unescaped commas and pipes, and escapes become literal characters', () => {
    const request = parseSearchRequest('Patient', { identifier: 'http://a\\|b|x\\,y,|z\\\\,sys|,plain\\$' }, strict);
    expect(request.filters).toEqual([
      {
        kind: 'token',
        code: 'identifier',
        not: false,
        values: [{ system: 'http://a|b', code: 'x,y' }, { system: '', code: 'z\\' }, { system: 'sys' }, { code: 'plain$' }],
      },
    ]);
  });

  test('repeated parameters become separate (ANDed) filters and modifiers are kept', () => {
    const request = parseSearchRequest(
      'Patient',
      { gender: ['male', 'female'], 'identifier:not': 'x', 'identifier:text': 'Medical', 'active:missing': 'true' },
      strict
    );
    expect(request.filters).toEqual([
      { kind: 'token', code: 'gender', not: false, values: [{ code: 'male' }] },
      { kind: 'token', code: 'gender', not: false, values: [{ code: 'female' }] },
      { kind: 'token', code: 'identifier', not: true, values: [{ code: 'x' }] },
      { kind: 'token-text', code: 'identifier', texts: ['Medical'] },
      { kind: 'missing', code: 'active', missing: true },
    ]);
  });

  test('_lastUpdated values become the ranges their precision covers, in UTC', () => {
    const request = parseSearchRequest(
      'Patient',
      { _lastUpdated: ['ge2020', 'lt2020-02', 'eq2020-02-29', '2020-03-01T10:00+02:00', 'ap2020-03-01T10:00:00.5Z'] },
      strict
    );
    expect(request.filters.map((f) => (f.kind === 'lastUpdated' ? f.values : []))).toEqual([
      [{ prefix: 'ge', start: '2020-01-01T00:00:00.000Z', end: '2021-01-01T00:00:00.000Z' }],
      [{ prefix: 'lt', start: '2020-02-01T00:00:00.000Z', end: '2020-03-01T00:00:00.000Z' }],
      [{ prefix: 'eq', start: '2020-02-29T00:00:00.000Z', end: '2020-03-01T00:00:00.000Z' }],
      [{ prefix: 'eq', start: '2020-03-01T08:00:00.000Z', end: '2020-03-01T08:01:00.000Z' }],
      [{ prefix: 'ap', start: '2020-03-01T10:00:00.500Z', end: '2020-03-01T10:00:00.600Z' }],
    ]);
  });

  test('result parameters are parsed: _count is capped at the maximum with a warning', () => {
    const request = parseSearchRequest(
      'Patient',
      {
        _count: '500',
        _offset: '40',
        _total: 'accurate',
        _sort: '-_lastUpdated,_id',
        _summary: 'count',
        _elements: 'id,name',
        _format: 'json',
        _pretty: 'true',
      },
      strict
    );
    expect(request).toMatchObject({
      count: 100,
      offset: 40,
      total: 'accurate',
      sort: [
        { code: '_lastUpdated', descending: true },
        { code: '_id', descending: false },
      ],
      summary: 'count',
      elements: ['id', 'name'],
      format: 'json',
      pretty: 'true',
      filters: [],
    });
    expect(request.warnings).toHaveLength(1);
    expect(parseSearchRequest('Patient', {}, strict)).toMatchObject({ count: 20, offset: 0, total: 'none', sort: [] });
  });

  test('sorting by a parameter that cannot be sorted (a composite) is a warning, or a 400 when strict', () => {
    expect(parseSearchRequest('Observation', { _sort: 'code-value-quantity,-_id' }, lenient)).toMatchObject({
      sort: [{ code: '_id', descending: true }],
      warnings: [{ severity: 'warning' }],
    });
    error400(() => parseSearchRequest('Observation', { _sort: 'code-value-quantity' }, strict));
    expect(parseSearchRequest('Patient', { _sort: 'gender,-_id' }, strict).sort).toEqual([
      { code: 'gender', descending: false },
      { code: '_id', descending: true },
    ]);
  });

  test('a conditional-create header value parses like a query string', () => {
    const request = parseSearchQueryString('Patient', 'identifier=http://x%7C123&_id=a,b', strict);
    expect(request.filters).toEqual([
      { kind: 'token', code: 'identifier', not: false, values: [{ system: 'http://x', code: '123' }] },
      { kind: 'id', not: false, ids: ['a', 'b'] },
    ]);
    expect(parseSearchQueryString('Patient', 'identifier=http://x|123', strict).filters).toHaveLength(1);
  });

  test('an empty value constrains nothing and an unknown resource type is a 400', () => {
    expect(parseSearchRequest('Patient', { gender: '' }, strict).filters).toEqual([]);
    error400(() => parseSearchRequest('NotAType', {}, strict));
  });
});
