/**
 * The relay of `tidings.publish` (issue 15, migrations/0008): publications apps make in their
 * own SQL transactions wait in `tidings.outbox`; the relay numbers them and delivers them
 * like any other publication.
 *
 * - One relay at a time: the worker whose listening session holds an advisory lock. Its
 *   session ending (the worker died) frees the lock, and another worker's next poll takes it.
 *   A single relay keeps each channel's outbox rows in their order.
 * - Woken by NOTIFY (sent at the app's commit), with a poll every second as the backstop
 *   for a lost connection or a missed notification.
 * - A round takes up to BATCH rows in id order and, in one transaction, commits them
 *   through the same numbering as socket and API publishes (so they interleave correctly,
 *   under the channel locks) and deletes them: a crash leaves them all in the outbox or none.
 *   The idempotency key given to `tidings.publish` deduplicates as an API key does.
 * - Then the fan-out. A crash between commit and fan-out delays delivery (gateways' position
 *   check, and recovery, find the committed publications), it loses nothing.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import type { Keys } from '../bus/keys.js';
import type { ScriptedRedis } from '../bus/scripts.js';
import type { Database, Db } from '../db/client.js';
import { persistBatch } from '../db/repos/publications.js';
import type { Logger } from '../observability/logger.js';
import type { NewPublication } from '../protocol/publication.js';
import { fanoutCommitted, type CachePolicy } from './fanout.js';
import { isTransient } from './retry.js';

const RELAY_LOCK_KEY = 0x74696f62; // "tiob"
const CHANNEL = 'tidings_outbox';
const BATCH = 1000;
const POLL_MS = 1000;

export interface RelayOptions {
  databaseUrl: string;
  database: Database;
  redis: ScriptedRedis;
  keys: Keys;
  cache: CachePolicy;
  log: Logger;
}

export interface Relay {
  close(): Promise<void>;
}

export function startRelay(opts: RelayOptions): Relay {
  return new OutboxRelay(opts);
}

class OutboxRelay implements Relay {
  private closed = false;
  private listener: pg.Client | undefined;
  private leading = false;
  private running: Promise<void> | undefined;
  private again = false;
  /** A poll still waiting on the database: the next tick skips rather than queue a second query on one client. */
  private polling = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: RelayOptions) {
    this.timer = setInterval(() => void this.poll(), POLL_MS);
    this.timer.unref();
    void this.poll();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    await this.running;
    await this.listener?.end().catch(() => {});
  }

  /** Runs rounds until the outbox is empty; a wake-up during a round asks for one more. */
  private wake(): void {
    if (this.closed || !this.leading) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        while (!this.closed && (await relayRound(this.opts)) === BATCH);
      } while (this.again && !this.closed);
    })()
      .catch((err: unknown) => this.opts.log.warn({ err }, 'outbox relay round failed; the next poll tries again'))
      .finally(() => (this.running = undefined));
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.databaseUrl, application_name: 'tidings-relay' });
    client.on('error', (err) => this.opts.log.warn({ err }, 'outbox relay connection lost'));
    client.on('notification', () => this.wake());
    client.on('end', () => {
      if (this.listener !== client) return;
      this.listener = undefined;
      this.leading = false;
    });
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    this.listener = client;
  }

  /** Every poll: (re)connect, try for the lock if not holding it, and run a round. */
  private async poll(): Promise<void> {
    if (this.closed || this.polling) return;
    this.polling = true;
    try {
      if (!this.listener) await this.connect();
      if (!this.leading) {
        const { rows } = await this.listener!.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [RELAY_LOCK_KEY]);
        this.leading = rows[0]?.ok === true;
        if (this.leading) this.opts.log.info('outbox relay: this worker relays tidings.publish');
      }
    } catch (err) {
      this.opts.log.warn({ err }, 'outbox relay could not listen; retrying');
      await this.listener?.end().catch(() => {});
      this.listener = undefined;
      this.leading = false;
    } finally {
      this.polling = false;
    }
    this.wake();
  }
}

type OutboxRow = {
  id: string;
  channel: string;
  data: string;
  idempotency_key: string | null;
};

/** One round: commit and delete up to BATCH outbox rows, then fan them out. Returns how many it took. */
async function relayRound(opts: RelayOptions): Promise<number> {
  const { database, redis, keys, cache } = opts;
  let taken = 0;
  const outcome = await database.db.transaction(async (tx) => {
    const client = tx as unknown as Db;
    const result = await client.execute<OutboxRow>(
      sql`select id::text, channel, data, idempotency_key from tidings.outbox order by id limit ${BATCH} for update`,
    );
    taken = result.rows.length;
    if (taken === 0) return undefined;
    const batch: NewPublication[] = result.rows.map((r) => ({
      id: randomUUID(),
      channel: r.channel,
      data: r.data,
      idempotencyKey: r.idempotency_key ?? undefined,
    }));
    // A publication PostgreSQL refuses for what it is fails alone (persistBatch's savepoints)
    // and leaves the outbox with the rest: nothing could ever store it.
    const committed = await persistBatch(client, batch, undefined, (err) => !isTransient(err));
    await client.execute(sql`delete from tidings.outbox where id = any(${sql.param(result.rows.map((r) => r.id))}::bigint[])`);
    if (committed.rejected.length > 0) opts.log.error({ rejected: committed.rejected.length }, 'tidings.publish rows PostgreSQL refused were dropped');
    return committed;
  });
  if (outcome && outcome.stored.length > 0) await fanoutCommitted(redis, keys, cache, [{ outcome, gatewayId: undefined }]);
  return taken;
}
