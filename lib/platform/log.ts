// Log lines of the worker's own code, the CLI and the codec server, on stderr (results go to
// stdout). `LOG_FORMAT=text` (default): `time LEVEL message key=value …`, as the worker's SDK
// lines (lib/platform/logging.ts). `LOG_FORMAT=json`: one JSON object per line with `level`, `time`,
// `message` and the fields (workflow and run IDs, counts). Callers pass IDs and counts,
// never message content: nothing here could tell a PII value from any other string.
//
// The format is read from the environment here, not from lib/platform/config.ts, because it must
// apply before the configuration is loaded (a configuration error is a log line too);
// lib/platform/config.ts validates the same variable.

export type LogFormat = 'text' | 'json';
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

let format: LogFormat = process.env.LOG_FORMAT === 'json' ? 'json' : 'text';

export function logFormat(): LogFormat {
  return format;
}
export function setLogFormat(f: LogFormat): void {
  format = f;
}

/** Error objects as their message (and name), everything else as is. */
function plain(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message } : value;
}

/** One JSON log line (no newline). Pure: `time` is passed in. */
export function jsonLine(level: string, message: string, fields: Fields = {}, time = new Date()): string {
  const out: Fields = { level: level.toLowerCase(), time: time.toISOString(), message };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && !(k in out)) out[k] = plain(v);
  return JSON.stringify(out);
}

/** One text log line (no newline). Pure: `time` is passed in. */
export function textLine(level: string, message: string, fields: Fields = {}, time = new Date()): string {
  const meta = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const p = plain(v);
      return `${k}=${typeof p === 'object' && p !== null ? JSON.stringify(p) : String(p)}`;
    });
  return `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${message}${meta.length ? ` ${meta.join(' ')}` : ''}`;
}

/**
 * Writes one line to stderr. Text mode keeps the CLI's plain sentences plain (no time or
 * level in front) unless `fields` are given or the level is above info; JSON mode always
 * writes an object.
 */
export function logLine(level: Level, message: string, fields?: Fields): void {
  if (format === 'json') process.stderr.write(jsonLine(level, message, fields) + '\n');
  else if (!fields && (level === 'info' || level === 'debug')) process.stderr.write(message + '\n');
  else if (!fields) process.stderr.write(`${level === 'warn' ? 'Warning: ' : ''}${message}\n`);
  else process.stderr.write(textLine(level, message, fields) + '\n');
}

export const logger = {
  debug: (message: string, fields?: Fields) => logLine('debug', message, fields),
  info: (message: string, fields?: Fields) => logLine('info', message, fields),
  warn: (message: string, fields?: Fields) => logLine('warn', message, fields),
  error: (message: string, fields?: Fields) => logLine('error', message, fields),
};

/**
 * The AWS SDK prints a ten-line NodeVersionSupportWarning on Node < 22 in every process
 * that makes an SQS client. This switches it off (child processes inherit the switch);
 * the programs that use SQS print `nodeVersionNote()` instead: one short line, once, and
 * nothing on Node >= 22.
 */
export function silenceAwsNodeVersionWarning(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

let noted = false;
/** Logs the one-line Node version note once per process (Node < 22 only). */
export function noteNodeVersion(nodeVersion = process.version): void {
  if (noted) return;
  noted = true;
  const note = nodeVersionNote(nodeVersion);
  if (note) logger.warn(note);
}

/** Pure: the note for this Node version, or null from Node 22 on. */
export function nodeVersionNote(nodeVersion: string): string | null {
  const major = Number(/^v(\d+)/.exec(nodeVersion)?.[1] ?? 0);
  return major > 0 && major < 22
    ? `Node ${nodeVersion} is past its end of life; AWS SDK releases after early January 2027 need Node >= 22.`
    : null;
}
