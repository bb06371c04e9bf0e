// The embedded services' addresses (`npm run services`, `npm run demo`: services/index.ts
// writes them to <DATA_DIR>/services.json while they run), for the configuration to fall
// back on when the environment does not name a service.
import fs from 'node:fs';
import path from 'node:path';

/** Addresses written by the embedded services while they run (services/index.ts). */
export interface EmbeddedServices {
  pid: number;
  temporalAddress: string;
  temporalUiUrl: string | null;
  /** As the ingest worker's role. */
  databaseUrl: string;
  /** As the recovery worker's role (absent in files written before there were writer roles). */
  recoveryDatabaseUrl?: string;
  /** As the operators' role (likewise). */
  operatorDatabaseUrl?: string;
  /** As the owner role, which runs the migrations (absent in files written before there were two roles). */
  ownerDatabaseUrl?: string;
  sqsQueueUrl: string;
  sqsEndpoint: string;
}

export function servicesFile(dataDir: string): string {
  return path.join(dataDir, 'services.json');
}

/** The embedded services' addresses, if they are running; null otherwise. */
export function readEmbeddedServices(dataDir: string): EmbeddedServices | null {
  let parsed: EmbeddedServices;
  try {
    parsed = JSON.parse(fs.readFileSync(servicesFile(dataDir), 'utf8')) as EmbeddedServices;
  } catch {
    return null;
  }
  try {
    process.kill(parsed.pid, 0); // throws when that process is gone
    return parsed;
  } catch {
    return null;
  }
}
