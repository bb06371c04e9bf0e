// Makes sure the server knows the ingest's search attributes (lib/contract/run-attributes.ts) before
// the worker runs a workflow that upserts them: an unknown one fails every workflow task of
// the run. The embedded dev server registers them at start; against another server the
// worker registers the missing ones itself (this needs operator rights), and otherwise
// refuses to start and says how to register them.
import { temporal } from '@temporalio/proto';
import { INGEST_SEARCH_ATTRIBUTES, SEARCH_ATTRIBUTE_ARGS } from '../contract/run-attributes';

type OperatorService = temporal.api.operatorservice.v1.OperatorService;
const INDEXED_TYPE: Record<string, temporal.api.enums.v1.IndexedValueType> = {
  INT: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_INT,
  KEYWORD: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
};

export function registerCommands(namespace: string): string[] {
  return SEARCH_ATTRIBUTE_ARGS.map((a) => {
    const [name, type] = a.split('=');
    return `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type ${type}`;
  });
}

/**
 * Returns the names it registered (empty when all were there). When the server does not let
 * this worker list them (some hosted setups), it warns and goes on: they may exist anyway.
 */
export async function ensureSearchAttributes(
  operator: OperatorService,
  namespace: string,
  warn: (line: string) => void = () => {},
): Promise<string[]> {
  let customAttributes: Record<string, unknown> | null | undefined;
  try {
    ({ customAttributes } = await operator.listSearchAttributes({ namespace }));
  } catch (err) {
    warn(
      `Could not list the search attributes of namespace ${namespace} (${(err as Error).message}); if they are not registered, ` +
        `ingest runs fail their workflow tasks. Register them with:\n  ${registerCommands(namespace).join('\n  ')}`,
    );
    return [];
  }
  const missing = INGEST_SEARCH_ATTRIBUTES.filter((k) => !(customAttributes && k.name in customAttributes));
  if (!missing.length) return [];
  try {
    await operator.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, INDEXED_TYPE[k.type]])),
    });
  } catch (err) {
    throw new Error(
      `The ingest's search attributes ${missing.map((k) => k.name).join(', ')} are not registered in namespace ${namespace}, ` +
        `and registering them failed (${(err as Error).message}). Register them once with:\n  ${registerCommands(namespace).join('\n  ')}\n` +
        '(Temporal Cloud: tcld namespace search-attributes add, or the Cloud UI.)',
    );
  }
  return missing.map((k) => k.name);
}
