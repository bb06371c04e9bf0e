// What the audit trail says about a recovery request (lib/recovery/trail.ts), on entries
// built here: the signed request verified against the registry, the frozen record set held
// to the request and the policy, and the one decision that counts (the first that verifies;
// a denial first is final). The same functions run in the recovery activities and in the
// approver's CLI; test/integration/recovery-attacks.test.ts drives them on real services.
import crypto from 'node:crypto';
import {
  generateOperatorKeys,
  parseRegistry,
  requestDigest,
  sign,
  type ApprovalBody,
  type RecoveryRequestBody,
} from '../../lib/recovery';
import type { StoredAuditEntry } from '../../lib/recovery/audit';
import { recordSetHash, type RecordRef } from '../../lib/recovery/records';
import { decisionOf, readRequest } from '../../lib/recovery/trail';
import { newRecipientKeys } from '../../lib/pii/sealed';

const keys = {
  alice: generateOperatorKeys('alice', ['pii-requester']),
  bob: generateOperatorKeys('bob', ['pii-approver']),
  dave: generateOperatorKeys('dave', ['pii-approver']),
  carol: generateOperatorKeys('carol', ['pii-requester', 'pii-approver']),
};
const registry = parseRegistry(
  Object.values(keys)
    .map((k) => k.registryLine)
    .join('\n'),
  'test registry',
);
const privateKey = (name: keyof typeof keys) => crypto.createPrivateKey(keys[name].privateKeyPem);
const policy = { maxRecords: 3, requireApproval: true, approvalTimeoutSeconds: 600, signatureMaxAgeSeconds: 300 };
const T0 = Date.parse('2026-12-06T10:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();

let nextId = 100;
const entry = (
  requestId: string,
  event: StoredAuditEntry['event'],
  details: Record<string, unknown>,
  seconds: number,
): StoredAuditEntry => ({
  id: String(nextId++),
  at: at(seconds),
  requestId,
  event,
  actor: null,
  details,
  prevHash: '',
  hash: '',
});

function requestOf(operator: keyof typeof keys = 'alice', overrides: Partial<RecoveryRequestBody> = {}) {
  const body: RecoveryRequestBody = {
    type: 'pii-recovery-request',
    requestId: crypto.randomUUID(),
    operator,
    reason: 'Account takeover report, confirm the IPs',
    ticket: 'SEC-1',
    selector: { messageIds: ['m-1', 'm-2'] },
    fields: ['ip'],
    recipientPublicKey: newRecipientKeys().publicKey,
    issuedAt: at(0),
    ...overrides,
  };
  return sign(body, privateKey(operator));
}

/** A request received and authorised with `records` (default: both messages it names). */
function trailOf(signed = requestOf(), records?: RecordRef[], expiresIn = 600) {
  const body = signed.body;
  const recs = records ?? [
    { table: 'user_logins' as const, messageId: 'm-1' },
    { table: 'user_logins' as const, messageId: 'm-2' },
  ];
  const hash = recordSetHash({ requestId: body.requestId, selector: body.selector, fields: body.fields, records: recs });
  return {
    body,
    hash,
    entries: [
      entry(body.requestId, 'request_received', { document: body, signature: signed.signature }, 1),
      entry(body.requestId, 'authorised', { records: recs, recordSetHash: hash, expiresAt: at(2 + expiresIn) }, 2),
    ],
  };
}

function decision(
  t: ReturnType<typeof trailOf>,
  operator: keyof typeof keys,
  choice: 'approve' | 'deny',
  seconds: number,
  overrides: Partial<ApprovalBody> = {},
): StoredAuditEntry {
  const body: ApprovalBody = {
    type: 'pii-recovery-approval',
    requestId: t.body.requestId,
    operator,
    decision: choice,
    requestDigest: requestDigest(t.body),
    recordSetHash: t.hash,
    issuedAt: at(seconds),
    ...overrides,
  };
  const signed = sign(body, privateKey(operator));
  return entry(t.body.requestId, 'decision_signed', { document: signed.body, signature: signed.signature }, seconds);
}

const read = (t: { body: RecoveryRequestBody; entries: StoredAuditEntry[] }, trustedAfter = 0n) =>
  readRequest(t.entries, t.body.requestId, registry, policy, trustedAfter);
const decided = (t: ReturnType<typeof trailOf>) => {
  const r = read(t);
  if (!r.ok) throw new Error(r.detail);
  return decisionOf(t.entries, r.trail, registry, policy);
};

describe('readRequest', () => {
  test('a request received and authorised by the recovery side reads back verified, with its digest and record set', () => {
    const t = trailOf();
    const r = read(t);
    expect(r).toMatchObject({ ok: true, trail: { request: t.body, digest: requestDigest(t.body) } });
    if (r.ok)
      expect(r.trail.authorised).toMatchObject({ recordSetHash: t.hash, records: [{ messageId: 'm-1' }, { messageId: 'm-2' }] });
  });

  test('a request the trail does not hold, or holds twice, is not one', () => {
    const t = trailOf();
    expect(readRequest([], t.body.requestId, registry, policy)).toMatchObject({ ok: false, code: 'not_authorised' });
    expect(read({ ...t, entries: [t.entries[0], ...t.entries] })).toMatchObject({ ok: false, code: 'forged' });
  });

  test('a document whose signature is not its operator’s, or whose operator does not hold pii-requester, is forged', () => {
    const t = trailOf();
    const signedByBob = sign({ ...t.body, reason: 'Court order, all of it' }, privateKey('bob'));
    const swapped = {
      ...t,
      entries: [{ ...t.entries[0], details: { document: signedByBob.body, signature: signedByBob.signature } }, t.entries[1]],
    };
    expect(read(swapped)).toMatchObject({ ok: false, code: 'forged', detail: expect.stringMatching(/bad_signature/) });
    const byApprover = trailOf(requestOf('bob'));
    expect(read(byApprover)).toMatchObject({ ok: false, code: 'forged', detail: expect.stringMatching(/pii-requester/) });
  });

  test('a record set over the limit, outside the selector, or expiring beyond the approval timeout is forged', () => {
    const over = trailOf(
      requestOf('alice', { selector: { userId: 'u-1' } }),
      ['a', 'b', 'c', 'd'].map((m) => ({ table: 'user_logins' as const, messageId: m })),
    );
    expect(read(over)).toMatchObject({ ok: false, code: 'forged', detail: expect.stringMatching(/4 records; the limit is 3/) });
    const foreign = trailOf(requestOf(), [{ table: 'user_logins', messageId: 'someone-else' }]);
    expect(read(foreign)).toMatchObject({ ok: false, code: 'forged', detail: expect.stringMatching(/the selector does not/) });
    expect(read(trailOf(requestOf(), undefined, 365 * 24 * 3600))).toMatchObject({
      ok: false,
      code: 'forged',
      detail: expect.stringMatching(/beyond the approval timeout/),
    });
    const t = trailOf();
    const misHashed = {
      ...t,
      entries: [t.entries[0], { ...t.entries[1], details: { ...t.entries[1].details, recordSetHash: 'f'.repeat(64) } }],
    };
    expect(read(misHashed)).toMatchObject({ ok: false, code: 'forged' });
  });

  test('entries from before each writer had its own role are not trusted', () => {
    const t = trailOf();
    expect(read(t, BigInt(t.entries[0].id))).toMatchObject({
      ok: false,
      code: 'forged',
      detail: expect.stringMatching(/migration 0006/),
    });
  });
});

describe('decisionOf', () => {
  test('no decision yet; then the first that verifies counts', () => {
    const t = trailOf();
    expect(decided(t)).toEqual({ decided: false, refused: [] });
    t.entries.push(decision(t, 'bob', 'approve', 10));
    expect(decided(t)).toMatchObject({ decided: true, decision: 'approve', approver: 'bob' });
  });

  test('a denial first is final: no approval after it counts', () => {
    const t = trailOf();
    t.entries.push(decision(t, 'bob', 'deny', 10), decision(t, 'dave', 'approve', 11));
    expect(decided(t)).toMatchObject({ decided: true, decision: 'deny', approver: 'bob' });
  });

  test('an approval first is the decision; a denial after it does not change it', () => {
    const t = trailOf();
    t.entries.push(decision(t, 'bob', 'approve', 10), decision(t, 'dave', 'deny', 10));
    expect(decided(t)).toMatchObject({ decided: true, decision: 'approve', approver: 'bob' });
  });

  test('decisions that do not verify are listed with their reason and skipped', () => {
    const t = trailOf(requestOf('carol'));
    const other = trailOf();
    t.entries.push(
      decision(t, 'carol', 'approve', 5), // the requester herself
      decision(t, 'alice', 'approve', 6), // not an approver
      decision(t, 'bob', 'approve', 7, { requestDigest: requestDigest(other.body) }), // another request's content
      decision(t, 'bob', 'approve', 8, { recordSetHash: other.hash }), // another record set
      decision(t, 'bob', 'approve', 9, { requestId: other.body.requestId }), // signed for another request
      decision(t, 'bob', 'approve', 700), // after the expiry
    );
    const d = decided(t);
    expect(d.decided).toBe(false);
    expect(d.refused.map((r) => r.code)).toEqual([
      'self_approval',
      'not_an_approver',
      'wrong_request_digest',
      'wrong_record_set',
      'wrong_request',
      'expired',
    ]);
  });

  test('a decision whose document was altered after signing does not verify', () => {
    const t = trailOf();
    const honest = decision(t, 'bob', 'deny', 10);
    const altered = {
      ...honest,
      details: { ...honest.details, document: { ...(honest.details.document as object), decision: 'approve' } },
    };
    t.entries.push(altered);
    expect(decided(t)).toMatchObject({ decided: false, refused: [{ code: 'bad_signature' }] });
  });

  test('nothing after an expired entry counts', () => {
    const t = trailOf();
    t.entries.push(entry(t.body.requestId, 'expired', {}, 300), decision(t, 'bob', 'approve', 301));
    expect(decided(t)).toEqual({ decided: false, refused: [] });
  });
});
