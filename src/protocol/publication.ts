/**
 * A publication on its way through the house: what a gateway hands to the ingest queue
 * (`NewPublication`, JSON fields already encoded), and the JSON text a client receives
 * inside `pub`. Both the worker (live fanout, Redis history cache) and the history reader
 * (PostgreSQL fallback) encode through this, so a publication has the same bytes whichever
 * way it reaches a client.
 */
import { encodePublicationJson } from './codec.js';

/** A publication as the gateway hands it to the queue: JSON fields already encoded. */
export interface NewPublication {
  id: string;
  channel: string;
  data: string;
  user?: string | undefined;
  client?: string | undefined;
  connInfo?: string | undefined;
  chanInfo?: string | undefined;
  tags?: string | undefined;
  idempotencyKey?: string | undefined;
}

export interface PublicationFields {
  offset: number;
  data: string;
  user?: string | null | undefined;
  client?: string | null | undefined;
  connInfo?: string | null | undefined;
  chanInfo?: string | null | undefined;
  tags?: string | null | undefined;
}

/** ClientInfo of the publisher; absent for API publishes, which have no client. */
export function clientInfoJson(p: PublicationFields): string | undefined {
  if (!p.client) return undefined;
  let out = `{"user":${JSON.stringify(p.user ?? '')},"client":${JSON.stringify(p.client)}`;
  if (p.connInfo) out += `,"conn_info":${p.connInfo}`;
  if (p.chanInfo) out += `,"chan_info":${p.chanInfo}`;
  return `${out}}`;
}

/**
 * The first publication of a stream carries the epoch, so a client that subscribed before
 * the channel existed (epoch "") learns it, as the Go server does.
 */
export function publicationJson(p: PublicationFields, epoch: string): string {
  return encodePublicationJson({
    offset: p.offset,
    dataJson: p.data,
    infoJson: clientInfoJson(p),
    tagsJson: p.tags ?? undefined,
    epoch: p.offset === 1 ? epoch : undefined,
  });
}
