/**
 * The ingest job: what a gateway puts on a partition queue and a persist worker takes off.
 * Kept short on purpose (it is JSON in Redis): `g` is the gateway to acknowledge, `p` the
 * publications in the order they must be numbered.
 */
import { z } from 'zod';
import { isValidChannelName } from '../channels/names.js';
import type { NewPublication } from '../db/repos/publications.js';

export interface IngestJob {
  g: string;
  p: NewPublication[];
}

const optionalText = z.string().optional();

const publicationSchema = z.object({
  id: z.uuid(),
  channel: z.string().refine(isValidChannelName),
  data: z.string(),
  user: optionalText,
  client: optionalText,
  connInfo: optionalText,
  chanInfo: optionalText,
  tags: optionalText,
  idempotencyKey: optionalText,
});

const jobSchema = z.object({ g: z.string().min(1), p: z.array(publicationSchema).min(1) });

/** Validates job data read back from Redis; a job that fails this can never succeed. */
export function parseIngestJob(data: unknown): IngestJob | undefined {
  const result = jobSchema.safeParse(data);
  return result.success ? result.data : undefined;
}

export const INGEST_JOB_NAME = 'publish';

/**
 * The second job kind: clear a channel's stored publications (API `history_remove`). It
 * travels on the channel's partition queue like a publish, so it is ordered with the
 * publications around it, and is acknowledged like one: `i` is the id the gateway waits
 * on, and the ack carries the channel's (unchanged) top offset and epoch.
 */
export interface HistoryRemoveJob {
  g: string;
  i: string;
  channel: string;
}

const historyRemoveSchema = z.object({ g: z.string().min(1), i: z.uuid(), channel: z.string().min(1) });

export function parseHistoryRemoveJob(data: unknown): HistoryRemoveJob | undefined {
  const result = historyRemoveSchema.safeParse(data);
  return result.success ? result.data : undefined;
}

export const HISTORY_REMOVE_JOB_NAME = 'history_remove';
