// Every workflow the worker runs. The worker bundles this file (Temporal's workflow sandbox).
export { ingestWorkflow, scheduledIngestWorkflow } from './ingest';
export { recoveryWorkflow } from './recovery';
export { reencryptWorkflow } from './reencrypt';
export { auditAnchorWorkflow } from './anchor';
