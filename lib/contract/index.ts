// lib/contract/: what workflows, activities, the CLI and configuration agree on, so that
// each fact has one home: the names (task queues, workflow IDs, the schedule: `names`), the
// ingest's options with their ranges and defaults (`ingest-options`), the shapes and counts
// that cross the history (`types`), the run's search attributes (`run-attributes`), and the
// recovery's policy and refusals (`recovery`), the tables re-encryption walks (`reencrypt`). Workflow code imports it, so it may import
// nothing with I/O: only itself and @temporalio/common (test/unit/layout.test.ts checks).
// Start reading at `ingest-options`, then `types`.
export * from './names';
export * from './ingest-options';
export * from './types';
export * from './run-attributes';
export * from './recovery';
export * from './reencrypt';
