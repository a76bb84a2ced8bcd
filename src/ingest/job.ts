/**
 * The ingest job: what a gateway puts on a partition queue and a persist worker takes off.
 * Kept short on purpose (it is JSON in Redis): `g` is the gateway to acknowledge, `p` the
 * publications in the order they must be numbered.
 */
import { z } from 'zod';
import type { NewPublication } from '../db/repos/publications.js';

export interface IngestJob {
  g: string;
  p: NewPublication[];
}

const optionalText = z.string().optional();

const publicationSchema = z.object({
  id: z.uuid(),
  channel: z.string().min(1),
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
