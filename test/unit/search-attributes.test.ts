// The worker's start-up check of the search attributes, against a stand-in for the
// operator service (the real one is exercised by every integration test's worker).
import { temporal } from '@temporalio/proto';
import { ensureSearchAttributes } from '../../lib/platform/search-attributes';

const INT = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT;
const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
type Operator = Parameters<typeof ensureSearchAttributes>[0];

function operator(existing: Record<string, number>, opts: { listFails?: boolean; addFails?: boolean } = {}) {
  const added: Record<string, number>[] = [];
  const service = {
    listSearchAttributes: async () => {
      if (opts.listFails) throw new Error('PermissionDenied');
      return { customAttributes: existing };
    },
    addSearchAttributes: async (req: { searchAttributes: Record<string, number> }) => {
      if (opts.addFails) throw new Error('PermissionDenied: not allowed');
      added.push(req.searchAttributes);
      return {};
    },
  };
  return { service: service as unknown as Operator, added };
}

test('nothing to do when all are registered', async () => {
  const o = operator({
    IngestReceived: INT,
    IngestPersisted: INT,
    IngestQuarantined: INT,
    IngestStopReason: KEYWORD,
    Other: INT,
  });
  expect(await ensureSearchAttributes(o.service, 'default')).toEqual([]);
  expect(o.added).toEqual([]);
});

test('registers the missing ones with their types', async () => {
  const o = operator({ IngestReceived: INT });
  expect(await ensureSearchAttributes(o.service, 'default')).toEqual([
    'IngestPersisted',
    'IngestQuarantined',
    'IngestStopReason',
  ]);
  expect(o.added).toEqual([{ IngestPersisted: INT, IngestQuarantined: INT, IngestStopReason: KEYWORD }]);
});

test('refuses to start when they are missing and cannot be registered, and says how to register them', async () => {
  const o = operator({}, { addFails: true });
  const err = await ensureSearchAttributes(o.service, 'prod').catch((e: Error) => e);
  expect((err as Error).message).toContain(
    'IngestReceived, IngestPersisted, IngestQuarantined, IngestStopReason are not registered in namespace prod',
  );
  expect((err as Error).message).toContain(
    'temporal operator search-attribute create --namespace prod --name IngestStopReason --type Keyword',
  );
});

test('warns and goes on when it may not even list them', async () => {
  const warnings: string[] = [];
  expect(await ensureSearchAttributes(operator({}, { listFails: true }).service, 'prod', (l) => warnings.push(l))).toEqual([]);
  expect(warnings).toEqual([
    expect.stringContaining('Could not list the search attributes of namespace prod (PermissionDenied)'),
  ]);
});
