import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EMPTY_RESULT,
  MAX_NESTING_DEPTH,
  SERVER_PING,
  decodeFrame,
  encodeConnectResult,
  encodeErrorReply,
  encodeHistoryResult,
  encodeJoinLeavePush,
  encodePresenceStatsResult,
  encodePublicationJson,
  encodePushOfPublication,
  encodeRefreshResult,
  encodeResultReply,
  encodeSubRefreshResult,
  encodeSubscribePush,
  encodeSubscribeResult,
  encodeSubscribeResults,
  encodeUnsubscribePush,
  nestingExceeds,
  type EncodedPublication,
} from '../../src/protocol/codec.js';
import { Errors, Unsubscribe } from '../../src/protocol/codes.js';
import { clientInfoJson } from '../../src/protocol/publication.js';

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

/** The publication push as the hub builds it: the publication encoded once, then wrapped. */
function publicationPush(channel: string, pub: EncodedPublication): string {
  return encodePushOfPublication(channel, encodePublicationJson(pub));
}

describe('encodePushOfPublication / encodePublicationJson', () => {
  const infoJson = clientInfoJson({
    offset: 0,
    data: '',
    user: '42',
    client: 'c1',
    connInfo: '{"name":"Ann"}',
  });

  it('splices pre-encoded JSON into the exact envelope', () => {
    const text = publicationPush('chat:1', {
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
    const text = publicationPush('we"ird\nchannel', {
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
        const text = publicationPush(channel, { offset, dataJson: JSON.stringify(data) });
        expect(text).not.toContain('\n');
        const parsed = JSON.parse(text);
        expect(parsed.push.channel).toBe(channel);
        expect(parsed.push.pub.data).toEqual(JSON.parse(JSON.stringify(data)));
      }),
    );
  });
});

describe('replies', () => {
  it('wraps a result in its command id and method, an empty one included', () => {
    expect(encodeResultReply(3, 'publish', EMPTY_RESULT)).toBe('{"id":3,"publish":{}}');
    expect(encodeResultReply(4, 'presence', '{"presence":{}}')).toBe('{"id":4,"presence":{"presence":{}}}');
  });

  it('writes an error with its code and fixed message, and temporary only when set', () => {
    expect(encodeErrorReply(5, Errors.unknownChannel)).toBe(
      '{"id":5,"error":{"code":102,"message":"unknown channel"}}',
    );
    expect(encodeErrorReply(6, Errors.internal)).toBe(
      '{"id":6,"error":{"code":100,"message":"internal server error","temporary":true}}',
    );
    for (const error of Object.values(Errors))
      expect(JSON.parse(encodeErrorReply(1, error))).toEqual({ id: 1, error });
  });

  it('writes the connect result: identity, then expiry, pings and server-side subs when there are some', () => {
    expect(encodeConnectResult({ client: 'c1', version: '1.0.0' })).toBe('{"client":"c1","version":"1.0.0"}');
    expect(
      encodeConnectResult(
        { client: 'c1', version: '1.0.0', ttl: 60, ping: 25 },
        encodeSubscribeResults([['a', '{}']]),
      ),
    ).toBe('{"client":"c1","version":"1.0.0","expires":true,"ttl":60,"ping":25,"pong":true,"subs":{"a":{}}}');
  });

  it('writes refresh and sub_refresh results with the new expiry, or none', () => {
    expect(encodeRefreshResult({ client: 'c1', version: 'v', ttl: 900 })).toBe(
      '{"client":"c1","version":"v","expires":true,"ttl":900}',
    );
    expect(encodeRefreshResult({ client: 'c1', version: 'v' })).toBe('{"client":"c1","version":"v"}');
    expect(encodeSubRefreshResult(30)).toBe('{"expires":true,"ttl":30}');
    expect(encodeSubRefreshResult(undefined)).toBe('{}');
  });

  it('writes a subscribe result, omitting zero fields as Go does', () => {
    const plain = { recoverable: true, epoch: 'e', offset: 0, wasRecovering: false, recovered: false };
    expect(encodeSubscribeResult(plain)).toBe('{"recoverable":true,"positioned":true,"epoch":"e"}');
    expect(encodeSubscribeResult({ ...plain, recoverable: false, epoch: '', offset: 9, ttl: 5 })).toBe(
      '{"recoverable":false,"positioned":true,"expires":true,"ttl":5,"offset":9}',
    );
  });

  it('writes a recovered subscribe result with the client offset and the publications it carries', () => {
    const publications = [4, 5].map((offset) => ({
      json: encodePublicationJson({ offset, dataJson: `{"n":${offset}}` }),
    }));
    const result = {
      recoverable: true,
      epoch: 'e',
      offset: 3,
      wasRecovering: true,
      recovered: true,
      publications,
    };
    expect(encodeSubscribeResult(result)).toBe(
      '{"recoverable":true,"positioned":true,"epoch":"e","offset":3,"was_recovering":true,"recovered":true,' +
        '"publications":[{"data":{"n":4},"offset":4},{"data":{"n":5},"offset":5}]}',
    );
    expect(encodeSubscribeResult({ ...result, publications: [] })).toBe(
      '{"recoverable":true,"positioned":true,"epoch":"e","offset":3,"was_recovering":true,"recovered":true}',
    );
  });

  it('keys server-side subscribe results by channel, escaped', () => {
    expect(
      encodeSubscribeResults([
        ['a', '{"x":1}'],
        ['we"ird', '{}'],
      ]),
    ).toBe('{"a":{"x":1},"we\\"ird":{}}');
  });

  it('writes history with every field, and presence stats with both counts, zeros included', () => {
    const pub = { json: encodePublicationJson({ offset: 4, dataJson: '{"n":4}' }) };
    expect(encodeHistoryResult([pub], 'e', 4)).toBe(
      '{"publications":[{"data":{"n":4},"offset":4}],"epoch":"e","offset":4}',
    );
    expect(encodeHistoryResult([], '', 0)).toBe('{"publications":[],"epoch":"","offset":0}');
    expect(encodePresenceStatsResult({ num_clients: 0, num_users: 0 })).toBe(
      '{"num_clients":0,"num_users":0}',
    );
  });

  it('pings with an empty object', () => {
    expect(SERVER_PING).toBe('{}');
  });
});

describe('pushes', () => {
  it('writes unsubscribe, subscribe, join and leave pushes about a channel', () => {
    expect(encodeUnsubscribePush('c', Unsubscribe.InsufficientState)).toBe(
      '{"push":{"channel":"c","unsubscribe":{"code":2500,"reason":"insufficient state"}}}',
    );
    expect(encodeSubscribePush('c', '{"recoverable":false,"positioned":true}')).toBe(
      '{"push":{"channel":"c","subscribe":{"recoverable":false,"positioned":true}}}',
    );
    const info = '{"user":"u","client":"c1"}';
    expect(encodeJoinLeavePush('c', 'join', info)).toBe(
      '{"push":{"channel":"c","join":{"info":{"user":"u","client":"c1"}}}}',
    );
    expect(encodeJoinLeavePush('c', 'leave', info)).toBe(
      '{"push":{"channel":"c","leave":{"info":{"user":"u","client":"c1"}}}}',
    );
  });

  it('escapes any channel name and writes no raw newline', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (channel) => {
        for (const text of [
          encodeUnsubscribePush(channel, Unsubscribe.ServerUnsubscribe),
          encodeSubscribePush(channel, '{}'),
          encodeJoinLeavePush(channel, 'join', '{}'),
          encodePushOfPublication(channel, '{}'),
        ]) {
          expect(text).not.toContain('\n');
          expect(JSON.parse(text).push.channel).toBe(channel);
        }
      }),
    );
  });
});
