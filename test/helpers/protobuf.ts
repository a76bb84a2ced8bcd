/**
 * Protobuf test clients: the official centrifuge-js Protobuf build (the same SDK, speaking
 * client.proto in binary frames, as centrifuge-swift/java/dart do), and a raw socket that
 * sends hand-made binary frames and decodes what comes back, for hostile input.
 *
 * The raw client decodes replies with the gateway's own schema; what the SDK accepts is the
 * interoperability proof, the raw client only reads codes and fields.
 */
import { Centrifuge } from 'centrifuge/build/protobuf';
import WebSocket from 'ws';
import { TEST_CLIENT_OPTIONS } from './client.js';
import { CommandType, ReplyType } from '../../src/protocol/protobuf/types.js';
import type { CloseEvent } from './raw.js';
import { waitFor } from './wait.js';

export function newProtobufClient(
  url: string,
  token: string,
  opts: Record<string, unknown> = {},
): Centrifuge {
  return new Centrifuge(url, { token, ...TEST_CLIENT_OPTIONS, ...opts });
}

export const text = new TextEncoder();
const utf8 = new TextDecoder();

/** JSON value → the bytes a Protobuf client sends as `data`. */
export function jsonBytes(value: unknown): Uint8Array {
  return text.encode(JSON.stringify(value));
}

/** `data` bytes a Protobuf client got → their JSON value. */
export function fromJsonBytes(data: unknown): unknown {
  return JSON.parse(utf8.decode(data as Uint8Array));
}

/** One length-delimited Command, from its JSON-like shape (bytes fields as Uint8Array). */
export function command(shape: Record<string, unknown>): Buffer {
  return Buffer.from(CommandType.encodeDelimited(CommandType.fromObject(shape)).finish());
}

export type Reply = Record<string, unknown> & { id?: number; error?: { code: number; message: string } };

export class RawProtobufClient {
  readonly replies: Reply[] = [];
  readonly textFrames: string[] = [];
  closeEvent: CloseEvent | undefined;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return void this.textFrames.push(String(data));
      const reader = { buf: data as Buffer, at: 0 };
      while (reader.at < reader.buf.length) this.replies.push(readReply(reader));
    });
    ws.on('close', (code, reason) => (this.closeEvent = { code, reason: reason.toString('utf8') }));
    ws.on('error', () => {});
  }

  static async open(url: string, protocols: string[] = ['centrifuge-protobuf']): Promise<RawProtobufClient> {
    const ws = new WebSocket(url, protocols);
    const client = new RawProtobufClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  send(data: Buffer | string, binary = typeof data !== 'string'): void {
    this.ws.send(data, { binary });
  }

  /** Sends one command with the next id and waits for its reply. */
  async call(method: string, body: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.nextId++;
    this.send(command({ id, [method]: body }));
    return this.reply(id);
  }

  reply(id: number): Promise<Reply> {
    return waitFor(
      () => `reply ${id} (close: ${JSON.stringify(this.closeEvent)})`,
      () => this.replies.find((r) => r.id === id),
      { timeoutMs: 5000 },
    );
  }

  async connect(token: string): Promise<Reply> {
    const reply = await this.call('connect', { token });
    if (!reply.connect) throw new Error(`connect failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  closed(): Promise<CloseEvent> {
    return waitFor('socket close', () => this.closeEvent, { timeoutMs: 5000 });
  }

  close(): void {
    this.ws.close();
  }
}

function readReply(reader: { buf: Buffer; at: number }): Reply {
  let length = 0;
  let shift = 0;
  for (;;) {
    const b = reader.buf[reader.at++]!;
    length |= (b & 0x7f) << shift;
    shift += 7;
    if (b < 0x80) break;
  }
  const body = reader.buf.subarray(reader.at, reader.at + length);
  reader.at += length;
  return ReplyType.toObject(ReplyType.decode(body), { longs: Number }) as Reply;
}

/** A protobuf varint. */
export function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field `fieldNo` holding `bytes`, written by hand (for what protobufjs will not write). */
export function lengthDelimited(fieldNo: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint((fieldNo << 3) | 2), varint(bytes.length), bytes]);
}

/** A Command body (no length prefix). */
export function commandBody(shape: Record<string, unknown>): Buffer {
  return Buffer.from(CommandType.encode(CommandType.fromObject(shape)).finish());
}

/** A message body with its length prefix, as it goes into a frame. */
export function delimited(body: Buffer): Buffer {
  return Buffer.concat([varint(body.length), body]);
}
