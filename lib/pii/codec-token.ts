// The codec server's bearer token: CODEC_SERVER_TOKEN, or outside production a development
// token generated once into DATA_DIR/codec-server.token (git-ignored, mode 600).
import fs from 'node:fs';
import path from 'node:path';
import { newCodecToken } from './codec-server';
import type { Config } from '../platform/config';

export function codecToken(config: Config, log: (line: string) => void = () => {}): { token: string; file: string | null } {
  if (config.codecServer.token) return { token: config.codecServer.token, file: null };
  if (config.production) throw new Error('CODEC_SERVER_TOKEN is not set: production needs a token of at least 32 characters.');
  const file = path.join(config.dataDir, 'codec-server.token');
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, newCodecToken(), { mode: 0o600 });
  }
  log(`Using the development codec server token in ${file}.`);
  return { token: fs.readFileSync(file, 'utf8').trim(), file };
}
