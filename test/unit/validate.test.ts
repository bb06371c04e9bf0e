import { flatten, type FlatEvent } from '../../lib/pipeline/flatten';
import { canonicalIp, MAX_LENGTH, parseCreateDate, validate, type LoginEvent } from '../../lib/pipeline/validate';
import { isWrongTypeSample, sampleEvents, validEvent } from './helpers';

const reasonsOf = (event: FlatEvent): string[] => {
  const result = validate(event);
  if (result.ok) throw new Error(`expected validate to reject ${JSON.stringify(event)}`);
  return result.reasons;
};

const eventOf = (event: FlatEvent): LoginEvent => {
  const result = validate(event);
  if (!result.ok)
    throw new Error(`expected validate to accept ${JSON.stringify(event)}, got reasons ${result.reasons.join(', ')}`);
  return result.event;
};

const TEXT_FIELDS = ['user_id', 'device_type', 'device_id', 'locale', 'app_version'] as const;

describe('validate: the sample', () => {
  const events = sampleEvents().filter((e) => !isWrongTypeSample(e));

  it('has 99 login events besides the wrong-type message', () => {
    expect(events).toHaveLength(99);
  });

  it('accepts every login event of the sample, unchanged apart from normalisation', () => {
    for (const raw of events) {
      const flat = flatten(raw);
      expect(flat.ok).toBe(true);
      if (!flat.ok) continue;
      const result = validate(flat.event);
      expect({ raw, reasons: result.ok ? [] : result.reasons }).toEqual({ raw, reasons: [] });
      if (!result.ok) continue;
      expect(result.event.userId).toBe(raw.user_id);
      expect(result.event.deviceId).toBe(raw.device_id);
      expect(result.event.ip).toBe(raw.ip); // all sample IPs are already canonical dotted quads
      expect(result.event.locale).toBe(raw.locale);
      expect(result.event.appVersion).toBe(raw.app_version);
      // The version parts, re-joined, give back the version string with its missing parts as 0.
      const parts = String(raw.app_version).split('.').map(Number);
      expect(result.event.appVersionParts).toEqual([parts[0], parts[1] ?? 0, parts[2] ?? 0]);
      expect(result.event.createDate).toBeNull(); // the sample has no create_date
    }
  });
});

describe('validate: presence and types', () => {
  it('accepts a complete event and trims surrounding whitespace', () => {
    expect(eventOf(validEvent({ user_id: '  u-1  ', device_type: 'ios\n' }))).toMatchObject({ userId: 'u-1', deviceType: 'ios' });
  });

  it.each(['user_id', 'device_type', 'ip', 'device_id', 'app_version'])('reports a missing %s', (field) => {
    const event = validEvent();
    delete event[field];
    expect(reasonsOf(event)).toEqual([`missing_field:${field}`]);
  });

  it.each(['user_id', 'device_type', 'ip', 'device_id', 'app_version'])('treats a null %s as missing', (field) => {
    expect(reasonsOf(validEvent({ [field]: null }))).toEqual([`missing_field:${field}`]);
  });

  it('accepts a null or absent locale as null', () => {
    expect(eventOf(validEvent({ locale: null })).locale).toBeNull();
    const withoutLocale = validEvent();
    delete withoutLocale.locale;
    // An absent locale is "missing", unlike an explicit null.
    expect(reasonsOf(withoutLocale)).toEqual(['missing_field:locale']);
  });

  it.each([
    ['user_id', 12345],
    ['ip', { v4: '1.2.3.4' }],
    ['ip', 16909060],
    ['locale', true],
    ['app_version', 230],
    ['device_type', ['ios']],
    ['device_id', 5935928],
  ])('reports wrong_type for %s = %j', (field, value) => {
    expect(reasonsOf(validEvent({ [field]: value }))).toEqual([`wrong_type:${field}`]);
  });

  it.each(['user_id', 'device_type', 'device_id', 'locale', 'app_version'])(
    'reports empty:%s for empty and blank strings',
    (field) => {
      expect(reasonsOf(validEvent({ [field]: '' }))).toEqual([`empty:${field}`]);
      expect(reasonsOf(validEvent({ [field]: ' \t ' }))).toEqual([`empty:${field}`]);
    },
  );

  it('reports too_long:user_id for 129 characters and accepts 128', () => {
    expect(reasonsOf(validEvent({ user_id: 'a'.repeat(129) }))).toEqual(['too_long:user_id']);
    expect(eventOf(validEvent({ user_id: 'a'.repeat(128) })).userId).toHaveLength(128);
  });

  it.each(TEXT_FIELDS)('enforces the column width of %s', (field) => {
    const max = MAX_LENGTH[field];
    // app_version must also parse, so build an over-long one from digits and dots.
    const tooLong = field === 'app_version' ? '1.' + '0'.repeat(max - 1) : 'x'.repeat(max + 1);
    expect(tooLong).toHaveLength(max + 1);
    expect(reasonsOf(validEvent({ [field]: tooLong }))).toEqual([`too_long:${field}`]);
  });

  it.each([
    ['NUL', 'abc\u0000def'],
    ['a bell', 'abc\u0007def'],
    ['an escape', 'abc\u001bdef'],
    ['an inner newline', 'abc\ndef'],
    ['DEL', 'abc\u007fdef'],
    ['a lone high surrogate', 'abc\ud800def'],
    ['a lone low surrogate', '\udc00'],
    ['only a lone surrogate', '\ud800'],
  ])('reports invalid_characters for %s', (_name, value) => {
    for (const field of ['user_id', 'device_type', 'device_id', 'locale'] as const) {
      expect(reasonsOf(validEvent({ [field]: value }))).toEqual([`invalid_characters:${field}`]);
    }
  });

  // C1 control characters (U+0080–U+009F, category Cc like the C0 ones): U+009B is the
  // one-byte terminal CSI, U+0085 is NEL.
  it('reports invalid_characters for the C1 control characters U+0080–U+009F', () => {
    const accepted: string[] = [];
    for (let code = 0x80; code <= 0x9f; code++) {
      const result = validate(validEvent({ user_id: `abc${String.fromCharCode(code)}def` }));
      if (result.ok || result.reasons.join() !== 'invalid_characters:user_id')
        accepted.push(`U+${code.toString(16).toUpperCase().padStart(4, '0')}`);
    }
    expect(accepted).toEqual([]);
  });

  it('accepts non-ASCII text that is well formed (including astral characters)', () => {
    expect(eventOf(validEvent({ user_id: 'Zoë-用户-😀' })).userId).toBe('Zoë-用户-😀');
  });

  it('reports several problems together', () => {
    const reasons = reasonsOf({ user_id: 7, device_type: '', ip: '999.1.1.1', locale: 'RU\u0000', app_version: 'v2' });
    expect(reasons).toEqual(
      expect.arrayContaining([
        'wrong_type:user_id',
        'empty:device_type',
        'invalid_ip',
        'missing_field:device_id',
        'invalid_characters:locale',
        'invalid_app_version',
      ]),
    );
    expect(reasons).toHaveLength(6);
  });

  it('never echoes a PII value in a reason', () => {
    const reasons = reasonsOf(validEvent({ ip: '300.1.2.3', device_id: 'dev\u0000secret' }));
    expect(reasons.join(' ')).not.toContain('300.1.2.3');
    expect(reasons.join(' ')).not.toContain('secret');
  });
});

describe('validate: IP addresses', () => {
  it.each([
    ['1.2.3.4', '1.2.3.4'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    [' 10.0.0.1 ', '10.0.0.1'],
    ['::1', '::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['FE80:0000:0000:0000:0202:B3FF:FE1E:8329', 'fe80::202:b3ff:fe1e:8329'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // RFC 5952: the first of two equal zero runs is compressed
    ['0:0:0:0:0:0:0:0', '::'],
  ])('accepts %j as %j', (input, canonical) => {
    expect(eventOf(validEvent({ ip: input })).ip).toBe(canonical);
  });

  it('gives one canonical form for every spelling of the same IPv6 address', () => {
    const spellings = ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', '2001:0DB8::0001', '2001:db8:0::0:1'];
    expect(new Set(spellings.map((s) => canonicalIp(s)))).toEqual(new Set(['2001:db8::1']));
  });

  it.each([
    ['256.1.1.1'],
    ['1.2.3'],
    ['10.1'],
    ['010.0.0.1'],
    ['1.2.3.04'],
    ['1.2.3.4.5'],
    ['0x7f.0.0.1'],
    ['2130706433'],
    ['::g'],
    ['1:2:3:4:5:6:7:8:9'],
    ['2001:db8:::1'],
    ['fe80::1%eth0'],
    ['1.2.3.4/24'],
    ['localhost'],
    [''],
    ['   '],
    ['1'.repeat(50)],
    ['1.2.3.4' + ' '.repeat(50) + 'x'],
  ])('rejects %j as invalid_ip', (input) => {
    expect(reasonsOf(validEvent({ ip: input }))).toEqual(['invalid_ip']);
    expect(canonicalIp(input.trim())).toBeNull();
  });
});

describe('validate: app_version', () => {
  it.each([
    ['2.3.0', [2, 3, 0]],
    ['0.96', [0, 96, 0]],
    ['2.00', [2, 0, 0]],
    ['1', [1, 0, 0]],
    ['3.10.4', [3, 10, 4]],
    ['0.0.0', [0, 0, 0]],
    [' 1.2 ', [1, 2, 0]],
  ])('parses %j as %j and keeps the string as given (trimmed)', (version, parts) => {
    const event = eventOf(validEvent({ app_version: version }));
    expect(event.appVersionParts).toEqual(parts);
    expect(event.appVersion).toBe(version.trim());
  });

  it.each(['v2', '1.2.3.4', '1..2', '1.', '.1', '1.2.x', '-1', '1.2.3-beta', '١.٢', '1234567890.0'])(
    'rejects %j as invalid_app_version',
    (version) => {
      expect(reasonsOf(validEvent({ app_version: version }))).toEqual(['invalid_app_version']);
    },
  );

  it('reports an empty app_version as empty, not as unparsable', () => {
    expect(reasonsOf(validEvent({ app_version: '' }))).toEqual(['empty:app_version']);
  });
});

describe('parseCreateDate', () => {
  const now = Date.UTC(2025, 5, 15, 12, 0, 0);

  it.each([
    ['2024-05-01T12:34:56Z', '2024-05-01T12:34:56.000Z'],
    ['2024-05-01T12:34:56.789Z', '2024-05-01T12:34:56.789Z'],
    ['2024-05-01T12:34:56+02:00', '2024-05-01T10:34:56.000Z'],
    ['2024-05-01', '2024-05-01T00:00:00.000Z'],
    [' 2024-05-01T12:34:56Z ', '2024-05-01T12:34:56.000Z'],
  ])('parses the ISO string %j', (input, iso) => {
    expect(parseCreateDate(input, now)?.toISOString()).toBe(iso);
  });

  it('reads numbers below 1e11 as epoch seconds and larger ones as epoch milliseconds', () => {
    const ms = Date.UTC(2024, 0, 2, 3, 4, 5);
    expect(parseCreateDate(ms / 1000, now)?.getTime()).toBe(ms);
    expect(parseCreateDate(ms, now)?.getTime()).toBe(ms);
    expect(parseCreateDate(ms / 1000 + 0.5, now)?.getTime()).toBe(ms + 500);
  });

  it.each([
    ['garbage text', 'yesterday'],
    ['a numeric string', '1714566896'],
    ['an invalid month', '2024-13-01T00:00:00Z'],
    ['an invalid hour', '2024-01-01T25:00:00Z'],
    ['an object', { at: '2024-05-01' }],
    ['a boolean', true],
    ['null', null],
    ['undefined', undefined],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['a negative number', -1],
    ['zero', 0],
  ])('returns null for %s', (_name, value) => {
    expect(parseCreateDate(value, now)).toBeNull();
  });

  // V8's Date.parse accepts days 29–31 in any month and rolls them over ("2024-02-30"
  // would become 2024-03-01); an impossible date must fall back instead.
  it('returns null for impossible calendar dates instead of rolling them over', () => {
    const impossible = ['2024-02-30', '2023-02-29T12:00:00Z', '2024-04-31T00:00:00Z'];
    const parsed = impossible.map((value) => [value, parseCreateDate(value, now)?.toISOString() ?? null]);
    expect(parsed).toEqual(impossible.map((value) => [value, null]));
  });

  it('accepts 29 February in a leap year', () => {
    expect(parseCreateDate('2024-02-29T12:00:00Z', now)?.toISOString()).toBe('2024-02-29T12:00:00.000Z');
  });

  it('returns null for dates before 2000', () => {
    expect(parseCreateDate('1999-12-31T23:59:59Z', now)).toBeNull();
    expect(parseCreateDate(Date.UTC(1999, 11, 31) / 1000, now)).toBeNull();
    expect(parseCreateDate('2000-01-01T00:00:00Z', now)?.toISOString()).toBe('2000-01-01T00:00:00.000Z');
  });

  it('returns null for dates more than a day after now, and accepts small clock skew', () => {
    const day = 24 * 3600 * 1000;
    expect(parseCreateDate(now + day + 1000, now)).toBeNull();
    expect(parseCreateDate('2999-01-01T00:00:00Z', now)).toBeNull();
    expect(parseCreateDate(now + day - 1000, now)?.getTime()).toBe(now + day - 1000);
  });

  it('is what validate uses for create_date, falling back to null', () => {
    expect(eventOf(validEvent({ create_date: '2024-05-01T12:34:56Z' })).createDate?.toISOString()).toBe(
      '2024-05-01T12:34:56.000Z',
    );
    expect(eventOf(validEvent({ create_date: 'not a date' })).createDate).toBeNull();
  });
});

describe('IP canonical forms', () => {
  it('gives an IPv4-mapped IPv6 address the IPv4 form, so both mask alike', () => {
    expect(canonicalIp('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(canonicalIp('::FFFF:1.2.3.4')).toBe('1.2.3.4');
  });
  it('rejects shorthand or octal IPv4 inside an IPv6 address', () => {
    expect(canonicalIp('::ffff:010.0.0.1')).toBeNull();
    expect(canonicalIp('::ffff:1.2.3')).toBeNull();
  });
});

describe('create dates without an offset', () => {
  it('are read as UTC, whatever the time zone of the worker', () => {
    expect(parseCreateDate('2024-01-01T10:00:00', Date.UTC(2025, 0, 1))?.toISOString()).toBe('2024-01-01T10:00:00.000Z');
    expect(parseCreateDate('2024-01-01T10:00:00+02:00', Date.UTC(2025, 0, 1))?.toISOString()).toBe('2024-01-01T08:00:00.000Z');
    expect(parseCreateDate('2024-01-01T10:00:00-0530', Date.UTC(2025, 0, 1))?.toISOString()).toBe('2024-01-01T15:30:00.000Z');
  });
});

describe('canonicalIp: the plain IPv4 fast path agrees with ipaddr.js', () => {
  it('gives the same answer as the parser for every kind of dotted quad', async () => {
    const ipaddr = (await import('ipaddr.js')).default;
    const slow = (v: string) => (ipaddr.IPv4.isValidFourPartDecimal(v) ? ipaddr.IPv4.parse(v).toString() : null);
    const parts = ['0', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '300', '01', '00', '-1', 'a', ''];
    let checked = 0;
    for (const a of parts)
      for (const b of ['0', '255', '01', '256'])
        for (const c of parts) {
          const v = `${a}.${b}.${c}.${c === '' ? '1' : '7'}`;
          const expected = slow(v) ?? (ipaddr.IPv6.isValid(v) ? 'ipv6' : null);
          if (expected === 'ipv6') continue;
          expect([v, canonicalIp(v)]).toEqual([v, expected]);
          checked++;
        }
    expect(checked).toBeGreaterThan(1000);
  });
});
