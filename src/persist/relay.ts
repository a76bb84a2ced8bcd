/**
 * The relay of `tidings.publish` (issue 15, migrations/0008): publications apps make in their
 * own SQL transactions wait in `tidings.outbox`; the relay numbers them and delivers them
 * like any other publication.
 *
 * - Every worker relays the rows of the partitions it owns, through its own group commit
 *   (./group.ts). So a channel has one committer, its partition's owner, whether its
 *   publications come from clients, the API or SQL: its commits, fan-outs and `publication`
 *   webhooks stay in offset order. (One relay for all channels, beside the owners, let a
 *   client's publication be committed just after a relayed one and hooked before it.)
 * - Woken by NOTIFY (sent at the app's commit), with a poll every second as the backstop for
 *   a lost connection or a missed notification.
 * - A round looks at the oldest rows (SCAN_ROWS), takes up to BATCH of its own partitions'
 *   in id order, and commits them as one job without a stream, each under an id derived from
 *   its row (`relayId`). A channel's rows are in one partition, so they keep their order.
 *   Then, after the fan-out and the commit hook, the rows are deleted. A worker that dies
 *   before the delete leaves them to the partition's next owner, whose commit finds them
 *   stored under the same ids (nothing stored twice) and fans them out and hooks them again:
 *   live delivery and webhooks are at least once, as for ingest jobs. The idempotency key
 *   given to `tidings.publish` deduplicates as an API key does.
 */
import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { partitionOf } from '../bus/keys.js';
import type { Database } from '../db/client.js';
import type { PersistOutcome } from '../db/repos/publications.js';
import type { Logger } from '../observability/logger.js';
import type { NewPublication } from '../protocol/publication.js';
import type { GroupJob } from './group.js';
import { splitStorable } from '../ingest/job.js';

const CHANNEL = 'tidings_outbox';
const BATCH = 1000;
/**
 * Oldest rows a round looks at for its own partitions' (their ids and channels only). The
 * other workers take theirs meanwhile, so a worker waits behind another's rows only when
 * that one is this far behind.
 */
const SCAN_ROWS = 10 * BATCH;
const POLL_MS = 1000;

export interface RelayOptions {
  databaseUrl: string;
  database: Database;
  /** The worker's group commit: resolves once committed, fanned out and hooked. */
  commit(job: GroupJob): Promise<PersistOutcome>;
  /** The partitions this worker owns now. */
  owned(): readonly number[];
  partitions: number;
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
  private running: Promise<void> | undefined;
  private again = false;
  /** A poll still connecting: the next tick skips rather than open a second connection. */
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

  /** Runs rounds until this worker's rows are done; a wake-up during a round asks for one more. */
  private wake(): void {
    if (this.closed) return;
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
      if (this.listener === client) this.listener = undefined;
    });
    await client.connect();
    await client.query(`listen ${CHANNEL}`);
    this.listener = client;
  }

  /** Every poll: (re)connect the listening session if needed, and run a round. */
  private async poll(): Promise<void> {
    if (this.closed || this.polling) return;
    this.polling = true;
    try {
      if (!this.listener) await this.connect();
    } catch (err) {
      this.opts.log.warn({ err }, 'outbox relay could not listen; retrying');
      await this.listener?.end().catch(() => {});
      this.listener = undefined;
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

/**
 * One round: up to BATCH of this worker's rows, committed through its group commit (fanned
 * out and hooked there), then deleted. Returns how many it took.
 */
async function relayRound(opts: RelayOptions): Promise<number> {
  const owned = new Set(opts.owned());
  if (owned.size === 0) return 0;
  const rows = await ownRows(opts, (channel) => owned.has(partitionOf(channel, opts.partitions)));
  if (rows.length === 0) return 0;
  const publications: NewPublication[] = rows.map((r) => ({
    id: relayId(r),
    channel: r.channel,
    data: r.data,
    idempotencyKey: r.idempotency_key ?? undefined,
  }));
  // What PostgreSQL could never store is refused before the commit and deleted with the rest,
  // as what it refuses in the commit is (the group commit's savepoint path isolates that).
  const { storable, refused } = splitStorable(publications);
  const outcome = await opts.commit({ batch: storable, refused, order: undefined, gatewayId: undefined });
  if (outcome.rejected.length > 0) opts.log.error({ rejected: outcome.rejected.length }, 'tidings.publish rows PostgreSQL refused were dropped');
  await opts.database.db.execute(sql`delete from tidings.outbox where id = any(${sql.param(rows.map((r) => r.id))}::bigint[])`);
  return rows.length;
}

// The id goes out as text (a bigint), so every ORDER BY names the table's column: a bare `id`
// would be the output column, and order '10' before '9'.
const ROW_COLUMNS = sql.raw(`id::text, channel, data, idempotency_key, (extract(epoch from created_at) * 1000000)::bigint::text as created_us`);

/**
 * Up to BATCH of this worker's rows, oldest first. Usually the oldest BATCH rows hold all
 * there are, and one query does; when they are full and not all this worker's, the ids and
 * channels of the oldest SCAN_ROWS are looked at for more of its own.
 */
async function ownRows(opts: RelayOptions, isMine: (channel: string) => boolean): Promise<OutboxRow[]> {
  const { db } = opts.database;
  const head = await db.execute<OutboxRow>(sql`select ${ROW_COLUMNS} from tidings.outbox order by outbox.id limit ${BATCH}`);
  const mine = head.rows.filter((r) => isMine(r.channel));
  if (head.rows.length < BATCH || mine.length === BATCH) return mine;
  const scanned = await db.execute<{ id: string; channel: string }>(sql`select id::text, channel from tidings.outbox order by outbox.id limit ${SCAN_ROWS}`);
  const ids = scanned.rows.filter((r) => isMine(r.channel)).slice(0, BATCH).map((r) => r.id);
  if (ids.length === 0) return [];
  const more = await db.execute<OutboxRow>(sql`select ${ROW_COLUMNS} from tidings.outbox where id = any(${sql.param(ids)}::bigint[]) order by outbox.id`);
  return more.rows;
}
