/**
 * The message types of Centrifugal's client.proto, loaded once from the generated descriptor
 * (./schema.ts, `npm run proto:generate`). protobufjs builds each type's encoder and decoder
 * on first use; only its light build is loaded at run time, without the .proto parser.
 *
 * Field names are the proto's snake_case ones, which are also the JSON protocol's keys: the
 * Protobuf codec maps between the two shapes by name (./decode.ts, ./encode.ts).
 */
import protobuf from 'protobufjs/light.js';
import { clientProto } from './schema.js';

const root = protobuf.Root.fromJSON(clientProto as protobuf.INamespace).resolveAll();

function messageType(name: string): protobuf.Type {
  return root.lookupType(`centrifugal.centrifuge.protocol.${name}`);
}

export const CommandType = messageType('Command');
export const ReplyType = messageType('Reply');

export type { Field, MapField, Reader as WireReader, Type } from 'protobufjs/light.js';
export const { Reader, Type: TypeClass, Field: FieldClass, MapField: MapFieldClass, types } = protobuf;
