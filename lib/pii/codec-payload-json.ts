// Temporal's remote codec protocol on the wire: `{"payloads": [Payload, …]}` with each
// Payload in its proto3 JSON form (metadata values and data as base64, int64 as decimal
// strings), read strictly (an unknown field or bad base64 is a 400 naming where) and
// written back. For the codec server (lib/pii/codec-server.ts).
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { HttpError } from '../platform/http';

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** proto3 JSON bytes: standard or URL-safe base64, padded or not. */
function bytesFromJson(value: unknown, where: string): Uint8Array {
  if (typeof value !== 'string') throw new HttpError(400, `${where} must be a base64 string`);
  const unpadded = value.replace(/=+$/, '');
  if (!BASE64.test(value) || unpadded.length % 4 === 1 || (value.includes('=') && value.length % 4 !== 0)) {
    throw new HttpError(400, `${where} is not valid base64`);
  }
  return new Uint8Array(Buffer.from(value, 'base64'));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const fieldName = (name: string) => JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);

function int64FromJson(value: unknown, where: string): string {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (typeof value === 'string' && /^-?\d{1,19}$/.test(value)) {
    const n = BigInt(value);
    if (n >= -(2n ** 63n) && n < 2n ** 63n) return value;
  }
  throw new HttpError(400, `${where} must be a 64-bit integer (a number or a decimal string)`);
}

function payloadFromJson(value: unknown, i: number): Payload {
  const where = `payloads[${i}]`;
  if (!isPlainObject(value)) throw new HttpError(400, `${where} must be an object with "metadata" and "data"`);
  // Maps built from client keys never use a plain {} (a "__proto__" key would set its prototype).
  const metadata = Object.create(null) as Record<string, Uint8Array>;
  let data: Uint8Array = new Uint8Array(0);
  let externalPayloads: temporal.api.common.v1.Payload.ExternalPayloadDetails[] = [];
  for (const [key, field] of Object.entries(value)) {
    if (field === null) continue; // proto3 JSON: null means the default value
    if (key === 'metadata') {
      if (!isPlainObject(field)) throw new HttpError(400, `${where}.metadata must be an object of base64 strings`);
      for (const [k, v] of Object.entries(field)) metadata[k] = bytesFromJson(v, `${where}.metadata value`);
    } else if (key === 'data') {
      data = bytesFromJson(field, `${where}.data`);
    } else if (key === 'externalPayloads' || key === 'external_payloads') {
      if (!Array.isArray(field)) throw new HttpError(400, `${where}.externalPayloads must be an array`);
      externalPayloads = field.map((detail, j) => {
        const at = `${where}.externalPayloads[${j}]`;
        if (!isPlainObject(detail)) throw new HttpError(400, `${at} must be an object`);
        const unknown = Object.keys(detail).find((k) => k !== 'sizeBytes' && k !== 'size_bytes');
        if (unknown !== undefined) throw new HttpError(400, `${at} has an unknown field ${fieldName(unknown)}`);
        const size = detail.sizeBytes ?? detail.size_bytes;
        return temporal.api.common.v1.Payload.ExternalPayloadDetails.fromObject(
          size === undefined || size === null ? {} : { sizeBytes: int64FromJson(size, `${at}.sizeBytes`) },
        );
      });
    } else {
      throw new HttpError(400, `${where} has an unknown field ${fieldName(key)} (expected metadata, data, externalPayloads)`);
    }
  }
  return externalPayloads.length ? { metadata, data, externalPayloads } : { metadata, data };
}

export function payloadsFromJson(body: unknown): Payload[] {
  if (!isPlainObject(body)) throw new HttpError(400, 'request body must be a JSON object {"payloads": [...]}');
  const unknown = Object.keys(body).find((k) => k !== 'payloads');
  if (unknown !== undefined)
    throw new HttpError(400, `request body has an unknown field ${fieldName(unknown)} (expected only "payloads")`);
  if (body.payloads === undefined || body.payloads === null) return [];
  if (!Array.isArray(body.payloads)) throw new HttpError(400, '"payloads" must be an array');
  return body.payloads.map(payloadFromJson);
}

const base64 = (b: Uint8Array | null | undefined) =>
  b ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64') : '';

export function payloadToJson(payload: Payload): Record<string, unknown> {
  const metadata = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(payload.metadata ?? {})) metadata[k] = base64(v);
  const json: Record<string, unknown> = { metadata, data: base64(payload.data) };
  if (payload.externalPayloads?.length) {
    // int64 travels as a decimal string in proto3 JSON.
    json.externalPayloads = payload.externalPayloads.map((d) => ({ sizeBytes: String(d.sizeBytes ?? 0) }));
  }
  return json;
}
