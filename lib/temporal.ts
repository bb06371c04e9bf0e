// Connections to Temporal for the worker and the clients, always with the encrypting
// payload codec: nothing leaves this process for the history in plaintext.
import { Client, Connection } from '@temporalio/client';
import { EncryptionCodec } from './codec';
import type { Config } from './config';
import type { Keyring } from './keyring';

export function dataConverter(keyring: Keyring) {
  return { payloadCodecs: [new EncryptionCodec(keyring)], failureConverterPath: require.resolve('./failure-converter') };
}

export async function connectClient(temporal: Config['temporal'], keyring: Keyring): Promise<Client> {
  const connection = await Connection.connect({ address: temporal.address }).catch((err: Error) => {
    throw new Error(`Cannot reach Temporal at ${temporal.address} (TEMPORAL_ADDRESS): ${err.message}. Is the server running?`);
  });
  return new Client({ connection, namespace: temporal.namespace, dataConverter: dataConverter(keyring) });
}
