/**
 * The two wire formats of the client protocol, as the gateway sees them: how a frame becomes
 * commands, how an outgoing message becomes bytes, and what kind of WebSocket frame carries
 * them. Everything else (handlers, auth, recovery, limits, flow control) is shared; the
 * messages themselves are always written by the JSON encoders of ./codec.ts and transcoded
 * for Protobuf (./protobuf/encode.ts).
 *
 * - JSON: text frames; messages joined with '\n' (PROTOCOL.md A.2).
 * - Protobuf: binary frames; each message varint-length-delimited, concatenated
 *   (centrifuge-js `ProtobufCodec`); chosen with `?cf_protocol=protobuf` or the
 *   `centrifuge-protobuf` subprotocol (CONTRACT.md).
 */
import { SERVER_PING, decodeFrame, type DecodedCommand } from './codec.js';
import { decodeProtobufFrame } from './protobuf/decode.js';
import { PROTOBUF_PING, protobufMessage } from './protobuf/encode.js';

export type ProtocolName = 'json' | 'protobuf';

export interface WireFormat {
  readonly name: ProtocolName;
  /** Its frames are binary WebSocket messages; a frame of the other kind is a protocol error. */
  readonly binary: boolean;
  /** The commands of a frame, or why the frame as a whole is unreadable. */
  decode(frame: Buffer): DecodedCommand[] | string;
  /** One outgoing message: a reply (a string), or a push frame the hub shares (a Buffer). */
  encode(message: string | Buffer): string | Buffer | Uint8Array;
  /** The server's ping. */
  readonly ping: string | Uint8Array;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export const JSON_FORMAT: WireFormat = {
  name: 'json',
  binary: false,
  decode(frame) {
    let text: string;
    try {
      text = utf8.decode(frame);
    } catch {
      return 'frame is not valid UTF-8';
    }
    return decodeFrame(text);
  },
  encode: (message) => message,
  ping: SERVER_PING,
};

export const PROTOBUF_FORMAT: WireFormat = {
  name: 'protobuf',
  binary: true,
  decode: (frame) => decodeProtobufFrame(frame),
  encode: (message) => protobufMessage(message),
  ping: PROTOBUF_PING,
};
