import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  canonicalJson,
  checkRegistration,
  generateOperatorKeys,
  hasRole,
  loadRegistry,
  MAX_FUTURE_SKEW_MS,
  parseRegistry,
  readPrivateKey,
  registrationProblem,
  RegistryError,
  sign,
  validateApprovalBody,
  validateRequestBody,
  verifySigned,
  writePrivateKey,
  type ApprovalBody,
  type OperatorRegistry,
  type RecoveryRequestBody,
  type Role,
  type Signed,
} from '../../lib/recovery';
import { newRecipientKeys } from '../../lib/pii/sealed';
import { makeTempDir, removeTempDirs } from './helpers';

afterAll(removeTempDirs);

const SRC = 'operators.jsonl';
const NOW = new Date('2025-06-01T12:00:00.000Z');
const MAX_AGE_MS = 15 * 60 * 1000;
const isoAgo = (ms: number) => new Date(NOW.getTime() - ms).toISOString();
const rawEd25519 = () =>
  Buffer.from(crypto.generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64');

/** The RegistryError a call throws. */
function registryError(run: () => unknown): RegistryError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(RegistryError);
    return err as RegistryError;
  }
  throw new Error('expected a RegistryError, but nothing was thrown');
}

interface TestOperator {
  name: string;
  key: crypto.KeyObject;
  line: string;
}
function makeOperator(name: string, roles: Role[]): TestOperator {
  const keys = generateOperatorKeys(name, roles);
  return { name, key: crypto.createPrivateKey(keys.privateKeyPem), line: keys.registryLine };
}
const alice = makeOperator('alice', ['pii-requester']);
const bob = makeOperator('bob', ['pii-approver']);
const carol = makeOperator('carol.ops', ['pii-requester', 'pii-approver']);
const registry: OperatorRegistry = parseRegistry([alice.line, bob.line, carol.line].join('\n'), SRC);
const recipient = newRecipientKeys();

function requestBody(overrides: Record<string, unknown> = {}): RecoveryRequestBody {
  return {
    type: 'pii-recovery-request',
    requestId: '7f1c2a9e-3b4d-4c5e-8f60-718293a4b5c6',
    operator: 'alice',
    reason: 'Fraud investigation of account takeover',
    ticket: 'SEC-1234',
    selector: { messageIds: ['3f1e0c2a-0001', '3f1e0c2a-0002'] },
    fields: ['ip', 'device_id'],
    recipientPublicKey: recipient.publicKey,
    issuedAt: isoAgo(10_000),
    ...overrides,
  };
}

function approvalBody(overrides: Record<string, unknown> = {}): ApprovalBody {
  return {
    type: 'pii-recovery-approval',
    requestId: '7f1c2a9e-3b4d-4c5e-8f60-718293a4b5c6',
    operator: 'bob',
    decision: 'approve',
    recordSetHash: 'c'.repeat(64),
    requestDigest: 'd'.repeat(64),
    comment: 'Checked the ticket',
    issuedAt: isoAgo(5_000),
    ...overrides,
  };
}

const verifyRequest = (signed: unknown, now = NOW) =>
  verifySigned<RecoveryRequestBody>(signed, 'pii-recovery-request', registry, now, MAX_AGE_MS, validateRequestBody);
const verifyApproval = (signed: unknown, now = NOW) =>
  verifySigned<ApprovalBody>(signed, 'pii-recovery-approval', registry, now, MAX_AGE_MS, validateApprovalBody);
const codeOf = (result: { ok: boolean; code?: string }) => (result.ok ? 'ok' : result.code);

describe('parseRegistry', () => {
  it('reads operators, skipping comments and blank lines, with CRLF line ends', () => {
    const text = ['# PII operators', '', alice.line, '   ', '  # bob approves', bob.line, carol.line, ''].join('\r\n');
    const reg = parseRegistry(text, SRC);
    expect([...reg.byName.keys()]).toEqual(['alice', 'bob', 'carol.ops']);
    const a = reg.byName.get('alice')!;
    expect(a).toEqual({ name: 'alice', roles: ['pii-requester'], publicKey: JSON.parse(alice.line).publicKey });
    expect(hasRole(a, 'pii-requester')).toBe(true);
    expect(hasRole(a, 'pii-approver')).toBe(false);
    expect(hasRole(reg.byName.get('carol.ops')!, 'pii-approver')).toBe(true);
    expect(Object.isFrozen(a) && Object.isFrozen(a.roles)).toBe(true);
  });

  it('accepts an empty registry (nobody may recover anything)', () => {
    expect(parseRegistry('# nobody yet\n\n', SRC).byName.size).toBe(0);
  });

  const key = rawEd25519();
  const line = (o: Record<string, unknown>) => JSON.stringify({ name: 'dave', roles: ['pii-approver'], publicKey: key, ...o });
  const invalid: [string, string, RegExp][] = [
    ['not JSON', '{"name": "dave",', /not valid JSON/],
    ['an array', '["dave"]', /expected an object .* got an array/],
    ['a string', '"dave"', /expected an object .* got string/],
    ['an unknown field', line({ role: 'pii-approver' }), /unknown field "role"/],
    ['no publicKey', JSON.stringify({ name: 'dave', roles: ['pii-approver'] }), /missing field "publicKey"/],
    ['no roles', JSON.stringify({ name: 'dave', publicKey: key }), /missing field "roles"/],
    ['an upper-case name', line({ name: 'Dave' }), /name "Dave" must match/],
    ['a name starting with a dot', line({ name: '.dave' }), /name ".dave" must match/],
    ['a 65-character name', line({ name: 'd'.repeat(65) }), /must match/],
    ['a name that is not a string', line({ name: 7 }), /name must be a string, got number/],
    ['no roles listed', line({ roles: [] }), /roles must name at least one/],
    ['an unknown role', line({ roles: ['pii-requester', 'admin'] }), /unknown role "admin"/],
    ['roles as a string', line({ roles: 'pii-approver' }), /roles must be an array, got string/],
    ['a role twice', line({ roles: ['pii-approver', 'pii-approver'] }), /roles lists a role twice/],
    [
      'a 31-byte key',
      line({ publicKey: crypto.randomBytes(31).toString('base64') }),
      /publicKey of dave must be a raw 32-byte Ed25519 public key/,
    ],
    ['a 33-byte key', line({ publicKey: crypto.randomBytes(33).toString('base64') }), /raw 32-byte Ed25519/],
    ['a key that is not base64', line({ publicKey: 'not-a-key!' }), /raw 32-byte Ed25519/],
    ['a key in base64url', line({ publicKey: Buffer.from(key, 'base64').toString('base64url') }), /raw 32-byte Ed25519/],
    ['a key that is a number', line({ publicKey: 12 }), /raw 32-byte Ed25519/],
    ['a duplicate name', line({ name: 'alice' }), /operator "alice" is already defined on line 2/],
    [
      'a duplicate public key',
      line({ publicKey: JSON.parse(alice.line).publicKey }),
      /publicKey of dave is already the key of the operator on line 2/,
    ],
  ];
  it.each(invalid)('names the source, the line and the problem for %s', (_what, bad, problem) => {
    const text = ['# operators', alice.line, '', bad, bob.line].join('\n');
    const err = registryError(() => parseRegistry(text, SRC));
    expect(err.message).toMatch(/^operators\.jsonl: line 4: /);
    expect(err.message).toMatch(problem);
  });
});

describe('loadRegistry', () => {
  it('reads the file', () => {
    const file = path.join(makeTempDir(), 'operators.jsonl');
    fs.writeFileSync(file, `${alice.line}\n${bob.line}\n`);
    expect([...loadRegistry(file).byName.keys()]).toEqual(['alice', 'bob']);
  });

  it('names PII_OPERATORS_FILE when the file is missing, and in content errors', () => {
    const dir = makeTempDir();
    const missing = path.join(dir, 'nope.jsonl');
    expect(registryError(() => loadRegistry(missing)).message).toContain(`PII_OPERATORS_FILE=${missing} cannot be read`);
    const broken = path.join(dir, 'broken.jsonl');
    fs.writeFileSync(broken, `${alice.line}\n{oops\n`);
    expect(registryError(() => loadRegistry(broken)).message).toContain(`PII_OPERATORS_FILE (${broken}): line 2: not valid JSON`);
  });
});

describe('generateOperatorKeys', () => {
  it('makes a registry line that parses back to the same key, which verifies the private key’s signatures', () => {
    const keys = generateOperatorKeys('erin_2', ['pii-requester', 'pii-approver']);
    const reg = parseRegistry(keys.registryLine, SRC);
    expect(reg.byName.get('erin_2')).toEqual({
      name: 'erin_2',
      roles: ['pii-requester', 'pii-approver'],
      publicKey: keys.publicKey,
    });
    expect(Buffer.from(keys.publicKey, 'base64')).toHaveLength(32);
    const signed = sign(requestBody({ operator: 'erin_2' }), crypto.createPrivateKey(keys.privateKeyPem));
    expect(verifySigned(signed, 'pii-recovery-request', reg, NOW, MAX_AGE_MS, validateRequestBody).ok).toBe(true);
  });

  it('refuses a bad name or no roles (the line would not parse)', () => {
    expect(registryError(() => generateOperatorKeys('Bad Name', ['pii-requester'])).message).toMatch(/must match/);
    expect(registryError(() => generateOperatorKeys('ok', [])).message).toMatch(/at least one/);
    expect(registryError(() => generateOperatorKeys('ok', ['root' as Role])).message).toMatch(/unknown role "root"/);
  });
});

describe('writePrivateKey / readPrivateKey', () => {
  it('writes 0600 into a new 0700 folder, never overwrites, and reads the key back', () => {
    const dir = path.join(makeTempDir(), 'keys', 'nested');
    const file = path.join(dir, 'alice.pem');
    const keys = generateOperatorKeys('alice', ['pii-requester']);
    writePrivateKey(file, keys.privateKeyPem);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(file, 'utf8')).toBe(keys.privateKeyPem);

    const other = generateOperatorKeys('alice', ['pii-requester']);
    expect(() => writePrivateKey(file, other.privateKeyPem)).toThrow(/already exists/);
    expect(fs.readFileSync(file, 'utf8')).toBe(keys.privateKeyPem);

    const key = readPrivateKey(file);
    expect(key.asymmetricKeyType).toBe('ed25519');
    const signed = sign(requestBody({ operator: 'erin' }), key);
    const reg = parseRegistry(keys.registryLine.replace('"alice"', '"erin"'), SRC);
    expect(verifySigned(signed, 'pii-recovery-request', reg, NOW, MAX_AGE_MS, validateRequestBody).ok).toBe(true);
  });

  it('sets 0600 whatever the umask', () => {
    const file = path.join(makeTempDir(), 'k.pem');
    const previous = process.umask(0o000);
    try {
      writePrivateKey(file, generateOperatorKeys('x', ['pii-approver']).privateKeyPem);
    } finally {
      process.umask(previous);
    }
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses to write something that is not a private key', () => {
    const file = path.join(makeTempDir(), 'k.pem');
    expect(() => writePrivateKey(file, 'hello')).toThrow(/not a PEM private key/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('says why a file cannot be used as an operator key', () => {
    const dir = makeTempDir();
    expect(() => readPrivateKey(path.join(dir, 'missing.pem'))).toThrow(/missing\.pem cannot be read/);
    const garbage = path.join(dir, 'garbage.pem');
    fs.writeFileSync(garbage, 'not a key');
    expect(() => readPrivateKey(garbage)).toThrow(/not an unencrypted PEM private key/);
    const x = path.join(dir, 'x25519.pem');
    fs.writeFileSync(x, newRecipientKeys().privateKeyPem);
    expect(() => readPrivateKey(x)).toThrow(/holds a x25519 key; operators sign with Ed25519/);
  });
});

describe('sign / verifySigned', () => {
  it('round-trips a request and an approval, also through JSON', () => {
    const request = sign(requestBody(), alice.key);
    const result = verifyRequest(JSON.parse(JSON.stringify(request)));
    expect(result).toEqual({ ok: true, operator: registry.byName.get('alice'), body: requestBody() });
    const approval = verifyApproval(sign(approvalBody(), bob.key));
    expect(approval.ok && approval.operator.name).toBe('bob');
    const withoutComment = approvalBody();
    delete withoutComment.comment;
    expect(verifyApproval(sign(withoutComment, bob.key)).ok).toBe(true);
  });

  it('signs the canonical JSON of the body, and returns a copy unaffected by later changes', () => {
    const body = requestBody();
    const signed = sign(body, alice.key);
    const pub = crypto.createPublicKey({
      key: {
        kty: 'OKP',
        crv: 'Ed25519',
        x: Buffer.from(registry.byName.get('alice')!.publicKey, 'base64').toString('base64url'),
      },
      format: 'jwk',
    });
    expect(crypto.verify(null, Buffer.from(canonicalJson(body)), pub, Buffer.from(signed.signature, 'base64'))).toBe(true);
    body.reason = 'changed after signing, long enough';
    expect(signed.body.reason).toBe('Fraud investigation of account takeover');
    expect(verifyRequest(signed).ok).toBe(true);
  });

  it('verifies the same body with its keys in another order', () => {
    const signed = sign(requestBody(), alice.key);
    const reversed = Object.fromEntries(Object.entries(signed.body).reverse());
    expect(Object.keys(reversed)).toEqual(Object.keys(signed.body).reverse());
    expect(verifyRequest({ signature: signed.signature, body: reversed }).ok).toBe(true);
    // And the other way round: signed in insertion order, verified with keys sorted.
    const body = { ...requestBody(), selector: { messageIds: ['m-1'] } };
    const byAlice = sign(body, alice.key);
    const sorted = JSON.parse(canonicalJson(body));
    expect(Object.keys(sorted)).not.toEqual(Object.keys(body));
    expect(verifyRequest({ body: sorted, signature: byAlice.signature }).ok).toBe(true);
  });

  it.each<[string, Record<string, unknown>]>([
    ['reason', { reason: 'Fraud investigation of account takeovers' }],
    ['selector', { selector: { messageIds: ['3f1e0c2a-0001', '3f1e0c2a-0003'] } }],
    ['selector kind', { selector: { userId: 'someone-else' } }],
    ['requestId', { requestId: '7f1c2a9e-3b4d-4c5e-8f60-718293a4b5c7' }],
    ['recipientPublicKey', { recipientPublicKey: newRecipientKeys().publicKey }],
    ['fields', { fields: ['ip', 'device_id', 'body'] }],
    ['issuedAt', { issuedAt: isoAgo(1_000) }],
    ['ticket', { ticket: 'SEC-1235' }],
  ])('fails with bad_signature when the %s is changed after signing', (_field, change) => {
    const signed = sign(requestBody(), alice.key);
    const tampered = { ...signed, body: { ...signed.body, ...change } };
    const result = verifyRequest(tampered);
    expect(codeOf(result)).toBe('bad_signature');
  });

  it('fails with bad_signature for a flipped signature byte', () => {
    const signed = sign(requestBody(), alice.key);
    const sig = Buffer.from(signed.signature, 'base64');
    sig[10] ^= 0x01;
    expect(codeOf(verifyRequest({ ...signed, signature: sig.toString('base64') }))).toBe('bad_signature');
  });

  it('fails with bad_signature when bob signs a body that names alice (or moves alice’s signature to carol)', () => {
    expect(codeOf(verifyRequest(sign(requestBody({ operator: 'alice' }), bob.key)))).toBe('bad_signature');
    const byAlice = sign(requestBody(), alice.key);
    expect(codeOf(verifyRequest({ ...byAlice, body: { ...byAlice.body, operator: 'carol.ops' } }))).toBe('bad_signature');
    expect(codeOf(verifyApproval(sign(approvalBody({ operator: 'carol.ops' }), bob.key)))).toBe('bad_signature');
  });

  it('fails with unknown_operator for a name not in the registry', () => {
    const mallory = crypto.generateKeyPairSync('ed25519').privateKey;
    const result = verifyRequest(sign(requestBody({ operator: 'mallory' }), mallory));
    expect(result).toEqual({ ok: false, code: 'unknown_operator', detail: expect.stringContaining('"mallory"') });
    for (const sneaky of ['constructor', 'hasownproperty', 'tostring']) {
      expect(codeOf(verifyRequest(sign(requestBody({ operator: sneaky }), mallory)))).toBe('unknown_operator');
    }
  });

  it('fails with unsigned when the signature is empty, null or missing', () => {
    const signed = sign(requestBody(), alice.key);
    expect(codeOf(verifyRequest({ ...signed, signature: '' }))).toBe('unsigned');
    expect(codeOf(verifyRequest({ ...signed, signature: null }))).toBe('unsigned');
    expect(codeOf(verifyRequest({ body: signed.body }))).toBe('unsigned');
    expect(codeOf(verifyRequest({}))).toBe('unsigned');
  });

  it('fails with malformed for a signature that is not 64 bytes of base64', () => {
    const signed = sign(requestBody(), alice.key);
    for (const sig of ['abc', 42, ['x'], signed.signature + 'AA', signed.signature.slice(0, -4), ` ${signed.signature}`]) {
      expect(codeOf(verifyRequest({ ...signed, signature: sig }))).toBe('malformed');
    }
  });

  it('fails with stale past maxAgeMs, and accepts the boundary', () => {
    expect(codeOf(verifyRequest(sign(requestBody({ issuedAt: isoAgo(MAX_AGE_MS + 1) }), alice.key)))).toBe('stale');
    expect(codeOf(verifyRequest(sign(requestBody({ issuedAt: isoAgo(7 * 24 * 3600 * 1000) }), alice.key)))).toBe('stale');
    expect(codeOf(verifyRequest(sign(requestBody({ issuedAt: isoAgo(MAX_AGE_MS) }), alice.key)))).toBe('ok');
  });

  it('fails with from_the_future more than 2 minutes ahead, and allows clock skew within them', () => {
    expect(codeOf(verifyRequest(sign(requestBody({ issuedAt: isoAgo(-MAX_FUTURE_SKEW_MS - 1) }), alice.key)))).toBe(
      'from_the_future',
    );
    expect(codeOf(verifyApproval(sign(approvalBody({ issuedAt: isoAgo(-3600_000) }), bob.key)))).toBe('from_the_future');
    expect(codeOf(verifyRequest(sign(requestBody({ issuedAt: isoAgo(-MAX_FUTURE_SKEW_MS) }), alice.key)))).toBe('ok');
    expect(codeOf(verifyRequest(sign(requestBody({ issuedAt: '2025-06-01T14:01:00+02:00' }), alice.key)))).toBe('ok');
  });

  const manyIds = (n: number) => Array.from({ length: n }, (_, i) => `msg-${i}`);
  it.each<[string, Record<string, unknown>, RegExp]>([
    ['another type', { type: 'pii-recovery-approval' }, /expected a pii-recovery-request document/],
    ['a bad UUID', { requestId: 'not-a-uuid' }, /requestId must be a lower-case UUID v4/],
    ['a UUID v1', { requestId: '7f1c2a9e-3b4d-1c5e-8f60-718293a4b5c6' }, /UUID v4/],
    ['an upper-case UUID', { requestId: '7F1C2A9E-3B4D-4C5E-8F60-718293A4B5C6' }, /UUID v4/],
    ['a reason too short', { reason: 'because' }, /reason must be 10\.\.1000 characters/],
    ['a reason of blanks', { reason: '             ' }, /reason must be 10\.\.1000/],
    ['a reason too long', { reason: 'x'.repeat(1001) }, /reason must be 10\.\.1000/],
    ['a reason with control characters', { reason: 'valid reason\u0007bell' }, /control characters/],
    ['a ticket with spaces', { ticket: 'SEC 1234' }, /ticket must be/],
    ['an empty ticket', { ticket: '' }, /ticket must be/],
    [
      'a selector with two kinds',
      { selector: { messageIds: ['a'], userId: 'u' } },
      /exactly one of messageIds, userId, fingerprint/,
    ],
    ['an empty selector', { selector: {} }, /exactly one of/],
    ['an unknown selector kind', { selector: { email: 'a@b' } }, /selector kind "email"/],
    ['empty messageIds', { selector: { messageIds: [] } }, /1\.\.1000 message IDs \(has 0\)/],
    ['1001 messageIds', { selector: { messageIds: manyIds(1001) } }, /1\.\.1000 message IDs \(has 1001\)/],
    ['a repeated message ID', { selector: { messageIds: ['a', 'a'] } }, /twice/],
    ['a message ID that is a number', { selector: { messageIds: [1] } }, /messageIds\[0\] must be a string/],
    ['an empty userId', { selector: { userId: '' } }, /selector\.userId must be 1\.\.128/],
    ['a fingerprint that is not hex', { selector: { fingerprint: 'z'.repeat(64) } }, /64 lower-case hex/],
    ['an unknown field name', { fields: ['ip', 'password'] }, /unknown field name "password"/],
    ['empty fields', { fields: [] }, /fields must be a non-empty array/],
    ['a field twice', { fields: ['ip', 'ip'] }, /twice/],
    ['an extra top-level field', { priority: 'high' }, /unknown field "priority"/],
    [
      'a 31-byte recipient key',
      { recipientPublicKey: crypto.randomBytes(31).toString('base64') },
      /recipientPublicKey must be 32 bytes/,
    ],
    ['a low-order recipient key', { recipientPublicKey: Buffer.alloc(32).toString('base64') }, /low-order/],
    ['issuedAt without a time zone', { issuedAt: '2025-06-01T11:59:50' }, /issuedAt must be an ISO 8601/],
    ['an impossible issuedAt', { issuedAt: '2025-02-30T11:59:50Z' }, /issuedAt/],
    ['a bad operator name', { operator: 'Alice' }, /operator name "Alice" must match/],
  ])('fails with malformed for %s', (_what, change, detail) => {
    const result = verifyRequest(sign(requestBody(change), alice.key));
    expect(result).toEqual({ ok: false, code: 'malformed', detail: expect.stringMatching(detail) });
  });

  it('accepts the other selector kinds and 1000 message IDs', () => {
    const fp = crypto.randomBytes(32).toString('hex');
    for (const selector of [
      { userId: '424cdd21-063a-43a7-b91b-7ca1a833afae' },
      { fingerprint: fp },
      { messageIds: manyIds(1000) },
    ]) {
      expect(codeOf(verifyRequest(sign(requestBody({ selector, fields: ['body'] }), alice.key)))).toBe('ok');
    }
  });

  it('fails with malformed for a missing field (before looking at the signature)', () => {
    const body: Record<string, unknown> = { ...requestBody() };
    delete body.ticket;
    expect(verifyRequest(sign(body, alice.key))).toMatchObject({ ok: false, code: 'malformed', detail: 'missing field ticket' });
  });

  it('fails with malformed for an approval that is invalid', () => {
    expect(codeOf(verifyApproval(sign(approvalBody({ decision: 'maybe' }), bob.key)))).toBe('malformed');
    expect(codeOf(verifyApproval(sign(approvalBody({ comment: '' }), bob.key)))).toBe('malformed');
    expect(codeOf(verifyApproval(sign(approvalBody({ comment: 7 }), bob.key)))).toBe('malformed');
    expect(codeOf(verifyApproval(sign(requestBody(), alice.key)))).toBe('malformed');
    expect(codeOf(verifyRequest(sign(approvalBody(), bob.key)))).toBe('malformed');
  });
});

describe('validateRequestBody / validateApprovalBody', () => {
  it('return null for valid bodies and say what is wrong otherwise', () => {
    expect(validateRequestBody(requestBody())).toBeNull();
    expect(validateApprovalBody(approvalBody())).toBeNull();
    expect(validateApprovalBody(approvalBody({ decision: 'deny', comment: 'no ticket\nfor this' }))).toBeNull();
    const { requestDigest: _digest, ...undigested } = approvalBody();
    expect(validateApprovalBody(undigested)).toMatch(/must carry the requestDigest/);
    expect(validateApprovalBody(approvalBody({ requestDigest: 'D'.repeat(64) }))).toMatch(
      /requestDigest must be 64 lower-case hex/,
    );
    expect(validateRequestBody(null)).toMatch(/must be an object, got null/);
    expect(validateRequestBody([requestBody()])).toMatch(/got an array/);
    expect(validateApprovalBody(approvalBody({ decision: 'yes' }))).toBe('decision must be approve or deny');
    // An approval covers one frozen record set: without its hash it approves nothing.
    const { recordSetHash: _hash, ...blind } = approvalBody();
    expect(validateApprovalBody(blind)).toMatch(/must carry the recordSetHash/);
    expect(validateApprovalBody({ ...blind, decision: 'deny' })).toBeNull();
    expect(validateApprovalBody(approvalBody({ recordSetHash: 'C'.repeat(64) }))).toMatch(
      /recordSetHash must be 64 lower-case hex/,
    );
    expect(validateApprovalBody(approvalBody({ comment: 'x'.repeat(1001) }))).toMatch(/comment must be 1\.\.1000/);
    expect(validateApprovalBody(approvalBody({ extra: 1 }))).toBe('unknown field "extra"');
  });
});

describe('verifySigned never throws', () => {
  const valid = sign(requestBody(), alice.key);
  const deep = (() => {
    let v: unknown = 'x';
    for (let i = 0; i < 100_000; i++) v = [v];
    return v;
  })();
  const throwingGetter = Object.defineProperty({ signature: valid.signature }, 'body', {
    enumerable: true,
    get() {
      throw new Error('boom');
    },
  });
  const proxy = new Proxy(
    {},
    {
      get() {
        throw new Error('trap');
      },
      ownKeys() {
        throw new Error('trap');
      },
      getPrototypeOf() {
        throw new Error('trap');
      },
    },
  );
  let flips = 0;
  const shapeShifter = {
    signature: valid.signature,
    body: {
      ...valid.body,
      get operator() {
        return flips++ === 0 ? 'alice' : 'bob';
      },
    },
  };

  const hostile: [string, unknown][] = [
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'signed'],
    ['a huge string', 'x'.repeat(5_000_000)],
    ['an array', [valid.body, valid.signature]],
    ['a function', () => valid],
    ['a body that is a string', { body: 'x', signature: valid.signature }],
    ['a body that is an array', { body: [valid.body], signature: valid.signature }],
    ['a body that is null', { body: null, signature: valid.signature }],
    ['a huge reason', { ...valid, body: { ...valid.body, reason: 'x'.repeat(5_000_000) } }],
    ['a huge field name', { ...valid, body: { ...valid.body, ['k'.repeat(1_000_000)]: 1 } }],
    ['a body nested 100 000 deep', { body: deep, signature: valid.signature }],
    ['__proto__ keys', JSON.parse(`{"__proto__": {"signature": "${valid.signature}", "body": {}}}`)],
    ['__proto__ in the body', { ...valid, body: JSON.parse(`{"__proto__": ${JSON.stringify(valid.body)}}`) }],
    [
      '__proto__ in the selector',
      { ...valid, body: { ...valid.body, selector: JSON.parse('{"__proto__": {"messageIds": ["a"]}}') } },
    ],
    ['constructor and prototype keys', { ...valid, body: { ...valid.body, constructor: { prototype: 1 }, prototype: null } }],
    ['an operator called __proto__', sign(requestBody({ operator: '__proto__' }), alice.key)],
    ['an operator called constructor', sign(requestBody({ operator: 'constructor' }), alice.key)],
    ['a throwing getter', throwingGetter],
    ['a proxy', proxy],
    ['a body proxy', { body: proxy, signature: valid.signature }],
    ['a Date', new Date()],
    ['a Map', new Map([['body', valid.body]])],
    ['a bigint in the body', { ...valid, body: { ...valid.body, n: 1n } }],
    ['a signature object', { ...valid, signature: { toString: () => valid.signature } }],
    [
      'a class instance body',
      {
        ...valid,
        body: new (class X {
          type = 'pii-recovery-request';
        })(),
      },
    ],
    ['numbers where strings belong', { ...valid, body: { ...valid.body, requestId: 1, operator: 2, issuedAt: 3 } }],
    // Not signable (canonicalJson refuses a lone surrogate), so it can only arrive with a signature made over something else.
    ['an unpaired surrogate in the reason', { ...valid, body: { ...valid.body, reason: 'valid reason \ud800 here' } }],
  ];

  it.each(hostile)('for %s', (_what, value) => {
    let result: ReturnType<typeof verifyRequest> | undefined;
    expect(() => (result = verifyRequest(value))).not.toThrow();
    expect(result!.ok).toBe(false);
    expect(typeof (result as { detail: string }).detail).toBe('string');
  });

  it('sees a getter once: a body that changes its operator cannot pass as someone else', () => {
    const result = verifyRequest(shapeShifter);
    // alice signed it and the first read says alice: that is exactly the signed content.
    expect(result.ok && result.body.operator).toBe('alice');
    expect(flips).toBe(1);
  });

  it('for a hostile registry, validator or clock', () => {
    const bad = [
      () =>
        verifySigned(
          valid,
          'pii-recovery-request',
          { byName: undefined } as unknown as OperatorRegistry,
          NOW,
          MAX_AGE_MS,
          validateRequestBody,
        ),
      () =>
        verifySigned(
          valid,
          'pii-recovery-request',
          { byName: new Map([['alice', { name: 'alice', roles: [], publicKey: 'junk' }]]) },
          NOW,
          MAX_AGE_MS,
          validateRequestBody,
        ),
      () =>
        verifySigned(valid, 'pii-recovery-request', registry, NOW, MAX_AGE_MS, () => {
          throw new Error('validator bug');
        }),
      () => verifySigned(valid, 'pii-recovery-request', registry, new Date(NaN), MAX_AGE_MS, validateRequestBody),
      () => verifySigned(valid, 'pii-recovery-request', registry, NOW, NaN, validateRequestBody),
    ];
    for (const run of bad) {
      let result: { ok: boolean } | undefined;
      expect(() => (result = run())).not.toThrow();
      expect(result!.ok).toBe(false);
    }
  });

  it('for random mutations of a valid signed request (none passes, none throws)', () => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
    const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)];
    const values: unknown[] = [
      null,
      true,
      0,
      -1,
      1e308,
      '',
      'x',
      '__proto__',
      [],
      {},
      [null],
      { a: 1 },
      'x'.repeat(2000),
      '\u0000',
      '\ud800',
      'alice',
      'bob',
    ];
    for (let round = 0; round < 500; round++) {
      const copy = JSON.parse(JSON.stringify(valid)) as Signed<Record<string, unknown>>;
      const target: Record<string, unknown> =
        random() < 0.2
          ? (copy as unknown as Record<string, unknown>)
          : random() < 0.7
            ? copy.body
            : (copy.body.selector as Record<string, unknown>);
      const key = pick([...Object.keys(target), 'extra', '__proto__', 'constructor']);
      if (random() < 0.15) delete target[key];
      else target[key] = pick(values);
      let result: { ok: boolean } | undefined;
      expect(() => (result = verifyRequest(copy))).not.toThrow();
      let changed = true;
      try {
        changed = canonicalJson(copy) !== canonicalJson(valid);
      } catch {
        // not JSON any more (e.g. __proto__ assigned): certainly changed
      }
      if (changed) expect(result!.ok).toBe(false);
    }
  });
});

describe('registering an operator (operator keygen --register)', () => {
  const candidate = (name: string) => {
    const keys = generateOperatorKeys(name, ['pii-requester']);
    return { name, publicKey: keys.publicKey };
  };

  it('accepts a new name with a new key, in an empty or a missing registry too', () => {
    expect(registrationProblem(`${alice.line}\n${bob.line}\n`, SRC, candidate('carol'))).toBeNull();
    expect(registrationProblem('', SRC, candidate('carol'))).toBeNull();
    expect(() =>
      checkRegistration(path.join(makeTempDir(), 'missing.jsonl'), 'carol', candidate('carol').publicKey),
    ).not.toThrow();
  });

  it('refuses a name already in the registry, saying what to do', () => {
    expect(registrationProblem(`${alice.line}\n${bob.line}\n`, SRC, candidate('bob'))).toMatch(
      /operators\.jsonl already has an operator named "bob": choose another name, or, to give that operator a new key, remove their line/,
    );
  });

  it('refuses a key already in the registry, naming its holder', () => {
    const bobsKey = JSON.parse(bob.line).publicKey as string;
    expect(registrationProblem(`${alice.line}\n${bob.line}\n`, SRC, { name: 'carol', publicKey: bobsKey })).toBe(
      `${SRC} already has this public key, as operator "bob": each operator needs a key of its own.`,
    );
  });

  it('refuses to add to a registry that is already invalid, naming its bad line', () => {
    expect(registrationProblem(`${alice.line}\n${alice.line}\n`, SRC, candidate('carol'))).toMatch(
      /line 2: operator "alice" is already defined on line 1\. Fix that line first/,
    );
  });

  it('checkRegistration reads the file and leaves it as it was', () => {
    const file = path.join(makeTempDir(), 'operators.jsonl');
    fs.writeFileSync(file, `${alice.line}\n`);
    const err = registryError(() => checkRegistration(file, 'alice', candidate('alice').publicKey));
    expect(err.message).toMatch(
      /^Refusing to register alice: PII_OPERATORS_FILE \(.*\) already has an operator named "alice".* Nothing was written\.$/,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe(`${alice.line}\n`);
  });
});
