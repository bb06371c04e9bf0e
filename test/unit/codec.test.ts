import { defaultPayloadConverter, METADATA_ENCODING_KEY, type Payload } from '@temporalio/common';
import { ENCRYPTED_ENCODING, EncryptionCodec, METADATA_KEY_ID } from '../../lib/pii/codec';
import { attachCodecKeys } from '../../lib/pii/keyring';
import { rotatedCodecKeys, testCodecKeys, testKeyring } from './helpers';

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? []).toString('utf8');
const SECRET = 'ip=199.172.111.135;device=593-47-5928';

/** A payload as the Temporal SDK makes it for a workflow or activity argument. */
const payloadOf = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);

describe('EncryptionCodec', () => {
  const keys = testCodecKeys(['k-old']);
  const codec = new EncryptionCodec(keys);

  it('marks encoded payloads as binary/encrypted and names the key', async () => {
    const [encoded] = await codec.encode([payloadOf({ secret: SECRET })]);
    expect(text(encoded.metadata?.[METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(ENCRYPTED_ENCODING).toBe('binary/encrypted');
    expect(text(encoded.metadata?.[METADATA_KEY_ID])).toBe('k-old');
    expect(Object.keys(encoded.metadata ?? {}).sort()).toEqual([METADATA_ENCODING_KEY, METADATA_KEY_ID].sort());
  });

  it('leaves no plaintext bytes in the encoded data or metadata', async () => {
    const original = payloadOf({ secret: SECRET });
    expect(Buffer.from(original.data!).includes(Buffer.from(SECRET))).toBe(true); // the test can see plaintext when it is there
    const [encoded] = await codec.encode([original]);
    const everything = Buffer.concat([
      Buffer.from(encoded.data!),
      ...Object.values(encoded.metadata ?? {}).map((v) => Buffer.from(v)),
    ]);
    expect(everything.includes(Buffer.from(SECRET))).toBe(false);
    expect(everything.includes(Buffer.from('199.172.111.135'))).toBe(false);
    // The inner encoding name ("json/plain") is hidden too.
    expect(everything.includes(Buffer.from('json/plain'))).toBe(false);
  });

  it('decodes what it encoded back to an equal payload', async () => {
    const payloads = [payloadOf({ secret: SECRET, n: 1 }), payloadOf('plain string'), payloadOf(null), payloadOf([1, 2, 3])];
    const decoded = await codec.decode(await codec.encode(payloads));
    expect(decoded).toHaveLength(payloads.length);
    decoded.forEach((p, i) => {
      expect(text(p.metadata?.[METADATA_ENCODING_KEY])).toBe(text(payloads[i].metadata?.[METADATA_ENCODING_KEY]));
      expect(Buffer.from(p.data ?? [])).toEqual(Buffer.from(payloads[i].data ?? []));
      expect(defaultPayloadConverter.fromPayload(p)).toEqual(defaultPayloadConverter.fromPayload(payloads[i]));
    });
    // Deep equality, field by field. The protobuf round trip adds only `externalPayloads: []`,
    // the default of a repeated field the SDK's payloads leave out.
    decoded.forEach((p, i) => {
      const { externalPayloads, ...fields } = p as Payload & { externalPayloads?: unknown[] };
      expect(fields).toEqual(payloads[i]);
      expect(externalPayloads ?? []).toEqual([]);
    });
  });

  it('encrypts each payload with a fresh nonce', async () => {
    const [a, b] = await codec.encode([payloadOf(SECRET), payloadOf(SECRET)]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
  });

  it('decodes payloads written under an old key after a rotation that keeps that key', async () => {
    const [old] = await codec.encode([payloadOf({ secret: SECRET })]);
    const rotated = new EncryptionCodec(rotatedCodecKeys(keys, 'k-new'));
    const [fresh] = await rotated.encode([payloadOf({ secret: 'new' })]);
    expect(text(fresh.metadata?.[METADATA_KEY_ID])).toBe('k-new');
    const [oldDecoded, freshDecoded] = await rotated.decode([old, fresh]);
    expect(defaultPayloadConverter.fromPayload(oldDecoded)).toEqual({ secret: SECRET });
    expect(defaultPayloadConverter.fromPayload(freshDecoded)).toEqual({ secret: 'new' });
  });

  it('fails, naming the key, when the keyring no longer holds the payload’s key', async () => {
    const [old] = await codec.encode([payloadOf(SECRET)]);
    const forgetful = new EncryptionCodec(testCodecKeys(['k-new']));
    await expect(forgetful.decode([old])).rejects.toThrow(/k-old/);
  });

  it('passes unencrypted payloads through decode unchanged', async () => {
    const plain = [payloadOf({ a: 1 }), payloadOf(undefined), { metadata: {}, data: new Uint8Array([1, 2, 3]) }, {}];
    const decoded = await codec.decode(plain);
    decoded.forEach((p, i) => expect(p).toBe(plain[i]));
  });

  it('throws when the encrypted data was tampered with', async () => {
    const [encoded] = await codec.encode([payloadOf({ secret: SECRET })]);
    const data = Buffer.from(encoded.data!);
    data[data.length - 1] ^= 0xff;
    await expect(codec.decode([{ ...encoded, data }])).rejects.toThrow();
  });

  it('throws when an encrypted payload lacks its key ID or data', async () => {
    const [encoded] = await codec.encode([payloadOf(SECRET)]);
    const metadataWithoutKey = { ...encoded.metadata };
    delete metadataWithoutKey[METADATA_KEY_ID];
    await expect(codec.decode([{ ...encoded, metadata: metadataWithoutKey }])).rejects.toThrow(/key ID/);
    await expect(codec.decode([{ metadata: encoded.metadata }])).rejects.toThrow(/key ID or data/);
  });

  it('does not decrypt with a different key that happens to have the same ID', async () => {
    const [encoded] = await codec.encode([payloadOf(SECRET)]);
    const impostor = new EncryptionCodec(testCodecKeys(['k-old']));
    await expect(impostor.decode([encoded])).rejects.toThrow();
  });

  it('with requireEncrypted (the recovery worker), refuses unencrypted payloads instead of passing them through', async () => {
    const strict = new EncryptionCodec(keys, { requireEncrypted: true });
    await expect(strict.decode([payloadOf({ request: 'unsigned' })])).rejects.toThrow(/unencrypted payload/);
    await expect(strict.decode([{}])).rejects.toThrow(/unencrypted payload/);
    // What the project's codec made still decodes.
    const [encoded] = await codec.encode([payloadOf({ a: 1 })]);
    expect(defaultPayloadConverter.fromPayload((await strict.decode([encoded]))[0])).toEqual({ a: 1 });
  });

  it('never uses PII data keys: a keyring without codec keys is refused, and codec keys equal to a data key are refused', async () => {
    const keyring = testKeyring({ ids: ['k-data'] });
    expect(() => new EncryptionCodec(keyring)).toThrow(/no payload codec keys/);
    const clash = testKeyring({ ids: ['k-data'] });
    attachCodecKeys(clash, testCodecKeys(['c-1'], { keys: { 'c-1': clash.keys.get('k-data')! } }));
    expect(() => new EncryptionCodec(clash)).toThrow(/also a PII key/);
    const fingerprintClash = testKeyring({ ids: ['k-data'] });
    attachCodecKeys(fingerprintClash, testCodecKeys(['c-1'], { keys: { 'c-1': fingerprintClash.fingerprintKey } }));
    expect(() => new EncryptionCodec(fingerprintClash)).toThrow(/also a PII key/);
    // With keys of its own, a keyring's codec encrypts with those, never with the data key.
    const separate = testKeyring({ ids: ['k-data'] });
    attachCodecKeys(separate, keys);
    const [encoded] = await new EncryptionCodec(separate).encode([payloadOf(SECRET)]);
    expect(text(encoded.metadata?.[METADATA_KEY_ID])).toBe('k-old');
    expect(await new EncryptionCodec(keys).decode([encoded])).toHaveLength(1);
  });
});
