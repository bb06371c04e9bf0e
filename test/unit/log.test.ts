import { jsonLine, nodeVersionNote, textLine } from '../../lib/platform/log';
import { formatLogEntry, formatLogEntryJson } from '../../lib/platform/logging';

const time = new Date('2026-12-01T10:00:00.000Z');

describe('log lines', () => {
  it('JSON: one object with level, time, message and the fields', () => {
    const line = jsonLine('INFO', 'Persisted batch', { workflowId: 'login-ingest', persisted: 3, skipped: undefined }, time);
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      level: 'info',
      time: '2026-12-01T10:00:00.000Z',
      message: 'Persisted batch',
      workflowId: 'login-ingest',
      persisted: 3,
    });
  });
  it('JSON: fields cannot overwrite level, time or message; errors become name and message', () => {
    const parsed = JSON.parse(jsonLine('warn', 'm', { level: 'x', message: 'y', err: new TypeError('boom') }, time));
    expect(parsed).toEqual({
      level: 'warn',
      time: '2026-12-01T10:00:00.000Z',
      message: 'm',
      err: { name: 'TypeError', message: 'boom' },
    });
  });
  it('text: time, level, message, key=value', () => {
    expect(textLine('info', 'Received batch', { messages: 10 }, time)).toBe(
      '2026-12-01T10:00:00.000Z INFO  Received batch messages=10',
    );
  });
});

describe('worker (SDK) log entries', () => {
  const entry = {
    level: 'INFO' as const,
    message: 'Persisted batch',
    timestampNanos: BigInt(time.getTime()) * 1_000_000n,
    meta: {
      workflowId: 'login-ingest',
      workflowRunId: 'r-1',
      activityType: 'drainQueue',
      taskToken: 'opaque',
      sdkComponent: 'activity',
      persisted: 7,
      attempt: 1,
    },
  };
  it('JSON: workflow and run IDs and counts, no opaque tokens', () => {
    expect(JSON.parse(formatLogEntryJson(entry))).toEqual({
      level: 'info',
      time: '2026-12-01T10:00:00.000Z',
      message: 'Persisted batch',
      workflowId: 'login-ingest',
      runId: 'r-1',
      activityType: 'drainQueue',
      persisted: 7,
      attempt: 1,
    });
  });
  it('text: stays compact', () => {
    expect(formatLogEntry(entry)).toBe(
      '2026-12-01T10:00:00.000Z INFO  Persisted batch workflowId=login-ingest activityType=drainQueue persisted=7',
    );
  });
});

describe('the Node version note', () => {
  it('is one short line before Node 22 and nothing from 22 on', () => {
    const note = nodeVersionNote('v20.20.0');
    expect(note).toMatch(
      /^Node v20\.20\.0 is past its end of life; AWS SDK releases after early January 2027 need Node >= 22\.$/,
    );
    expect(nodeVersionNote('v22.1.0')).toBeNull();
    expect(nodeVersionNote('v24.21.0')).toBeNull();
  });
});
