/**
 * The Protobuf codec on its own: which check refuses each malformed frame, that commands
 * come out in the JSON protocol's shape (so the JSON rules apply), and that transcoded
 * replies carry `bytes` fields as the exact JSON text, once per shared push frame.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodePublicationJson,
  encodePushOfPublication,
  type DecodedCommand,
} from '../../src/protocol/codec.js';
import { elementsOf, membersOf } from '../../src/protocol/json-spans.js';
import { decodeProtobufFrame } from '../../src/protocol/protobuf/decode.js';
import { protobufMessage } from '../../src/protocol/protobuf/encode.js';
import { ReplyType } from '../../src/protocol/protobuf/types.js';
import { command, commandBody, delimited, jsonBytes, lengthDelimited } from '../helpers/protobuf.js';

function reasons(frame: Buffer): string[] {
  return decodeProtobufFrame(frame).map((d) => (d.ok ? (d.refusal ?? 'ok') : d.reason));
}

function decodeReply(bytes: Uint8Array): Record<string, unknown> {
  return ReplyType.toObject(ReplyType.decodeDelimited(bytes), { longs: Number }) as Record<string, unknown>;
}

describe('Protobuf decoding', () => {
  it('commands come out in the JSON shape: snake_case keys, data parsed, 64-bit offsets as numbers', () => {
    const frame = Buffer.concat([
      command({ id: 1, connect: { token: 't', subs: { a: { recover: true, offset: 5, epoch: 'e' } } } }),
      command({ id: 2, presence_stats: { channel: 'c' } }),
      command({ id: 3, publish: { channel: 'c', data: jsonBytes({ n: [1, 'x'] }) } }),
      command({
        id: 4,
        history: { channel: 'c', limit: -1, since: { offset: 9, epoch: 'e' }, reverse: true },
      }),
      command({}),
    ]);
    const decoded = decodeProtobufFrame(frame) as Extract<DecodedCommand, { ok: true }>[];
    expect(decoded.map((d) => d.command)).toEqual([
      { id: 1, connect: { token: 't', subs: { a: { recover: true, offset: 5, epoch: 'e' } } } },
      { id: 2, presence_stats: { channel: 'c' } },
      { id: 3, publish: { channel: 'c', data: { n: [1, 'x'] } } },
      { id: 4, history: { channel: 'c', limit: -1, since: { offset: 9, epoch: 'e' }, reverse: true } },
      {},
    ]);
    expect(decoded.map((d) => d.method)).toEqual(['connect', 'presence_stats', 'publish', 'history', null]);
  });

  it('a payload that is not UTF-8 JSON text is kept, with a refusal (answered 107); empty data is absent', () => {
    expect(reasons(command({ id: 1, publish: { channel: 'c', data: Buffer.from([0xff]) } }))).toEqual([
      'data is not UTF-8 JSON text',
    ]);
    expect(reasons(command({ id: 1, rpc: { method: 'm', data: Buffer.from('{"a":') } }))).toEqual([
      'data is not JSON text',
    ]);
    expect(
      reasons(
        command({ id: 1, publish: { channel: 'c', data: Buffer.from('['.repeat(70) + ']'.repeat(70)) } }),
      ),
    ).toEqual(['data nests deeper than 64']);
    expect(reasons(command({ id: 1, publish: { channel: 'c', data: Buffer.alloc(0) } }))).toEqual([
      'publish.data is required',
    ]);
  });

  const malformed: [string, Buffer, string][] = [
    ['a truncated length prefix', Buffer.from([0x80]), 'truncated length prefix'],
    ['a length past the end', Buffer.from([0x05, 0x08, 0x01]), 'length prefix past the end of the frame'],
    [
      'a huge length prefix',
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x08]),
      'length prefix past the end of the frame',
    ],
    ['a truncated varint', Buffer.from([0x02, 0x08, 0x80]), 'truncated Command'],
    ['a length-delimited id', Buffer.from([0x03, 0x0a, 0x01, 0x41]), 'id has wire type 2, not 0'],
    ['a varint where a message goes', Buffer.from([0x02, 0x20, 0x01]), 'connect has wire type 0, not 2'],
    [
      'a fixed32 string',
      delimited(Buffer.concat([commandBody({ id: 1 }), lengthDelimited(5, Buffer.from([0x0d, 1, 2, 3, 4]))])),
      'channel has wire type 5, not 2',
    ],
    ['a group', Buffer.from([0x02, 0x1b, 0x1c]), 'wire type 3 (field 3)'],
    ['wire type 6', Buffer.from([0x02, 0xfe, 0x01]), 'wire type 6 (field 31)'],
    ['field number 0', Buffer.from([0x02, 0x00, 0x01]), 'field number 0'],
    [
      'a string that is not UTF-8',
      delimited(
        Buffer.concat([
          commandBody({ id: 1 }),
          lengthDelimited(4, lengthDelimited(1, Buffer.from([0xc3, 0x28]))),
        ]),
      ),
      'token is not UTF-8',
    ],
    ['a sub-message past its parent', Buffer.from([0x04, 0x08, 0x01, 0x22, 0x09]), 'truncated Command'],
    [
      'a map entry with a wrong key type',
      delimited(
        Buffer.concat([commandBody({ id: 1 }), lengthDelimited(4, Buffer.from([0x1a, 0x02, 0x08, 0x01]))]),
      ),
      'key has wire type 0, not 2',
    ],
  ];
  for (const [name, frame, reason] of malformed) {
    it(`${name}: "${reason}"`, () => {
      expect(reasons(frame).at(-1)).toBe(reason);
    });
  }

  it('messages nested deeper than 64 are refused before protobufjs recurses into them', () => {
    const deep = (depth: number): Buffer => {
      let node = lengthDelimited(2, Buffer.from('k'));
      for (let i = 0; i < depth; i++) node = lengthDelimited(6, node);
      const subscribe = Buffer.concat([lengthDelimited(1, Buffer.from('x')), lengthDelimited(13, node)]);
      return delimited(Buffer.concat([commandBody({ id: 2 }), lengthDelimited(5, subscribe)]));
    };
    expect(reasons(deep(60))).toEqual(['ok']);
    expect(reasons(deep(70))).toEqual(['messages nested deeper than 64']);
    expect(reasons(deep(20_000))).toEqual(['messages nested deeper than 64']);
  });

  it('unknown fields of a valid wire type are skipped', () => {
    const body = Buffer.concat([
      commandBody({ id: 7, presence: { channel: 'c' } }),
      Buffer.from([0x98, 0x06, 0x07, 0xa2, 0x06, 0x01, 0x68]),
    ]);
    expect(decodeProtobufFrame(delimited(body))).toEqual([
      { ok: true, command: { id: 7, presence: { channel: 'c' } }, method: 'presence' },
    ]);
  });

  it('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const out = decodeProtobufFrame(Buffer.from(bytes));
        expect(Array.isArray(out)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('Protobuf encoding (transcoded from the JSON encoders)', () => {
  it('bytes fields carry the JSON text exactly, nested ones too; null is absent', () => {
    const pub = encodePublicationJson({
      offset: 12345678901,
      dataJson: '{"big":12345678901234567890,"f":1.0, "s":"a\\"b"}',
      infoJson: '{"user":"u","client":"c","conn_info":{"k": [1, 2]}}',
      tagsJson: '{"t":"v"}',
      epoch: 'ep',
    });
    const reply = decodeReply(protobufMessage(encodePushOfPublication('ch', pub)));
    const got = (reply.push as { pub: Record<string, unknown> }).pub;
    expect(Buffer.from(got.data as Uint8Array).toString()).toBe(
      '{"big":12345678901234567890,"f":1.0, "s":"a\\"b"}',
    );
    expect(Buffer.from((got.info as { conn_info: Uint8Array }).conn_info).toString()).toBe('{"k": [1, 2]}');
    expect(got).toMatchObject({
      offset: 12345678901,
      tags: { t: 'v' },
      epoch: 'ep',
      info: { user: 'u', client: 'c' },
    });
    expect(decodeReply(protobufMessage('{"id":3,"rpc":{"data":null}}'))).toEqual({ id: 3, rpc: {} });
  });

  it('keys the proto does not have are left out; the ping is one zero byte', () => {
    expect(decodeReply(protobufMessage('{"id":1,"publish":{},"tidings_only":{"x":1}}'))).toEqual({
      id: 1,
      publish: {},
    });
    expect([...protobufMessage('{}')]).toEqual([0]);
  });

  it('a shared push frame is transcoded once, then the same bytes are handed out', () => {
    const frame = Buffer.from(
      encodePushOfPublication('ch', encodePublicationJson({ offset: 1, dataJson: '1' })),
    );
    const first = protobufMessage(frame);
    expect(protobufMessage(frame)).toBe(first);
    expect(protobufMessage(Buffer.from(frame))).not.toBe(first);
  });

  it('json spans: members and elements with whitespace, escapes and nesting', () => {
    const text = ' { "a" : [1, {"b":"]}"}, "c\\"" ] , "d":null,"e":{} } ';
    const members = membersOf(text, 0).map((m) => [m.key, text.slice(m.start, m.end)]);
    expect(members).toEqual([
      ['a', '[1, {"b":"]}"}, "c\\"" ]'],
      ['d', 'null'],
      ['e', '{}'],
    ]);
    const array = members[0]![1]!;
    expect(elementsOf(array, 0).map(([s, e]) => array.slice(s, e))).toEqual(['1', '{"b":"]}"}', '"c\\""']);
    expect(elementsOf('[]', 0)).toEqual([]);
  });
});
