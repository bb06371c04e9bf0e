// Connections to Temporal for the worker and the clients, always with the encrypting
// payload codec: nothing leaves this process for the history in plaintext. The codec uses
// the codec keys (lib/pii/keyring.ts loadCodecKeys); a keyring from loadKeyring brings them.
import { Client, Connection } from '@temporalio/client';
import { EncryptionCodec, type EncryptionCodecOptions } from '../pii/codec';
import type { Config } from './config';
import type { CodecKeys, Keyring } from '../pii/keyring';

export function dataConverter(keys: Keyring | CodecKeys, options: EncryptionCodecOptions = {}) {
  return { payloadCodecs: [new EncryptionCodec(keys, options)], failureConverterPath: require.resolve('./failure-converter') };
}

export async function connectClient(temporal: Config['temporal'], keys: Keyring | CodecKeys): Promise<Client> {
  const connection = await Connection.connect({ address: temporal.address }).catch((err: Error) => {
    throw new Error(`Cannot reach Temporal at ${temporal.address} (TEMPORAL_ADDRESS): ${err.message}. Is the server running?`);
  });
  return new Client({ connection, namespace: temporal.namespace, dataConverter: dataConverter(keys) });
}
