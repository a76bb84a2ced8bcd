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
 * - A round takes up to BATCH rows in id order and commits them through the same numbering
 *   as socket and API publishes (so they interleave correctly, under the channel locks),
 *   each under an id derived from its row (`relayId`). Then the fan-out and the commit hook
 *   (`publication` webhooks), and only then are the rows deleted. A relay that dies before
 *   the delete leaves the rows for the next one, whose commit finds them stored under the
 *   same ids (nothing stored twice) and fans them out and hooks them again: live delivery
 *   and webhooks are at least once, as for ingest jobs. The idempotency key given to
 *   `tidings.publish` deduplicates as an API key does.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import type { Db } from '../db/client.js';
import { persistBatch } from '../db/repos/publications.js';
import type { NewPublication } from '../protocol/publication.js';
import { deliverCommitted, type CommitPath } from './fanout.js';
import { isTransient } from './retry.js';

const RELAY_LOCK_KEY = 0x74696f62; // "tiob"
const CHANNEL = 'tidings_outbox';
const BATCH = 1000;
const POLL_MS = 1000;

export interface RelayOptions extends CommitPath {
  databaseUrl: string;
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
  /** Microseconds since the epoch, as text: with the id, unique for the life of the database. */
  created_us: string;
};

/**
 * The publication id of an outbox row, the same on every attempt. The row's creation time is
 * in it because a sequence can be reset (a restored dump): an id alone could then name an old
 * publication, and its new one would be taken for a re-run and never stored.
 */
export function relayId(row: Pick<OutboxRow, 'id' | 'created_us'>): string {
  const hex = createHash('sha256').update(`tidings.outbox\n${row.id}\n${row.created_us}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** One round: commit up to BATCH outbox rows, fan them out, run the hook, then delete them. Returns how many it took. */
async function relayRound(opts: RelayOptions): Promise<number> {
  const { database } = opts;
  // `outbox.id`, not `id`: a bare name is the output column, the id as text, which orders
  // '10' before '9' and would number a channel's rows out of their order.
  const result = await database.db.execute<OutboxRow>(
    sql`select id::text, channel, data, idempotency_key, (extract(epoch from created_at) * 1000000)::bigint::text as created_us
          from tidings.outbox order by outbox.id limit ${BATCH}`,
  );
  if (result.rows.length === 0) return 0;
  const batch: NewPublication[] = result.rows.map((r) => ({
    id: relayId(r),
    channel: r.channel,
    data: r.data,
    idempotencyKey: r.idempotency_key ?? undefined,
  }));
  // A publication PostgreSQL refuses for what it is fails alone (persistBatch's savepoints)
  // and is deleted with the rest: nothing could ever store it.
  const outcome = await database.db.transaction((tx) => persistBatch(tx as unknown as Db, batch, undefined, (err) => !isTransient(err)));
  if (outcome.rejected.length > 0) opts.log.error({ rejected: outcome.rejected.length }, 'tidings.publish rows PostgreSQL refused were dropped');
  if (outcome.stored.length > 0) await deliverCommitted(opts, [{ outcome, gatewayId: undefined }]);
  await database.db.execute(sql`delete from tidings.outbox where id = any(${sql.param(result.rows.map((r) => r.id))}::bigint[])`);
  return result.rows.length;
}
