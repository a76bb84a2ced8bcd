/**
 * Delivering one event: a signed JSON POST, retried IN PLACE until the backend answers 2xx,
 * the event has had `maxAttempts` attempts, or it is older than `maxAgeMs`; then it goes to
 * the dead-letter list. Retrying in place (not through BullMQ's delayed retries) is what keeps
 * a user's order: the queue has one active job at a time (./consumer.ts), so no later event of
 * the same user is sent while an earlier one waits for its next attempt.
 *
 * The backend is trusted for nothing but its status code: a POST has a timeout, follows no
 * redirect, and its answer's body is not read.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WaitingError, type Job } from 'bullmq';
import type { WebhookSettings } from '../config/webhooks.js';
import type { Logger } from '../observability/logger.js';
import { metrics } from '../observability/metrics.js';
import type { DeadLetters } from './dead-letters.js';
import { SIGNATURE_HEADER, signBody, type WebhookJob } from './event.js';

export interface DeliveryOptions {
  settings: WebhookSettings;
  deadLetters: DeadLetters;
  log: Logger;
  /** Aborted when the worker stops: an event between attempts is put back at the head of its queue. */
  signal: AbortSignal;
}

/** First wait between attempts; doubled each time up to `backoffMaxMs`, with full jitter. */
const BACKOFF_BASE_MS = 250;

export function backoffMs(attempt: number, maxMs: number): number {
  return Math.round(Math.random() * Math.min(maxMs, BACKOFF_BASE_MS * 2 ** Math.min(attempt - 1, 30)));
}

export function makeDeliveryProcessor(opts: DeliveryOptions) {
  return async (job: Job<WebhookJob>, token?: string): Promise<void> => {
    const { body, at } = job.data;
    for (let attempt = (job.data.attempts ?? 0) + 1; ; attempt++) {
      const failure = await post(opts.settings, body);
      metrics.webhookAttempts.inc({ outcome: failure === undefined ? 'ok' : 'failed' });
      if (failure === undefined) return;
      if (attempt >= opts.settings.maxAttempts || Date.now() - at >= opts.settings.maxAgeMs) {
        return giveUp(opts, job, attempt, failure);
      }
      if (attempt === 1 || attempt % 10 === 0) opts.log.warn({ jobId: job.id, attempt, detail: failure }, 'webhook delivery failed; retrying');
      await sleep(backoffMs(attempt, opts.settings.backoffMaxMs), undefined, { signal: opts.signal }).catch(() => {});
      if (opts.signal.aborted) return putBack(opts.log, job, token, attempt);
    }
  };
}

/** Undefined when the backend took the event (2xx), else why not. */
async function post(settings: WebhookSettings, body: string): Promise<string | undefined> {
  try {
    const response = await fetch(settings.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(body, settings.secret) },
      body,
      signal: AbortSignal.timeout(settings.timeoutMs),
      redirect: 'error',
    });
    await response.body?.cancel().catch(() => {});
    return response.ok ? undefined : `HTTP ${response.status}`;
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return cause ?? (err as Error).message;
  }
}

async function giveUp(opts: DeliveryOptions, job: Job<WebhookJob>, attempts: number, error: string): Promise<void> {
  opts.log.error({ jobId: job.id, attempts, detail: error }, 'webhook event given up on: moved to the dead-letter list');
  await opts.deadLetters.add(job.data.body, attempts, error);
  metrics.webhookDeadLettered.inc();
}

/**
 * Stopping between attempts: hand the job back to the head of its queue (where a stalled job
 * goes too), so the next worker sends it before anything newer of its users.
 */
async function putBack(log: Logger, job: Job<WebhookJob>, token: string | undefined, attempts: number): Promise<never> {
  // The count goes with it, so handing an event around never resets its attempts (a crash does: the age still bounds it).
  await job.updateData({ ...job.data, attempts }).catch(() => {});
  await job.moveToWait(token).catch((err: unknown) => log.warn({ err, jobId: job.id }, 'could not hand the webhook job back; the stall check will'));
  throw new WaitingError();
}
