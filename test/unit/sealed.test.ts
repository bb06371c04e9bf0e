import crypto from 'node:crypto';
import {
  MAX_CONTEXT_BYTES,
  newRecipientKeys,
  openSealed,
  parseRecipientPublicKey,
  sealTo,
  SealedError,
  type SealedBox,
} from '../../lib/pii/sealed';

const context = 'request 7f1c2a9e-3b4d-4c5e-8f60-718293a4b5c6';
const flipByte = (b64: string, index: number): string => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[index] ^= 0x01;
  return bytes.toString('base64');
};

/** The error openSealed throws, checked to be a SealedError. */
function sealedError(run: () => unknown): SealedError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(SealedError);
    return err as SealedError;
  }
  throw new Error('expected a SealedError, but nothing was thrown');
}

describe('newRecipientKeys', () => {
  it('makes an X25519 pair: a raw 32-byte public key in base64 and a PKCS#8 PEM private key', () => {
    const keys = newRecipientKeys();
    expect(Buffer.from(keys.publicKey, 'base64')).toHaveLength(32);
    const privateKey = crypto.createPrivateKey(keys.privateKeyPem);
    expect(privateKey.asymmetricKeyType).toBe('x25519');
    expect(keys.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(crypto.createPublicKey(privateKey).export({ format: 'jwk' }).x).toBe(
      Buffer.from(keys.publicKey, 'base64').toString('base64url'),
    );
    expect(newRecipientKeys().publicKey).not.toBe(keys.publicKey);
  });
});

describe('sealTo / openSealed', () => {
  const keys = newRecipientKeys();

  it('round-trips a string, bytes and the empty value', () => {
    const text = JSON.stringify({ ip: '199.172.111.135', device_id: '593-47-5928' });
    expect(openSealed(sealTo(keys.publicKey, text, context), keys.privateKeyPem, context).toString('utf8')).toBe(text);
    const bytes = crypto.randomBytes(5000);
    expect(openSealed(sealTo(keys.publicKey, bytes, context), keys.privateKeyPem, context).equals(bytes)).toBe(true);
    expect(openSealed(sealTo(keys.publicKey, '', context), keys.privateKeyPem, context)).toHaveLength(0);
  });

  it('writes version 1, a 32-byte ephemeral key, a 12-byte nonce and ciphertext ‖ 16-byte tag', () => {
    const box = sealTo(keys.publicKey, 'abcdef', context);
    expect(Object.keys(box).sort()).toEqual(['ciphertext', 'ephemeralPublicKey', 'nonce', 'v']);
    expect(box.v).toBe(1);
    expect(Buffer.from(box.ephemeralPublicKey, 'base64')).toHaveLength(32);
    expect(Buffer.from(box.nonce, 'base64')).toHaveLength(12);
    expect(Buffer.from(box.ciphertext, 'base64')).toHaveLength(6 + 16);
  });

  it('follows the documented construction (ECDH → HKDF-SHA256 salt eph‖recipient, info prefix|context → AES-256-GCM, AAD context)', () => {
    const box = sealTo(keys.publicKey, 'the plaintext', context);
    const eph = Buffer.from(box.ephemeralPublicKey, 'base64');
    const shared = crypto.diffieHellman({
      privateKey: crypto.createPrivateKey(keys.privateKeyPem),
      publicKey: crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: eph.toString('base64url') }, format: 'jwk' }),
    });
    const salt = Buffer.concat([eph, Buffer.from(keys.publicKey, 'base64')]);
    const key = Buffer.from(crypto.hkdfSync('sha256', shared, salt, `login-ingest sealed v1|${context}`, 32));
    const sealed = Buffer.from(box.ciphertext, 'base64');
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, Buffer.from(box.nonce, 'base64'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    expect(Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]).toString()).toBe(
      'the plaintext',
    );
  });

  it('survives a JSON round trip (how a box travels)', () => {
    const box = JSON.parse(JSON.stringify(sealTo(keys.publicKey, 'x', context))) as SealedBox;
    expect(openSealed(box, keys.privateKeyPem, context).toString()).toBe('x');
  });

  it('does not open with another private key', () => {
    const box = sealTo(keys.publicKey, 'secret', context);
    expect(sealedError(() => openSealed(box, newRecipientKeys().privateKeyPem, context)).message).toMatch(/cannot be opened/);
  });

  it('does not open under another context', () => {
    const box = sealTo(keys.publicKey, 'secret', context);
    for (const other of [context + ' ', 'request other', '']) {
      expect(sealedError(() => openSealed(box, keys.privateKeyPem, other)).message).toMatch(/cannot be opened/);
    }
  });

  it('does not open after any byte of ciphertext or tag, the nonce or the ephemeral key is changed', () => {
    const box = sealTo(keys.publicKey, 'sensitive value', context);
    const length = Buffer.from(box.ciphertext, 'base64').length;
    for (let i = 0; i < length; i++) {
      expect(() => openSealed({ ...box, ciphertext: flipByte(box.ciphertext, i) }, keys.privateKeyPem, context)).toThrow(
        /cannot be opened/,
      );
    }
    for (let i = 0; i < 12; i++) {
      expect(() => openSealed({ ...box, nonce: flipByte(box.nonce, i) }, keys.privateKeyPem, context)).toThrow(
        /cannot be opened/,
      );
    }
    for (let i = 0; i < 32; i++) {
      expect(() =>
        openSealed({ ...box, ephemeralPublicKey: flipByte(box.ephemeralPublicKey, i) }, keys.privateKeyPem, context),
      ).toThrow(/cannot be opened/);
    }
    // Another valid ephemeral key, and a low-order point.
    const other = newRecipientKeys().publicKey;
    expect(() => openSealed({ ...box, ephemeralPublicKey: other }, keys.privateKeyPem, context)).toThrow(/cannot be opened/);
    expect(() =>
      openSealed({ ...box, ephemeralPublicKey: Buffer.alloc(32).toString('base64') }, keys.privateKeyPem, context),
    ).toThrow(/cannot be opened/);
    // Dropping the last tag byte is refused as well (no truncated tags).
    const truncated = Buffer.from(box.ciphertext, 'base64')
      .subarray(0, length - 1)
      .toString('base64');
    expect(() => openSealed({ ...box, ciphertext: truncated }, keys.privateKeyPem, context)).toThrow(SealedError);
    // The untouched box still opens.
    expect(openSealed(box, keys.privateKeyPem, context).toString()).toBe('sensitive value');
  });

  it('gives a different box every time for the same plaintext, key and context', () => {
    const a = sealTo(keys.publicKey, 'same', context);
    const b = sealTo(keys.publicKey, 'same', context);
    expect(a.ephemeralPublicKey).not.toBe(b.ephemeralPublicKey);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.ciphertext).not.toBe(b.ciphertext);
  });

  it('keeps the plaintext out of the box JSON', () => {
    const plaintext = '{"ip":"199.172.111.135","device_id":"593-47-5928"}';
    const json = JSON.stringify(sealTo(keys.publicKey, plaintext, context));
    for (const needle of [plaintext, '199.172.111.135', '593-47-5928', Buffer.from(plaintext).toString('base64').slice(0, 24)]) {
      expect(json).not.toContain(needle);
    }
  });
});

describe('input checks', () => {
  const keys = newRecipientKeys();

  it('refuses recipient keys that are not base64 of 32 bytes, with a clear error', () => {
    for (const bad of [
      '',
      'not base64!',
      crypto.randomBytes(31).toString('base64'),
      crypto.randomBytes(33).toString('base64'),
      ` ${keys.publicKey}`,
    ]) {
      expect(sealedError(() => sealTo(bad, 'x', context)).message).toMatch(
        /recipient public key must be 32 bytes, base64-encoded/,
      );
    }
    expect(sealedError(() => sealTo(42 as unknown as string, 'x', context)).message).toMatch(/must be a base64 string/);
  });

  it('refuses low-order X25519 points as recipient keys', () => {
    const zero = Buffer.alloc(32).toString('base64');
    const one = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString('base64');
    for (const bad of [zero, one]) expect(sealedError(() => sealTo(bad, 'x', context)).message).toMatch(/low-order/);
    expect(() => parseRecipientPublicKey(keys.publicKey)).not.toThrow();
  });

  it('refuses a context that cannot be used (too long for HKDF, lone surrogate) and a plaintext of another type', () => {
    expect(() => sealTo(keys.publicKey, 'x', 'a'.repeat(MAX_CONTEXT_BYTES))).not.toThrow();
    expect(sealedError(() => sealTo(keys.publicKey, 'x', 'a'.repeat(MAX_CONTEXT_BYTES + 1))).message).toMatch(
      /context must be at most/,
    );
    expect(sealedError(() => sealTo(keys.publicKey, 'x', 'a\ud800')).message).toMatch(/well-formed/);
    expect(sealedError(() => sealTo(keys.publicKey, 42 as unknown as string, context)).message).toMatch(/plaintext/);
  });

  it('says what is wrong with a malformed box', () => {
    const box = sealTo(keys.publicKey, 'x', context);
    const open = (b: unknown) => sealedError(() => openSealed(b as SealedBox, keys.privateKeyPem, context)).message;
    expect(open(null)).toMatch(/must be an object/);
    expect(open({ ...box, v: 2 })).toMatch(/version 2 is not supported/);
    expect(open({ ...box, extra: 1 })).toMatch(/exactly the fields/);
    const { nonce: _nonce, ...withoutNonce } = box;
    expect(open(withoutNonce)).toMatch(/exactly the fields/);
    expect(open({ ...box, nonce: Buffer.alloc(8).toString('base64') })).toMatch(/nonce must be 12 bytes/);
    expect(open({ ...box, ephemeralPublicKey: 'abc' })).toMatch(/ephemeralPublicKey must be 32 bytes/);
    expect(open({ ...box, ciphertext: Buffer.alloc(15).toString('base64') })).toMatch(/ciphertext must be at least 16 bytes/);
  });

  it('says when the private key is not a usable X25519 PEM', () => {
    const box = sealTo(keys.publicKey, 'x', context);
    const ed = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    expect(sealedError(() => openSealed(box, ed, context)).message).toMatch(/ed25519 key, expected X25519/);
    expect(sealedError(() => openSealed(box, 'not a key', context)).message).toMatch(/not a readable PEM private key/);
  });
});
