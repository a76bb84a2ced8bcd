/**
 * The ingest job: what a gateway puts on a partition queue and a persist worker takes off.
 * Kept short on purpose (it is JSON in Redis): `g` is the gateway to acknowledge, `p` the
 * publications in the order they must be numbered, `s` the job's number among the jobs
 * this gateway added to this partition (1, 2, 3, …; PostgreSQL commits them in that order,
 * src/db/repos/streams.ts), and `x` set when an earlier add of the gateway failed, so the
 * worker need not wait for the jobs it lost.
 */
import { z } from 'zod';
import { isValidChannelName } from '../channels/names.js';
import type { NewPublication } from '../protocol/publication.js';
import { MAX_IDEMPOTENCY_KEY_BYTES, MAX_USER_BYTES, isStorableText } from '../protocol/text.js';

export interface IngestJob extends Sequenced {
  g: string;
  p: NewPublication[];
}

/** A job's place in its gateway's stream; absent in jobs from older gateways. */
export interface Sequenced {
  s?: number | undefined;
  x?: boolean | undefined;
}

const sequence = { s: z.number().int().positive().optional(), x: z.boolean().optional() };

/**
 * The stream a job belongs to: one gateway process's jobs on one partition queue. The key of
 * its row in `ingest_streams`, for the worker that commits the job and for the gateway that
 * decides it at its timeout (./decide.ts) alike.
 */
export function jobStream(gatewayId: string, queueName: string): string {
  return `${gatewayId}/${queueName}`;
}

const optionalText = z.string().optional();

const publicationSchema = z.object({
  id: z.uuid(),
  channel: z.string(),
  data: z.string(),
  user: optionalText,
  client: optionalText,
  connInfo: optionalText,
  chanInfo: optionalText,
  tags: optionalText,
  idempotencyKey: optionalText,
});

const jobSchema = z.object({ g: z.string().min(1), p: z.array(publicationSchema).min(1), ...sequence });

/**
 * Whether PostgreSQL can store the publication as it is. The gateway and the API check
 * every field at the edge; this is the worker's own check of what it reads back from Redis,
 * so that a bad publication is refused alone, before its batch's transaction.
 */
export function isStorable(pub: NewPublication): boolean {
  const json = [pub.data, pub.connInfo, pub.chanInfo, pub.tags];
  return (
    isValidChannelName(pub.channel) &&
    (pub.user === undefined || isStorableText(pub.user, MAX_USER_BYTES)) &&
    (pub.client === undefined || isStorableText(pub.client, MAX_USER_BYTES)) &&
    (pub.idempotencyKey === undefined || isStorableText(pub.idempotencyKey, MAX_IDEMPOTENCY_KEY_BYTES)) &&
    json.every((text) => text === undefined || !text.includes('\u0000'))
  );
}

/** The publications PostgreSQL can store, in order, and the ids of those it never could (one pass). */
export function splitStorable(pubs: readonly NewPublication[]): { storable: NewPublication[]; refused: string[] } {
  const storable: NewPublication[] = [];
  const refused: string[] = [];
  for (const pub of pubs) {
    if (isStorable(pub)) storable.push(pub);
    else refused.push(pub.id);
  }
  return { storable, refused };
}

/** Validates job data read back from Redis; a job that fails this can never succeed. */
export function parseIngestJob(data: unknown): IngestJob | undefined {
  const result = jobSchema.safeParse(data);
  return result.success ? result.data : undefined;
}

export const INGEST_JOB_NAME = 'publish';

/**
 * The bundle: several partitions' publication batches in one BullMQ job, each still its own
 * job of its own stream (`q` its partition, `s`/`x` its place in this gateway's stream on
 * that partition). A gateway sends one when several partitions owned by one worker have
 * publications to send at once (src/ingest/client.ts): BullMQ's work per job (add, move to
 * active, move to finished) was most of what a job of a few publications cost, and a bundle
 * pays it once. It travels on the queue of one of its partitions; whichever worker takes it
 * commits every part, each in its stream's order, so a stale view of who owns what costs at
 * most a wait, never order.
 */
export interface IngestBundle {
  g: string;
  b: BundlePart[];
}

export interface BundlePart extends Sequenced {
  q: number;
  p: NewPublication[];
}

/** As many as TIDINGS_PARTITIONS can be. */
const MAX_PARTITION_INDEX = 1023;

const bundleSchema = z.object({
  g: z.string().min(1),
  b: z
    .array(z.object({ q: z.number().int().min(0).max(MAX_PARTITION_INDEX), p: z.array(publicationSchema).min(1), ...sequence }))
    .min(1)
    .max(MAX_PARTITION_INDEX + 1),
});

export function parseIngestBundle(data: unknown): IngestBundle | undefined {
  const result = bundleSchema.safeParse(data);
  return result.success ? result.data : undefined;
}

export const INGEST_BUNDLE_JOB_NAME = 'publish-bundle';

/**
 * The second job kind: clear a channel's stored publications (API `history_remove`). It
 * travels on the channel's partition queue like a publish, so it is ordered with the
 * publications around it, and is acknowledged like one: `i` is the id the gateway waits
 * on, and the ack carries the channel's (unchanged) top offset and epoch.
 */
export interface HistoryRemoveJob extends Sequenced {
  g: string;
  i: string;
  channel: string;
}

const historyRemoveSchema = z.object({ g: z.string().min(1), i: z.uuid(), channel: z.string().min(1), ...sequence });

export function parseHistoryRemoveJob(data: unknown): HistoryRemoveJob | undefined {
  const result = historyRemoveSchema.safeParse(data);
  return result.success ? result.data : undefined;
}

export const HISTORY_REMOVE_JOB_NAME = 'history_remove';
