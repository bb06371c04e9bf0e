// The KMS key names PII_KEK accepts (region from the ARN or AWS_REGION, a mismatch refused),
// the KMS errors in words, the configured wrapper, and `keys rewrap`'s rules: every key
// comes back unchanged under the new KEK or the file is left as it was.
import fs from 'node:fs';
import { LocalKeyWrapper, type KeyWrapper } from '../../../lib/pii/kek';
import { explainKmsError, KmsKeyWrapper } from '../../../lib/pii/kms';
import { parseKmsKeyId } from '../../../lib/pii/kms-key-id';
import { configuredKeyWrapper, KeyringError, keyWrapperFor, loadKeyringFile, rewrapKeyringFile } from '../../../lib/pii/keyring';
import { ConfigError, loadConfig } from '../../../lib/platform/config';
import { makeTempDir, randomKey, removeTempDirs } from '../helpers';
import { expectKeyringMatches, keyringError, masterKey, readJson, v2File } from './helpers';

afterAll(removeTempDirs);

const ARN = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';

describe('parseKmsKeyId', () => {
  it('takes the region from an ARN, else AWS_REGION', () => {
    expect(parseKmsKeyId(ARN, undefined)).toEqual({ keyId: ARN, region: 'eu-west-1' });
    expect(parseKmsKeyId('alias/pii', 'us-east-2')).toEqual({ keyId: 'alias/pii', region: 'us-east-2' });
    expect(parseKmsKeyId('arn:aws:kms:eu-west-1:123456789012:alias/pii', 'eu-west-1')).toMatchObject({ region: 'eu-west-1' });
  });
  it('refuses a wrong region, a missing region and a malformed name, saying what to do', () => {
    expect(parseKmsKeyId(ARN, 'us-east-1')).toMatch(/region eu-west-1 but AWS_REGION is us-east-1/);
    expect(parseKmsKeyId('alias/pii', undefined)).toMatch(/needs AWS_REGION/);
    expect(parseKmsKeyId('my key', 'us-east-1')).toMatch(/is not a KMS key: use aws-kms:<key ARN>/);
  });
});

describe('configuration', () => {
  const base = { DATA_DIR: makeTempDir() };
  it('PII_KEK=aws-kms:… is validated once, with AWS_ENDPOINT_URL_KMS; local is the default', () => {
    expect(loadConfig(base, []).keys.kek).toEqual({ kind: 'local' });
    expect(
      loadConfig({ ...base, PII_KEK: `aws-kms:${ARN}`, AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:5000' }, []).keys.kek,
    ).toEqual({
      kind: 'aws-kms',
      keyId: ARN,
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:5000',
    });
    expect(() => loadConfig({ ...base, PII_KEK: 'vault:x' }, [])).toThrow(/PII_KEK must be local or aws-kms:/);
    try {
      loadConfig({ ...base, PII_KEK: `aws-kms:${ARN}`, AWS_REGION: 'us-east-1' }, []);
      throw new Error('accepted');
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/AWS_REGION is us-east-1/);
    }
  });
  it('AUDIT_ANCHOR: s3://bucket/prefix or file:path; the local file by default', () => {
    expect(loadConfig(base, []).auditAnchor).toEqual({ kind: 'file', path: `${base.DATA_DIR}/audit-anchors.jsonl` });
    expect(loadConfig({ ...base, AUDIT_ANCHOR: 's3://my-anchors/prod/trail/', AWS_REGION: 'eu-west-1' }, []).auditAnchor).toEqual(
      {
        kind: 's3',
        bucket: 'my-anchors',
        prefix: 'prod/trail',
        region: 'eu-west-1',
        retentionDays: 400,
      },
    );
    expect(() => loadConfig({ ...base, AUDIT_ANCHOR: 'https://bucket' }, [])).toThrow(/AUDIT_ANCHOR must be s3:\/\/<bucket>/);
  });
  it('chooses the KMS wrapper by configuration, named aws-kms:<key>', () => {
    const config = loadConfig({ ...base, PII_KEK: `aws-kms:${ARN}` }, []);
    const wrapper = configuredKeyWrapper(config);
    expect(wrapper).toBeInstanceOf(KmsKeyWrapper);
    expect(wrapper.id).toBe(`aws-kms:${ARN}`);
  });
});

describe('explainKmsError', () => {
  const kek = { kind: 'aws-kms' as const, keyId: 'alias/pii', region: 'eu-west-1' };
  it('names the problem and the fix', () => {
    expect(explainKmsError({ name: 'NotFoundException', message: 'x' }, kek, 'Decrypt')).toMatch(
      /alias\/pii in eu-west-1 does not exist .*check PII_KEK and AWS_REGION/,
    );
    expect(explainKmsError({ name: 'AccessDeniedException', message: 'no' }, kek, 'Encrypt')).toMatch(
      /denied for kms:Encrypt .*grant this process's role kms:Encrypt .*kms:EncryptionContext:pii-key/,
    );
    expect(explainKmsError({ name: 'DisabledException', message: 'off' }, kek, 'Decrypt')).toMatch(/enable the key/);
    expect(explainKmsError({ name: 'InvalidCiphertextException' }, kek, 'Decrypt')).toMatch(/another context/);
  });
});

describe('rewrapKeyringFile', () => {
  it('re-wraps every key under the new KEK, keeping the keys, createdAt and the active key', async () => {
    const { file, master, plain } = await v2File(['k-1', 'k-2']);
    const before = readJson(file);
    const target = masterKey();
    const result = await rewrapKeyringFile(file, () => master.wrapper, target.wrapper);
    expect(result).toEqual({ from: master.wrapper.id, to: target.wrapper.id, keys: 2 });
    const after = readJson(file);
    expect(after.kek).toBe(target.wrapper.id);
    expect(after.activeKeyId).toBe(before.activeKeyId);
    expect(after.keys['k-1'].createdAt).toBe(before.keys['k-1'].createdAt);
    expect(after.keys['k-1'].wrapped).not.toBe(before.keys['k-1'].wrapped);
    expectKeyringMatches(await loadKeyringFile(file, { wrapper: target.wrapper }), plain);
    expect(fs.existsSync(`${file}.lock`)).toBe(false);
    // The old master key no longer opens it, and a second re-wrap to the same KEK is refused.
    expect((await keyringError(() => loadKeyringFile(file, { wrapper: master.wrapper }))).message).toMatch(
      /wrapped by key-encryption key local:/,
    );
    expect((await keyringError(() => rewrapKeyringFile(file, () => target.wrapper, target.wrapper))).message).toMatch(
      /already wrapped/,
    );
  });

  it('leaves the file as it was when the new KEK does not give the keys back', async () => {
    const { file, master } = await v2File();
    const text = fs.readFileSync(file, 'utf8');
    const liar: KeyWrapper = {
      id: 'aws-kms:alias/liar',
      wrap: async (key) => key,
      unwrap: async () => randomKey(),
    };
    expect((await keyringError(() => rewrapKeyringFile(file, () => master.wrapper, liar))).message).toMatch(
      /did not unwrap to the same keys; the file was left as it was/,
    );
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
    const failing: KeyWrapper = {
      id: 'aws-kms:alias/down',
      wrap: async () => Promise.reject(new Error('AccessDenied')),
      unwrap: async () => randomKey(),
    };
    await expect(rewrapKeyringFile(file, () => master.wrapper, failing)).rejects.toThrow('AccessDenied');
    expect(fs.readFileSync(file, 'utf8')).toBe(text);
  });

  it('a file wrapped by KMS, loaded without PII_KEK, says to set PII_KEK to the key the file names', async () => {
    const { file, master } = await v2File();
    const kms: KeyWrapper = { id: `aws-kms:${ARN}`, wrap: async (key) => key, unwrap: async (key) => key };
    await rewrapKeyringFile(file, () => master.wrapper, kms);
    const noMasterKey = () => {
      throw new KeyringError('NODE_ENV=production and no master key is configured');
    };
    expect((await keyringError(() => loadKeyringFile(file, { wrapper: noMasterKey }))).message).toMatch(
      new RegExp(`wrapped by the KMS key aws-kms:${ARN.replace(/[/]/g, '\\/')}: set PII_KEK=aws-kms:`),
    );
    expect((await keyringError(() => loadKeyringFile(file, { wrapper: master.wrapper }))).message).toMatch(
      /but the one configured is local:[0-9a-f]{8}: set PII_KEK=aws-kms:.*or re-wrap the file with `keys rewrap`/,
    );
  });

  it('keyWrapperFor: a local file needs the master key it was made with; KMS keys are named by the file', async () => {
    const { config, master } = await v2File();
    expect(keyWrapperFor(master.wrapper.id, config).id).toBe(master.wrapper.id);
    expect(() => keyWrapperFor('local:00000000', config)).toThrow(/master key configured is local:/);
    expect(keyWrapperFor(`aws-kms:${ARN}`, config).id).toBe(`aws-kms:${ARN}`);
    expect(() => keyWrapperFor('gcp:x', config)).toThrow(/unknown key-encryption key/);
    expect(new LocalKeyWrapper(randomKey()).id).toMatch(/^local:/);
  });
});
