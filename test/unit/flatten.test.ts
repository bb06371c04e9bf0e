import { flatten, LOGIN_FIELDS } from '../../lib/pipeline/flatten';
import { isWrongTypeSample, sampleEvents, validEvent } from './helpers';

const reasonsOf = (body: unknown): string[] => {
  const result = flatten(body);
  if (result.ok) throw new Error(`expected flatten to reject ${JSON.stringify(body)}, got ${JSON.stringify(result.event)}`);
  return result.reasons;
};

const eventOf = (body: unknown) => {
  const result = flatten(body);
  if (!result.ok) throw new Error(`expected flatten to accept ${JSON.stringify(body)}, got reasons ${result.reasons.join(', ')}`);
  return result.event;
};

describe('flatten: accepted shapes', () => {
  it('passes a canonical snake_case event through field by field', () => {
    const body = { ...validEvent(), create_date: '2024-05-01T12:00:00Z' };
    expect(eventOf(body)).toEqual({
      user_id: '424cdd21-063a-43a7-b91b-7ca1a833afae',
      app_version: '2.3.0',
      device_type: 'android',
      ip: '199.172.111.135',
      locale: 'RU',
      device_id: '593-47-5928',
      create_date: '2024-05-01T12:00:00Z',
    });
  });

  it('maps camelCase and other renamed spellings onto the snake_case fields', () => {
    const body = {
      userId: 'u-1',
      deviceType: 'ios',
      ipAddress: '10.0.0.1',
      deviceId: 'd-1',
      locale: 'DE',
      appVersion: '1.2',
      createdAt: 1700000000,
    };
    expect(eventOf(body)).toEqual({
      user_id: 'u-1',
      device_type: 'ios',
      ip: '10.0.0.1',
      device_id: 'd-1',
      locale: 'DE',
      app_version: '1.2',
      create_date: 1700000000,
    });
    expect(eventOf({ ip_address: '10.0.0.2' })).toEqual({ ip: '10.0.0.2' });
    expect(eventOf({ createDate: 'x' })).toEqual({ create_date: 'x' });
    expect(eventOf({ created_at: 'y' })).toEqual({ create_date: 'y' });
  });

  it('maps the nested {user:{id}, device:{type,id}, app:{version}} shape', () => {
    const body = {
      user: { id: 'u-2', locale: 'FR' },
      device: { type: 'android', id: 'd-2' },
      app: { version: '3.10.4' },
      ip: '2001:db8::1',
    };
    expect(eventOf(body)).toEqual({
      user_id: 'u-2',
      locale: 'FR',
      device_type: 'android',
      device_id: 'd-2',
      app_version: '3.10.4',
      ip: '2001:db8::1',
    });
  });

  it('does not check types: that is validate’s job', () => {
    expect(eventOf({ user_id: 42, ip: { a: 1 }, locale: null })).toEqual({ user_id: 42, ip: { a: 1 }, locale: null });
  });

  it('accepts the same value given under two spellings', () => {
    expect(eventOf({ ...validEvent(), userId: validEvent().user_id, device: { id: validEvent().device_id } })).toEqual(
      validEvent(),
    );
    expect(eventOf({ locale: null, user: { locale: null } })).toEqual({ locale: null });
  });

  it('only ever produces the known login fields', () => {
    const fields = new Set<string>(LOGIN_FIELDS);
    for (const body of sampleEvents().filter((e) => !isWrongTypeSample(e))) {
      for (const key of Object.keys(eventOf(body))) expect(fields.has(key)).toBe(true);
    }
  });
});

describe('flatten: rejected shapes', () => {
  it('rejects an unknown extra field instead of dropping it', () => {
    expect(reasonsOf({ ...validEvent(), os_version: '17.1' })).toEqual(['unknown_field']);
  });

  it('rejects an unknown field inside a known container', () => {
    expect(reasonsOf({ ...validEvent(), device: { model: 'Pixel 8' } })).toEqual(['unknown_field']);
  });

  it('treats a container name holding a non-object as an unknown field', () => {
    expect(reasonsOf({ ...validEvent(), app: '2.3.0' })).toEqual(['unknown_field']);
  });

  it('reports conflicting duplicates (user_id and userId with different values)', () => {
    expect(reasonsOf({ ...validEvent(), userId: 'someone-else' })).toEqual(['conflicting_field:user_id']);
  });

  it('reports conflicts between a flat and a nested spelling', () => {
    expect(reasonsOf({ ...validEvent(), device: { id: 'other-device' } })).toEqual(['conflicting_field:device_id']);
    expect(reasonsOf({ ...validEvent(), ip_address: '10.9.9.9' })).toEqual(['conflicting_field:ip']);
  });

  it('reports a conflict and an unknown field together', () => {
    const reasons = reasonsOf({ ...validEvent(), appVersion: '9.9.9', extra: true });
    expect(reasons).toHaveLength(2);
    expect(reasons).toEqual(expect.arrayContaining(['conflicting_field:app_version', 'unknown_field']));
  });

  it.each([
    ['an array', [validEvent()]],
    ['an empty array', []],
    ['a string', 'user_id=1'],
    ['a number', 42],
    ['a boolean', true],
    ['null', null],
    ['undefined', undefined],
  ])('rejects %s as not_an_object', (_name, body) => {
    expect(reasonsOf(body)).toEqual(['not_an_object']);
  });

  it('classifies the sample’s wrong-type message as unknown_shape', () => {
    const wrong = sampleEvents().filter(isWrongTypeSample);
    expect(wrong).toEqual([{ foo: 'oops_wrong_msg_type', bar: '123' }]);
    expect(reasonsOf(wrong[0])).toEqual(['unknown_shape']);
  });

  // The dotted aliases are paths into nested objects; a flat key that happens to contain
  // the dot ({"app.version": …}) is not one of them and must not be guessed.
  it('rejects literal dotted keys such as "app.version" (not nested objects) as unknown fields', () => {
    const dotted: Record<string, string> = {
      'user.id': 'user_id',
      'device.type': 'device_type',
      'device.id': 'device_id',
      'app.version': 'app_version',
      'user.locale': 'locale',
    };
    const accepted = Object.entries(dotted).filter(([key, field]) => {
      const body: Record<string, unknown> = validEvent();
      body[key] = body[field];
      delete body[field];
      const result = flatten(body);
      return result.ok || !result.reasons.includes('unknown_field');
    });
    expect(accepted.map(([key]) => key)).toEqual([]);
  });

  it('classifies an empty object as unknown_shape', () => {
    expect(reasonsOf({})).toEqual(['unknown_shape']);
  });
});

describe('flatten: hostile keys', () => {
  afterEach(() => {
    // Nothing may have leaked onto the shared prototypes.
    expect(({} as Record<string, unknown>).ip).toBeUndefined();
    expect(({} as Record<string, unknown>).user_id).toBeUndefined();
    expect(Object.keys(Object.prototype)).toEqual([]);
  });

  it('does not accept or follow a "__proto__" key', () => {
    const body = JSON.parse('{"__proto__": {"ip": "1.2.3.4"}}');
    // JSON.parse makes "__proto__" an ordinary own property, as an SQS body would.
    expect(Object.keys(body)).toEqual(['__proto__']);
    expect(reasonsOf(body)).toEqual(['unknown_shape']);
  });

  it('rejects "__proto__" next to a valid event as an unknown field, without taking its contents', () => {
    const body = JSON.parse(JSON.stringify(validEvent()).replace(/^\{/, '{"__proto__": {"ip": "6.6.6.6", "user_id": "evil"},'));
    expect(reasonsOf(body)).toEqual(['unknown_field']);
  });

  it('does not descend into "__proto__" or "constructor" inside a container', () => {
    const body = JSON.parse('{"user": {"__proto__": {"id": "evil"}}, "device": {"constructor": {"prototype": {"id": "evil"}}}}');
    expect(reasonsOf(body)).toEqual(['unknown_shape']);
  });

  it.each(['constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'])('does not treat "%s" as a field', (key) => {
    const body = JSON.parse(`{"${key}": {"ip": "1.2.3.4", "user_id": "evil"}}`);
    expect(reasonsOf(body)).toEqual(['unknown_shape']);
    expect(reasonsOf({ ...validEvent(), ...body })).toEqual(['unknown_field']);
  });

  it('returns an event whose only keys are the login fields even for a body with hostile keys nested in values', () => {
    const event = eventOf(JSON.parse('{"user_id": {"__proto__": {"polluted": true}}}'));
    expect(Object.keys(event)).toEqual(['user_id']);
    expect((event as Record<string, unknown>).polluted).toBeUndefined();
  });
});
