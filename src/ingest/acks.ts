/**
 * Acks: how a persist worker tells a gateway what became of the publications it queued.
 * One message per gateway per job on the gateway's own ack topic (src/bus/keys.ts `acks`):
 * a JSON array of [id, offset, epoch] for each committed publication, or
 * [id, 0, "", errorCode] for one that will never be committed.
 */

export type Ack = [id: string, offset: number, epoch: string] | [id: string, offset: 0, epoch: '', code: number];

export function encodeAcks(acks: Ack[]): string {
  return JSON.stringify(acks);
}

export function decodeAcks(text: string): Ack[] {
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? (value.filter((a) => Array.isArray(a) && typeof a[0] === 'string') as Ack[]) : [];
  } catch {
    return [];
  }
}
