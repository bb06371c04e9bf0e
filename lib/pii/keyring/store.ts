// Key files on disk: reading one (with the stamp refresh.ts compares), and writing one so
// that nobody ever reads a half-written file: a temporary file (mode 600) in the same
// folder, fsync, then a hard link (a new file, never replacing one) or a rename (a
// rotation replacing the file). A lock file keeps two rotations apart.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { KeyringError, type KeyringFile, type KeyringFileV2 } from './format';
import { errorMessage } from '../../platform/guards';

/** inode:size:mtime: a file rewritten by anyone gets another stamp. */
export const stampOf = (stat: fs.Stats) => `${stat.ino}:${stat.size}:${stat.mtimeMs}`;

/** Reads and parses a key file; `stat`, when the caller has just made it, saves another one. */
export async function readKeyFileText(file: string, name: string, stat?: fs.Stats): Promise<{ content: unknown; stamp: string }> {
  let text: string;
  try {
    stat ??= await fs.promises.stat(file); // before the read: the content is at least as new as the stamp
    text = await fs.promises.readFile(file, 'utf8');
  } catch (err) {
    throw new KeyringError(`${name} cannot be read as JSON: ${errorMessage(err)}`);
  }
  try {
    return { content: JSON.parse(text), stamp: stampOf(stat) };
  } catch {
    // Not JSON.parse's message: it quotes the text around the error, which is key material.
    throw new KeyringError(`${name} cannot be read as JSON: not valid JSON`);
  }
}

const tempPathFor = (file: string) =>
  path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);

/** Writes a new owner-only file and flushes it to disk. */
function writeTempFile(tmp: string, text: string): void {
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeFileSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the rename itself is still atomic.
  }
}

/** Creates `file` (mode 600) complete or not at all; throws EEXIST if it exists. */
export function createExclusive(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = tempPathFor(file);
  writeTempFile(tmp, text);
  try {
    try {
      fs.linkSync(tmp, file); // atomic, refuses to replace: nobody ever reads a half-written key file
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw err;
      fs.writeFileSync(file, text, { mode: 0o600, flag: 'wx' }); // a file system without hard links
    }
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  fsyncDir(path.dirname(file));
}

/** Replaces `file` atomically: a temporary file (mode 600) in the same folder, fsync, rename. */
export function replaceAtomically(file: string, text: string): void {
  const tmp = tempPathFor(file);
  try {
    writeTempFile(tmp, text);
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(path.dirname(file));
}

/** Writes a key file (either version) readable by its owner only; never overwrites one (throws EEXIST). */
export function writeKeyringFile(file: string, content: KeyringFile | KeyringFileV2): void {
  createExclusive(file, JSON.stringify(content, null, 2) + '\n');
}

/** Takes `<file>.lock` (created exclusively) against a concurrent rotation; returns its path for the caller to remove. */
export function acquireLock(file: string): string {
  const lock = `${file}.lock`;
  try {
    const fd = fs.openSync(lock, 'wx', 0o600);
    fs.writeSync(fd, `${process.pid}\n`);
    fs.closeSync(fd);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyringError(`${file} is being rotated by another process (${lock} exists; delete it if no rotation is running)`);
    }
    throw new KeyringError(`${file} cannot be rotated: ${errorMessage(err)}`);
  }
  return lock;
}
