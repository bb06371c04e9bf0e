// The payload codec's key file wrapped by a KMS key (lib/pii/keyring/codec-wrap.ts): the file's
// form, the per-key context, and the re-wrap that never replaces a file it cannot read back.
// KMS itself is in test/integration/aws-custody.test.ts; here a wrapper named like a KMS key
// does AES-GCM under a local key, binding the context as KMS does.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LocalKeyWrapper, type KeyWrapper } from '../../../lib/pii/kek';
import {
  checkWrappedCodecFile,
  codecKeyContext,
  dataKeyContext,
  loadCodecKeys,
  newCodecKeyFile,
  rewrapCodecKeyFile,
  unwrapCodecKeys,
  wrapCodecKeys,
} from '../../../lib/pii/keyring';
import { makeTempDir, removeTempDirs } from '../helpers';
import { quiet } from './helpers';

afterAll(removeTempDirs);

/** A stand-in for a KMS key: its ID is a KMS key's, its wrapping AES-GCM with the context bound. */
function fakeKms(name = 'alias/codec-test'): KeyWrapper {
  const local = new LocalKeyWrapper(crypto.randomBytes(32));
  return { id: `aws-kms:${name}`, wrap: (k, c) => local.wrap(k, c), unwrap: (w, c) => local.unwrap(w, c) };
}

function plainFile(): { file: string; content: ReturnType<typeof newCodecKeyFile> } {
  const file = path.join(makeTempDir(), 'codec-keys.json');
  const content = newCodecKeyFile();
  fs.writeFileSync(file, JSON.stringify(content), { mode: 0o600 });
  return { file, content };
}

describe('a KMS-wrapped codec key file', () => {
  it('wraps each key under codec-key:<id>, holds no plain key, and unwraps only under that context', async () => {
    const { file } = plainFile();
    const codec = loadCodecKeys({ codecKeys: { file }, dataDir: makeTempDir(), production: true }, quiet);
    const kms = fakeKms();
    const wrapped = await wrapCodecKeys(codec, kms);
    const [id, key] = [...codec.keys][0];
    expect(wrapped.kek).toBe('aws-kms:alias/codec-test');
    expect(JSON.stringify(wrapped)).not.toContain(key.toString('base64'));
    const back = await unwrapCodecKeys(checkWrappedCodecFile(wrapped, 'f'), 'f', kms);
    expect(back.activeKeyId).toBe(codec.activeKeyId);
    expect(back.keys.get(id)?.equals(key)).toBe(true);
    expect(codecKeyContext(id)).not.toBe(dataKeyContext(id));
    // A codec key is never a PII data key: under the data key's context it does not unwrap.
    await expect(kms.unwrap(Buffer.from(wrapped.wrappedKeys[id], 'base64'), dataKeyContext(id))).rejects.toThrow(
      /authentication failed/,
    );
    // Copied under another ID, it does not unwrap either.
    const moved = { ...wrapped, activeKeyId: 'c-other', wrappedKeys: { 'c-other': wrapped.wrappedKeys[id] } };
    await expect(unwrapCodecKeys(checkWrappedCodecFile(moved, 'f'), 'f', kms)).rejects.toThrow(
      /f: codec key c-other cannot be unwrapped by aws-kms:alias\/codec-test/,
    );
    // Another KMS key than the file names is refused by name.
    await expect(unwrapCodecKeys(wrapped, 'f', fakeKms('alias/other'))).rejects.toThrow(
      /f is wrapped by aws-kms:alias\/codec-test, not by aws-kms:alias\/other/,
    );
  });

  it('is refused with the fix by the synchronous loader, and only a KMS key may wrap one', async () => {
    const { file } = plainFile();
    await rewrapCodecKeyFile(file, () => fakeKms(), fakeKms());
    expect(() => loadCodecKeys({ codecKeys: { file }, dataDir: makeTempDir(), production: true }, quiet)).toThrow(
      /is wrapped by aws-kms:alias\/codec-test and this code path cannot unwrap it: load it with loadCodecKeysAsync.*keys codec-rewrap --to plain/,
    );
    expect(() =>
      checkWrappedCodecFile({ kek: 'local:0123abcd', activeKeyId: 'c-1', wrappedKeys: { 'c-1': 'AA==' } }, 'f'),
    ).toThrow(/wrapped by an AWS KMS key .* or not at all/);
    await expect(
      rewrapCodecKeyFile(plainFile().file, () => fakeKms(), new LocalKeyWrapper(crypto.randomBytes(32))),
    ).rejects.toThrow(/wrapped only by an AWS KMS key/);
  });
});

describe('rewrapCodecKeyFile', () => {
  it('plain -> KMS -> plain keeps every key, and refuses a file already in the form asked for', async () => {
    const { file, content } = plainFile();
    const kms = fakeKms();
    expect(await rewrapCodecKeyFile(file, () => kms, kms)).toEqual({ from: 'plain', to: kms.id, keys: 1 });
    const onDisk = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(onDisk.keys).toBeUndefined();
    expect(fs.readFileSync(file, 'utf8')).not.toContain(content.keys[content.activeKeyId]);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    await expect(rewrapCodecKeyFile(file, () => kms, kms)).rejects.toThrow(/already wrapped by aws-kms:alias\/codec-test/);
    expect(await rewrapCodecKeyFile(file, () => kms, 'plain')).toEqual({ from: kms.id, to: 'plain', keys: 1 });
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toEqual(content);
    await expect(rewrapCodecKeyFile(file, () => kms, 'plain')).rejects.toThrow(/already plain: nothing to do/);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
  });

  it('leaves the file as it was when the new form does not give the keys back', async () => {
    const { file } = plainFile();
    const before = fs.readFileSync(file, 'utf8');
    const kms = fakeKms();
    const lossy: KeyWrapper = { id: kms.id, wrap: (k, c) => kms.wrap(k, c), unwrap: async () => crypto.randomBytes(32) };
    await expect(rewrapCodecKeyFile(file, () => lossy, lossy)).rejects.toThrow(
      /did not come back the same; the file was left as it was/,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    const failing: KeyWrapper = {
      id: kms.id,
      wrap: (k, c) => kms.wrap(k, c),
      unwrap: async () => Promise.reject(new Error('AccessDenied')),
    };
    await expect(rewrapCodecKeyFile(file, () => failing, failing)).rejects.toThrow(/cannot be unwrapped.*AccessDenied/);
    expect(fs.readFileSync(file, 'utf8')).toBe(before);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['codec-keys.json']);
  });
});
