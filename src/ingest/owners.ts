/**
 * The gateway's view of which worker owns each partition (the leases of
 * src/persist/leases.ts), read every second in one MGET. The ingest client bundles the
 * batches of partitions with the same owner into one job (src/ingest/job.ts IngestBundle).
 *
 * Only a hint, as the leases are: a stale view sends a bundle to a worker that no longer
 * owns some of its partitions, which still commits each part in its stream's order. An
 * unknown owner (no lease yet, Redis unreachable) keeps the partition's batches apart, as
 * before bundles.
 *
 * In Redis Cluster mode each lease lives in its partition's slot (src/bus/keys.ts), so the
 * one MGET becomes one GET per partition, sent together (each goes to its master at once).
 */
import type { RedisClient } from '../bus/client.js';
import type { Keys } from '../bus/keys.js';
import type { Logger } from '../observability/logger.js';

const REFRESH_MS = 1000;
/** A read that has not answered by then is abandoned; the view stays as it was. */
const READ_TIMEOUT_MS = 2000;

export class PartitionOwners {
  private owners: (string | null)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reading = false;

  constructor(
    private readonly redis: Pick<RedisClient, 'mget' | 'get'>,
    private readonly keys: Keys,
    private readonly partitions: number,
    private readonly log: Logger,
  ) {}

  /** Reads once (without failing: an unknown view only means no bundles yet), then every second. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The owner of the partition, or undefined when not known. */
  ownerOf(partition: number): string | undefined {
    return this.owners[partition] ?? undefined;
  }

  private readLeases(keys: string[]): Promise<(string | null)[]> {
    if (!this.keys.cluster) return this.redis.mget(keys);
    return Promise.all(keys.map((key) => this.redis.get(key)));
  }

  /** At most one read outstanding: while Redis is away, reads do not pile up in its offline queue. */
  private async refresh(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    const keys = Array.from({ length: this.partitions }, (_, p) => this.keys.lease(p));
    let timeout: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timeout = setTimeout(() => reject(new Error('lease read timed out')), READ_TIMEOUT_MS);
    });
    let read: Promise<(string | null)[]> | undefined;
    try {
      read = this.readLeases(keys);
      const done = () => (this.reading = false);
      void read.then(done, done);
      this.owners = await Promise.race([read, late]);
    } catch (err) {
      if (!read) this.reading = false;
      this.log.debug({ err }, 'could not read partition owners; keeping the last view');
    } finally {
      clearTimeout(timeout);
      late.catch(() => {});
    }
  }
}
