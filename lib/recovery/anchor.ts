// Anchors of the audit trail outside the database (README, "Audit trail"): `audit anchor`
// and the anchor schedule write the trail's head (entry count, last ID, last hash, time) as
// a new, immutable record; `audit verify` compares the chain with every anchor it can read
// (the comparison itself: anchor-check.ts).
//
// Two stores:
//   * S3 (AUDIT_ANCHOR=s3://bucket/prefix): each anchor a new object, written with Object
//     Lock in COMPLIANCE mode until AUDIT_ANCHOR_RETENTION_DAYS from now, so that nobody, the
//     bucket's owner and the root account included, can delete or overwrite it before then.
//     A bucket without Object Lock is refused when the store is opened (the worker's start,
//     `audit anchor`), not at the first anchor. Every version of every object under the
//     prefix is read back, so an anchor overwritten by a newer version is still compared.
//   * A local append-only file (the embedded default, <DATA_DIR>/audit-anchors.jsonl): one
//     JSON line per anchor. It keeps a development trail honest against a database rebuilt
//     by hand; it is not evidence against someone who owns the machine.
import fs from 'node:fs';
import path from 'node:path';
import {
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import type { Config } from '../platform/config';
import type { Db } from '../platform/db';
import { errorMessage } from '../platform/guards';
import { GENESIS_HASH } from './audit';
import {
  compareWithAnchors,
  newAnchor,
  parseAnchor,
  type Anchor,
  type AnchorFinding,
  type AuditHead,
  type ChainPoint,
  type ReadAnchor,
} from './anchor-check';

export class AnchorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnchorError';
  }
}

export interface AnchorStore {
  /** Where anchors go, for messages: `s3://bucket/prefix` or the file's path. */
  readonly description: string;
  /** Refuses a store that cannot keep anchors immutable (S3: a bucket without Object Lock). */
  open(): Promise<void>;
  /** Writes one anchor as a new record; returns where (S3 key and version, or file line). */
  write(anchor: Anchor): Promise<string>;
  /** Every anchor it holds, oldest first where the store knows the order. */
  list(): Promise<ReadAnchor[]>;
  close(): void;
}

/** One JSON line per anchor, appended (O_APPEND) and flushed; never rewritten. */
export class FileAnchorStore implements AnchorStore {
  constructor(readonly file: string) {}
  get description(): string {
    return this.file;
  }

  /** Nothing to check: the folder is made at the first write, so a worker on a read-only disk without AUDIT_ANCHOR still starts. */
  async open(): Promise<void> {}

  async write(anchor: Anchor): Promise<string> {
    await fs.promises.mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const handle = await fs.promises.open(this.file, 'a', 0o600);
    try {
      await handle.write(JSON.stringify(anchor) + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    return this.file;
  }

  async list(): Promise<ReadAnchor[]> {
    let text: string;
    try {
      text = await fs.promises.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new AnchorError(`${this.file} cannot be read: ${errorMessage(err)}`);
    }
    return text
      .split('\n')
      .map((line, i) => ({ line, where: `${this.file}:${i + 1}` }))
      .filter(({ line }) => line.trim() !== '')
      .map(({ line, where }) => {
        const parsed = parseAnchor(line);
        return typeof parsed === 'string' ? { where, anchor: null, problem: parsed } : { where, anchor: parsed };
      });
  }

  close(): void {}
}

function explainS3Error(err: unknown, bucket: string, action: string): string {
  const name = (err as { name?: string; Code?: string })?.name ?? '';
  switch (name) {
    case 'NoSuchBucket':
      return `bucket ${bucket} does not exist (check AUDIT_ANCHOR and AWS_REGION)`;
    case 'AccessDenied':
    case 'Forbidden':
      return `access denied to bucket ${bucket} for ${action}: grant this process's role ${action} on it (README, "Audit trail")`;
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
      return `bucket ${bucket} is in another region than AWS_REGION (${name}): set AWS_REGION to the bucket's region`;
    default:
      return `${action} on bucket ${bucket} failed: ${name ? `${name}: ` : ''}${errorMessage(err)}`;
  }
}

/** Each anchor a new S3 object under COMPLIANCE-mode Object Lock. */
export class S3AnchorStore implements AnchorStore {
  readonly #client: S3Client;
  constructor(
    private readonly options: { bucket: string; prefix: string; region: string; endpoint?: string; retentionDays: number },
    client?: S3Client,
  ) {
    this.#client =
      client ??
      new S3Client({
        region: options.region,
        ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      });
  }

  get description(): string {
    return `s3://${this.options.bucket}/${this.options.prefix}`;
  }

  private key(anchor: Anchor): string {
    const name = `audit-anchor-${anchor.at.replace(/[:.]/g, '-')}-${anchor.entries}.json`;
    return this.options.prefix ? `${this.options.prefix}/${name}` : name;
  }

  async open(): Promise<void> {
    const { bucket } = this.options;
    let enabled: string | undefined;
    try {
      const out = await this.#client.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
      enabled = out.ObjectLockConfiguration?.ObjectLockEnabled;
    } catch (err) {
      if ((err as { name?: string }).name !== 'ObjectLockConfigurationNotFoundError')
        throw new AnchorError(explainS3Error(err, bucket, 's3:GetBucketObjectLockConfiguration'));
    }
    if (enabled !== 'Enabled')
      throw new AnchorError(
        `bucket ${bucket} has no Object Lock, so its anchors could be deleted or overwritten: use a bucket created with Object Lock enabled ` +
          `(aws s3api create-bucket --object-lock-enabled-for-bucket …), or point AUDIT_ANCHOR at one`,
      );
  }

  async write(anchor: Anchor): Promise<string> {
    const { bucket, retentionDays } = this.options;
    const key = this.key(anchor);
    try {
      const out = await this.#client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: JSON.stringify(anchor),
          ContentType: 'application/json',
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: new Date(Date.parse(anchor.at) + retentionDays * 86_400_000),
          ChecksumAlgorithm: 'SHA256',
        }),
      );
      return `s3://${bucket}/${key}${out.VersionId ? `?versionId=${out.VersionId}` : ''}`;
    } catch (err) {
      throw new AnchorError(explainS3Error(err, bucket, 's3:PutObject and s3:PutObjectRetention'));
    }
  }

  async list(): Promise<ReadAnchor[]> {
    const { bucket, prefix } = this.options;
    const versions: { key: string; versionId?: string; modified: number }[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    try {
      for (;;) {
        const page = await this.#client.send(
          new ListObjectVersionsCommand({
            Bucket: bucket,
            Prefix: prefix ? `${prefix}/` : undefined,
            KeyMarker: keyMarker,
            VersionIdMarker: versionMarker,
          }),
        );
        for (const v of page.Versions ?? [])
          if (v.Key) versions.push({ key: v.Key, versionId: v.VersionId, modified: v.LastModified?.getTime() ?? 0 });
        if (!page.IsTruncated) break;
        keyMarker = page.NextKeyMarker;
        versionMarker = page.NextVersionIdMarker;
      }
    } catch (err) {
      throw new AnchorError(explainS3Error(err, bucket, 's3:ListBucketVersions'));
    }
    versions.sort((a, b) => a.modified - b.modified || a.key.localeCompare(b.key));
    const read = async (v: (typeof versions)[number]): Promise<ReadAnchor> => {
      const where = `s3://${bucket}/${v.key}${v.versionId && v.versionId !== 'null' ? `?versionId=${v.versionId}` : ''}`;
      try {
        const out = await this.#client.send(new GetObjectCommand({ Bucket: bucket, Key: v.key, VersionId: v.versionId }));
        const parsed = parseAnchor((await out.Body?.transformToString('utf8')) ?? '');
        return typeof parsed === 'string' ? { where, anchor: null, problem: parsed } : { where, anchor: parsed };
      } catch (err) {
        return { where, anchor: null, problem: explainS3Error(err, bucket, 's3:GetObjectVersion') };
      }
    };
    const out: ReadAnchor[] = [];
    for (let i = 0; i < versions.length; i += 16) out.push(...(await Promise.all(versions.slice(i, i + 16).map(read))));
    return out;
  }

  close(): void {
    this.#client.destroy();
  }
}

/** The store AUDIT_ANCHOR names (not yet opened). */
export function anchorStore(config: Pick<Config, 'auditAnchor'>): AnchorStore {
  const a = config.auditAnchor;
  return a.kind === 's3' ? new S3AnchorStore(a) : new FileAnchorStore(a.path);
}

/** The trail's head, in one statement (one snapshot). */
export async function auditHead(db: Pick<Db, '$queryRaw'>): Promise<AuditHead> {
  const rows = await db.$queryRaw<{ id: bigint; hash: string; n: bigint }[]>`
    SELECT id, hash, (SELECT count(*) FROM pii_audit_log) AS n FROM pii_audit_log ORDER BY id DESC LIMIT 1`;
  if (!rows.length) return { entries: 0, lastId: null, lastHash: GENESIS_HASH };
  return { entries: Number(rows[0].n), lastId: rows[0].id.toString(), lastHash: rows[0].hash };
}

/** Takes the head and writes it to the store. */
export async function writeAnchor(
  db: Pick<Db, '$queryRaw'>,
  store: AnchorStore,
  now = new Date(),
): Promise<{ anchor: Anchor; where: string }> {
  const anchor = newAnchor(await auditHead(db), now);
  return { anchor, where: await store.write(anchor) };
}

/** The hash and position of each of these entries still in the chain. */
async function chainPoints(db: Pick<Db, '$queryRaw'>, ids: string[]): Promise<Map<string, ChainPoint>> {
  if (!ids.length) return new Map();
  const rows = await db.$queryRaw<{ id: bigint; hash: string; n: bigint }[]>`
    SELECT id, hash, n FROM (SELECT id, hash, row_number() OVER (ORDER BY id) AS n FROM pii_audit_log) t
    WHERE id::text = ANY(${ids}::text[])`;
  return new Map(rows.map((r) => [r.id.toString(), { hash: r.hash, position: Number(r.n) }]));
}

export interface AnchorVerification {
  anchors: number;
  findings: AnchorFinding[];
}

/** Compares the chain with every anchor in the store; a store that cannot be read is itself a finding (never a pass). */
export async function verifyAnchors(db: Pick<Db, '$queryRaw'>, store: AnchorStore): Promise<AnchorVerification> {
  let anchors: ReadAnchor[];
  try {
    anchors = await store.list();
  } catch (err) {
    const problem = `the anchors in ${store.description} cannot be read: ${errorMessage(err)}`;
    return { anchors: 0, findings: [{ anchor: store.description, entry: null, problem }] };
  }
  const head = await auditHead(db);
  const ids = [...new Set(anchors.flatMap((a) => (a.anchor?.lastId ? [a.anchor.lastId] : [])))];
  const points = await chainPoints(db, ids);
  return { anchors: anchors.length, findings: compareWithAnchors(head, points, anchors) };
}
