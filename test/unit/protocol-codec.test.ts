import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  MAX_NESTING_DEPTH,
  SERVER_PING,
  decodeFrame,
  encodeClientInfoJson,
  encodeErrorReply,
  encodePublicationJson,
  encodePublicationPush,
  encodePush,
  encodeReply,
  isValidJsonText,
  joinMessages,
  nestingExceeds,
} from '../../src/protocol/codec.js';
import { Errors } from '../../src/protocol/codes.js';
import { RawJson } from '../../src/protocol/types.js';

describe('decodeFrame', () => {
  it('decodes a batched connect + subscribe frame in order', () => {
    const frame =
      '{"connect":{"token":"t","name":"js"},"id":1}\n{"subscribe":{"channel":"chat:1","flag":1},"id":2}';
    const out = decodeFrame(frame);
    expect(out).toEqual([
      { ok: true, method: 'connect', command: { id: 1, connect: { token: 't', name: 'js' } } },
      { ok: true, method: 'subscribe', command: { id: 2, subscribe: { channel: 'chat:1', flag: 1 } } },
    ]);
  });

  it('skips blank lines and tolerates \\r\\n', () => {
    const out = decodeFrame(
      '\n{"id":1,"presence":{"channel":"a"}}\r\n\n  \n{"id":2,"history":{"channel":"a"}}\n',
    );
    expect(out.map((d) => d.ok && d.method)).toEqual(['presence', 'history']);
  });

  it('reads a pong, a send without id, and normalises id 0 away', () => {
    const [pong, send, zero] = decodeFrame('{}\n{"send":{"data":{"x":1}}}\n{"id":0}');
    expect(pong).toEqual({ ok: true, method: null, command: {} });
    expect(send).toEqual({ ok: true, method: 'send', command: { send: { data: { x: 1 } } } });
    expect(zero).toEqual({ ok: true, method: null, command: {} });
  });

  it('reports bad lines without throwing and keeps decoding the rest', () => {
    const out = decodeFrame('not json\n{"id":3,"publish":{"channel":"c","data":1}}\n[1,2]\n"x"\nnull');
    expect(out).toHaveLength(5);
    expect(out[0]).toMatchObject({ ok: false, reason: 'not JSON' });
    expect(out[1]).toMatchObject({ ok: true, method: 'publish' });
    for (const bad of out.slice(2)) expect(bad.ok).toBe(false);
  });

  it('rejects unknown methods, several methods and bad ids, keeping a readable id', () => {
    const out = decodeFrame(
      [
        '{"id":4,"frobnicate":{}}',
        '{"id":5,"presence":{"channel":"a"},"history":{"channel":"a"}}',
        '{"id":-1,"presence":{"channel":"a"}}',
        '{"id":1.5}',
        '{"id":"7","presence":{"channel":"a"}}',
      ].join('\n'),
    );
    expect(out[0]).toEqual({ ok: false, id: 4, reason: 'unknown method "frobnicate"' });
    expect(out[1]).toMatchObject({ ok: false, id: 5 });
    for (const bad of out.slice(2)) expect(bad).toEqual({ ok: false, reason: expect.any(String) });
  });

  it('checks payload shapes: object where required, required fields, field types', () => {
    const cases = [
      '{"id":1,"subscribe":null}',
      '{"id":1,"subscribe":[]}',
      '{"id":1,"subscribe":{}}',
      '{"id":1,"subscribe":{"channel":5}}',
      '{"id":1,"subscribe":{"channel":"a","offset":-1}}',
      '{"id":1,"subscribe":{"channel":"a","recover":"yes"}}',
      '{"id":1,"publish":{"channel":"a"}}',
      '{"id":1,"history":{"channel":"a","since":{"offset":"3"}}}',
      '{"id":1,"connect":{"headers":{"a":1}}}',
      '{"id":1,"connect":{"subs":{"c":{"offset":1.5}}}}',
      '{"id":1,"refresh":{}}',
    ];
    for (const line of cases) {
      const [verdict] = decodeFrame(line);
      expect(verdict, line).toMatchObject({ ok: false, id: 1 });
    }
  });

  it('accepts JSON null as publish data and keeps unknown payload fields', () => {
    const [verdict] = decodeFrame('{"id":1,"publish":{"channel":"a","data":null,"future":true}}');
    expect(verdict).toEqual({
      ok: true,
      method: 'publish',
      command: { id: 1, publish: { channel: 'a', data: null, future: true } },
    });
  });

  it('rejects absurdly deep nesting cheaply, and accepts the limit', () => {
    const deep = `{"id":1,"publish":{"channel":"a","data":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`;
    expect(decodeFrame(deep)).toEqual([{ ok: false, reason: expect.stringContaining('nesting') }]);
    const atLimit = `{"id":1,"publish":{"channel":"a","data":${'['.repeat(MAX_NESTING_DEPTH - 2)}${']'.repeat(MAX_NESTING_DEPTH - 2)}}}`;
    expect(decodeFrame(atLimit)[0]).toMatchObject({ ok: true });
  });

  it('does not count brackets inside strings as nesting', () => {
    const text = JSON.stringify({ id: 1, publish: { channel: 'a', data: '[{'.repeat(200) + '\\"[' } });
    expect(nestingExceeds(text)).toBe(false);
    expect(decodeFrame(text)[0]).toMatchObject({ ok: true });
  });

  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        const out = decodeFrame(text);
        expect(Array.isArray(out)).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutations of valid frames, and every verdict has a valid shape', () => {
    const valid = [
      '{"connect":{"token":"a.b.c","name":"js","subs":{"c":{"recover":true,"offset":3,"epoch":"e"}}},"id":1}',
      '{"subscribe":{"channel":"chat:1","flag":1,"recover":true,"offset":3,"epoch":"845ac949"},"id":2}',
      '{"publish":{"channel":"chat:1","data":{"text":"hi","n":[1,2,{"x":null}]}},"id":3}',
      '{"history":{"channel":"chat:1","limit":-1,"since":{"offset":1,"epoch":"e"},"reverse":true},"id":4}',
      '{}',
    ].join('\n');
    const mutation = fc.record({
      at: fc.nat(),
      remove: fc.nat({ max: 4 }),
      insert: fc.string({ maxLength: 6, unit: fc.constantFrom(...'{}[]":,\\\n 0-1eE.aZtrufnl'.split('')) }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { maxLength: 5 }), (mutations) => {
        let text = valid;
        for (const m of mutations) {
          const at = m.at % (text.length + 1);
          text = text.slice(0, at) + m.insert + text.slice(at + m.remove);
        }
        for (const verdict of decodeFrame(text)) {
          if (verdict.ok) expect(typeof verdict.command).toBe('object');
          else expect(typeof verdict.reason).toBe('string');
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('encodePublicationPush / encodePublicationJson', () => {
  const infoJson = encodeClientInfoJson({ user: '42', client: 'c1', conn_info: { name: 'Ann' } });

  it('splices pre-encoded JSON into the exact envelope', () => {
    const text = encodePublicationPush('chat:1', {
      offset: 1,
      dataJson: '{"text":"line1\\nline2"}',
      infoJson,
      tagsJson: '{"k":"v"}',
      epoch: 'abcd',
    });
    expect(text).toBe(
      '{"push":{"channel":"chat:1","pub":{"data":{"text":"line1\\nline2"},"offset":1,' +
        '"info":{"user":"42","client":"c1","conn_info":{"name":"Ann"}},"tags":{"k":"v"},"epoch":"abcd"}}}',
    );
    expect(text).not.toContain('\n');
    expect(JSON.parse(text)).toEqual({
      push: {
        channel: 'chat:1',
        pub: {
          data: { text: 'line1\nline2' },
          offset: 1,
          info: { user: '42', client: 'c1', conn_info: { name: 'Ann' } },
          tags: { k: 'v' },
          epoch: 'abcd',
        },
      },
    });
  });

  it('omits optional parts, escapes the channel and drops raw newlines (JSON whitespace) from data', () => {
    const text = encodePublicationPush('we"ird\nchannel', {
      offset: 7,
      dataJson: '{\n  "a": 1\n}',
      tagsJson: '{}',
      epoch: '',
    });
    expect(text).not.toContain('\n');
    expect(JSON.parse(text)).toEqual({
      push: { channel: 'we"ird\nchannel', pub: { data: { a: 1 }, offset: 7 } },
    });
  });

  it('keeps falsy data values: 0, false, null, ""', () => {
    for (const dataJson of ['0', 'false', 'null', '""']) {
      expect(JSON.parse(encodePublicationJson({ offset: 2, dataJson }))).toEqual({
        data: JSON.parse(dataJson),
        offset: 2,
      });
    }
  });

  it('round-trips arbitrary JSON data', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), fc.nat(), (data, channel, offset) => {
        const text = encodePublicationPush(channel, { offset, dataJson: JSON.stringify(data) });
        expect(text).not.toContain('\n');
        const parsed = JSON.parse(text);
        expect(parsed.push.channel).toBe(channel);
        expect(parsed.push.pub.data).toEqual(JSON.parse(JSON.stringify(data)));
      }),
    );
  });
});

describe('encodeReply / encodePush', () => {
  it('writes empty result objects and omits zero fields', () => {
    expect(encodeReply({ id: 3, publish: {} })).toBe('{"id":3,"publish":{}}');
    expect(
      encodeReply({
        id: 2,
        subscribe: {
          recoverable: true,
          positioned: true,
          epoch: 'e',
          offset: 0,
          publications: [],
          recovered: false,
        },
      }),
    ).toBe('{"id":2,"subscribe":{"recoverable":true,"positioned":true,"epoch":"e"}}');
  });

  it('always writes num_clients/num_users, the presence map and ClientInfo user/client', () => {
    expect(encodeReply({ id: 1, presence_stats: { num_clients: 0, num_users: 0 } })).toBe(
      '{"id":1,"presence_stats":{"num_clients":0,"num_users":0}}',
    );
    expect(encodeReply({ id: 1, presence: { presence: {} } })).toBe('{"id":1,"presence":{"presence":{}}}');
    expect(encodeReply({ id: 1, presence: { presence: { c1: { user: '', client: 'c1' } } } })).toBe(
      '{"id":1,"presence":{"presence":{"c1":{"user":"","client":"c1"}}}}',
    );
  });

  it('splices RawJson publications into subscribe and history replies', () => {
    const pub = new RawJson(encodePublicationJson({ offset: 4, dataJson: '{"n":4}' }));
    const text = encodeReply({ id: 10, history: { publications: [pub], epoch: 'e', offset: 4 } });
    expect(text).toBe(
      '{"id":10,"history":{"publications":[{"data":{"n":4},"offset":4}],"epoch":"e","offset":4}}',
    );
  });

  it('keeps falsy embedded data and empty tag values, omits empty maps', () => {
    expect(encodeReply({ id: 1, rpc: { data: 0 } })).toBe('{"id":1,"rpc":{"data":0}}');
    expect(encodeReply({ id: 1, rpc: { data: null } })).toBe('{"id":1,"rpc":{"data":null}}');
    const pushText = encodePush({ channel: 'c', pub: { data: { a: 1 }, tags: { t: '' } } });
    expect(pushText).toBe('{"push":{"channel":"c","pub":{"data":{"a":1},"tags":{"t":""}}}}');
    expect(encodePush({ channel: 'c', pub: { data: 1, tags: {} } })).toBe(
      '{"push":{"channel":"c","pub":{"data":1}}}',
    );
  });

  it('encodes errors, pushes without channel, and pings', () => {
    expect(encodeErrorReply(5, Errors.unknownChannel)).toBe(
      '{"id":5,"error":{"code":102,"message":"unknown channel"}}',
    );
    expect(encodeReply({ id: 6, error: Errors.internal })).toBe(
      '{"id":6,"error":{"code":100,"message":"internal server error","temporary":true}}',
    );
    expect(encodePush({ channel: 'c', unsubscribe: { code: 2500, reason: 'insufficient state' } })).toBe(
      '{"push":{"channel":"c","unsubscribe":{"code":2500,"reason":"insufficient state"}}}',
    );
    expect(encodePush({ message: { data: 'hi\nthere' } })).toBe('{"push":{"message":{"data":"hi\\nthere"}}}');
    expect(SERVER_PING).toBe('{}');
    expect(encodeReply({})).toBe('{}');
    expect(joinMessages(['{"id":1,"publish":{}}', SERVER_PING])).toBe('{"id":1,"publish":{}}\n{}');
  });
});

describe('isValidJsonText', () => {
  it('accepts JSON and rejects non-JSON and too-deep JSON', () => {
    expect(isValidJsonText('{"a":[1,2]}')).toBe(true);
    expect(isValidJsonText('0')).toBe(true);
    expect(isValidJsonText('')).toBe(false);
    expect(isValidJsonText('{a:1}')).toBe(false);
    expect(isValidJsonText('['.repeat(65) + ']'.repeat(65))).toBe(false);
  });
});
