/**
 * Issue 9, the memory-DoS part: replies without a byte bound. Each test replays one attack,
 * or the legitimate use the fix must keep working, against real Redis and PostgreSQL:
 *
 * - `history` with `limit: -1` on 300 publications of 60 KB was one 17.5 MiB frame: every
 *   reply now stays within the cap, and paging with `since` reaches each publication once;
 * - recovering a large gap built the whole reply in the gateway (~650 MB for 10,000 such
 *   publications): the reply now carries one chunk and the hub streams the rest as the
 *   client reads, so the gateway's RSS barely moves, and the official SDK still gets every
 *   publication once, in order, with `recovered: true`;
 * - a client that pipelines thousands of `history` commands and never reads made the
 *   gateway build every reply: it is now paced and its socket paused, other clients are
 *   served meanwhile, and memory stays flat;
 * - a client keeping 100 publishes in flight is never refused.
 *
 * Large histories are seeded straight into PostgreSQL (test/helpers/seed.ts); the gateways
 * whose memory is measured are child processes of the real CLI, as in bounds.test.ts.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, api, call } from '../helpers/api.js';
import { connected, expectContiguous, newClient, record, waitForCount } from '../helpers/client.js';
import { RawClient, type Message } from '../helpers/raw.js';
import { seedHistory, type Seeded } from '../helpers/seed.js';
import { TestStack, token, uniqueChannel, wsUrl, type ChildNode } from '../helpers/stack.js';

const MiB = 1024 * 1024;
/** The defaults: a client's replies are held to its queue bound, the API's to 4 MiB. */
const CLIENT_CAP = MiB;
const API_CAP = 4 * MiB;

interface Pub {
  offset: number;
  data: { n: number };
}
interface HistoryResult {
  publications: Pub[];
  epoch: string;
  offset: number;
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Samples a process's RSS every 50 ms; `stop()` returns the peak seen. */
function rssPeak(pid: number): { stop(): number } {
  let peak = rssMiB(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssMiB(pid));
    },
  };
}

/** Bytes of the line that carried the reply to `id`, as it came off the socket. */
function replyBytes(raw: RawClient, id: number): number {
  const head = `{"id":${id},`;
  for (let i = raw.frames.length - 1; i >= 0; i--) {
    const line = raw.frames[i]!.text.split('\n').find((l) => l.startsWith(head));
    if (line !== undefined) return Buffer.byteLength(line);
  }
  throw new Error(`no reply to ${id} among the frames`);
}

/** Stops reading the socket: the kernel buffers fill, then the gateway's queue. */
function stopReading(raw: RawClient): void {
  (raw.ws as unknown as { _socket: { pause(): void } })._socket.pause();
}

function resumeReading(raw: RawClient): void {
  (raw.ws as unknown as { _socket: { resume(): void } })._socket.resume();
}

describe('reply bounds (issue 9)', () => {
  const stack = new TestStack();
  let port = 0;
  let url = '';
  let smallCapUrl = '';
  let big: Seeded;

  beforeAll(async () => {
    const [main, smallCap] = await Promise.all([
      stack.gateway({ TIDINGS_API_KEY: API_KEY }),
      stack.gateway({ TIDINGS_REPLY_MAX_BYTES: String(64 * 1024) }),
    ]);
    await stack.worker();
    port = main.port;
    url = wsUrl(main.port);
    smallCapUrl = wsUrl(smallCap.port);
    big = await seedHistory(stack.databaseUrl, uniqueChannel('big'), 300, 60_000);
  });
  afterAll(() => stack.close());

  async function rawConnected(at = url, user = 'raw'): Promise<RawClient> {
    const raw = await RawClient.open(at);
    await raw.connect(await token(user));
    return raw;
  }

  describe('history of 300 × 60 KB publications with limit -1', () => {
    it('client command: each reply frame within the cap; paging with since gets all 300 once, in order', async () => {
      const raw = await rawConnected();
      const offsets: number[] = [];
      let largest = 0;
      let pages = 0;
      for (let since: object = {}; offsets.length < big.top && pages < 100; pages++) {
        const id = raw.command('history', { channel: big.channel, limit: -1, ...since });
        const result = (await raw.reply(id, 10_000)).history as HistoryResult;
        expect(result, `history page ${pages} failed`).toBeDefined();
        expect(result.offset).toBe(big.top);
        largest = Math.max(largest, replyBytes(raw, id));
        offsets.push(...result.publications.map((p) => p.offset));
        since = { since: { offset: offsets.at(-1), epoch: result.epoch } };
      }
      console.log(`[reply-bounds] client history: ${pages} pages, largest reply ${(largest / MiB).toFixed(2)} MiB`);
      expect(largest).toBeLessThanOrEqual(CLIENT_CAP);
      expect(pages).toBeGreaterThanOrEqual(17); // 300 × 60 KB ≈ 17.2 MiB in pages of ≤ 1 MiB
      expect(expectContiguous(offsets, big.top)).toBeUndefined();

      // Backwards too: newest first, paging with since = the last (lowest) offset got.
      const backwards: number[] = [];
      for (let since: object = {}; backwards.length < big.top; ) {
        const id = raw.command('history', { channel: big.channel, limit: -1, reverse: true, ...since });
        const result = (await raw.reply(id, 10_000)).history as HistoryResult;
        expect(replyBytes(raw, id)).toBeLessThanOrEqual(CLIENT_CAP);
        backwards.push(...result.publications.map((p) => p.offset));
        since = { since: { offset: backwards.at(-1), epoch: result.epoch } };
      }
      expect(backwards).toEqual(Array.from({ length: big.top }, (_, i) => big.top - i));
      raw.close();
    });

    it('API: each result within TIDINGS_REPLY_MAX_BYTES; paging with since gets all 300 once, in order', async () => {
      const offsets: number[] = [];
      let largest = 0;
      let pages = 0;
      for (let since: object = {}; offsets.length < big.top && pages < 100; pages++) {
        const res = await api(port, 'history', { channel: big.channel, limit: -1, ...since });
        const result = (res.body as { result: HistoryResult }).result;
        largest = Math.max(largest, Buffer.byteLength(res.text));
        offsets.push(...result.publications.map((p) => p.offset));
        since = { since: { offset: offsets.at(-1), epoch: result.epoch } };
      }
      console.log(`[reply-bounds] API history: ${pages} pages, largest result ${(largest / MiB).toFixed(2)} MiB`);
      expect(largest).toBeLessThanOrEqual(API_CAP);
      expect(pages).toBeGreaterThanOrEqual(5);
      expect(expectContiguous(offsets, big.top)).toBeUndefined();
    });

    it('a publication larger than the cap still goes out alone, so paging always moves on', async () => {
      const huge = await seedHistory(stack.databaseUrl, uniqueChannel('huge'), 3, 100_000);
      const raw = await rawConnected(smallCapUrl); // TIDINGS_REPLY_MAX_BYTES = 64 KiB
      const pages: number[][] = [];
      for (let since: object = {}; pages.flat().length < huge.top; ) {
        const reply = await raw.call('history', { channel: huge.channel, limit: -1, ...since });
        const result = reply.history as HistoryResult;
        pages.push(result.publications.map((p) => p.offset));
        since = { since: { offset: pages.flat().at(-1), epoch: result.epoch } };
      }
      expect(pages).toEqual([[1], [2], [3]]);
      raw.close();
    });
  });

  describe('recovery of a large gap', () => {
    it('the SDK gets a chunked recovery whole: every publication once, in order, then live ones, recovered: true', async () => {
      // Three publications of 100 KB over a 64 KiB cap: the reply carries the first, the
      // hub streams the other two, and live publications follow them.
      const huge = await seedHistory(stack.databaseUrl, uniqueChannel('chunked'), 3, 100_000);
      const client = newClient(smallCapUrl, await token('recoverer'));
      const rec = record(client, huge.channel, { since: { offset: 0, epoch: huge.epoch } });
      rec.sub.subscribe();
      client.connect();
      await waitForCount(rec, 3, 'the three seeded publications');
      await call(port, 'publish', { channel: huge.channel, data: { n: 4 } });
      await waitForCount(rec, 4, 'the live publication after them');
      expect(rec.offsets()).toEqual([1, 2, 3, 4]);
      expect(rec.subscribedEvents).toEqual([
        { wasRecovering: true, recovered: true, publications: 1, epoch: huge.epoch, offset: 0 },
      ]);
      client.disconnect();
    });

    it('recover: true with no offset and no epoch reads no whole history in one go: one bounded chunk, the rest pushed', async () => {
      const raw = await rawConnected();
      const id = raw.command('subscribe', { channel: big.channel, flag: 1, recover: true });
      const result = (await raw.reply(id, 10_000)).subscribe as { publications: Pub[] } & Message;
      expect(replyBytes(raw, id)).toBeLessThanOrEqual(CLIENT_CAP);
      // Centrifugo recovers a client without an epoch (one that subscribed before the first
      // publication has none); the bound is the chunking and the namespace's recovery_max.
      expect(result).toMatchObject({ recovered: true, was_recovering: true, epoch: big.epoch });
      const carried = result.publications.map((p) => p.offset);
      expect(carried.length).toBeLessThan(big.top);
      await raw.until('the rest of the 300 as pushes', () => raw.messages.filter((m) => m.push).length >= big.top - carried.length, 20_000);
      const pushed = raw.messages.flatMap((m) => ((m.push as { pub?: Pub } | undefined)?.pub ? [(m.push as { pub: Pub }).pub.offset] : []));
      expect(expectContiguous([...carried, ...pushed], big.top)).toBeUndefined();
      for (const frame of raw.frames) expect(Buffer.byteLength(frame.text)).toBeLessThanOrEqual(2 * CLIENT_CAP);
      raw.close();
    });

    it('1,500 × 60 KB from PostgreSQL: the gateway RSS stays bounded; the SDK gets all, in order, live ones after', async () => {
      const gap = await seedHistory(stack.databaseUrl, uniqueChannel('gap'), 1500, 60_000);
      const gw = await stack.spawn('gateway');
      // Warm the child up (JIT, pools) with a small recovery before the baseline.
      const warm = await seedHistory(stack.databaseUrl, uniqueChannel('warm'), 50, 60_000);
      const warmClient = newClient(wsUrl(gw.port), await token('warm'));
      const warmRec = record(warmClient, warm.channel, { since: { offset: 0, epoch: warm.epoch } });
      warmRec.sub.subscribe();
      warmClient.connect();
      await waitForCount(warmRec, 50, 'the warm-up recovery');
      warmClient.disconnect();

      const before = rssMiB(gw.process.pid!);
      const sampler = rssPeak(gw.process.pid!);
      const client = newClient(wsUrl(gw.port), await token('far-behind'));
      const rec = record(client, gap.channel, { since: { offset: 0, epoch: gap.epoch } });
      rec.sub.subscribe();
      client.connect();
      // Live publications while the gap streams: they must come after it, not in between.
      await waitForCount(rec, 200, 'the start of the recovery');
      for (let n = 1501; n <= 1505; n++) await call(port, 'publish', { channel: gap.channel, data: { n } });
      await waitForCount(rec, 1505, 'the whole gap and the live publications', 60_000);
      const peak = sampler.stop();
      console.log(
        `[reply-bounds] recovery of 1,500 × 60 KB (88 MiB): gateway RSS ${before.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)})`,
      );
      expect(expectContiguous(rec.offsets(), 1505)).toBeUndefined();
      expect(rec.received.at(-1)!.data).toEqual({ n: 1505 });
      expect(rec.subscribedEvents).toEqual([
        { wasRecovering: true, recovered: true, publications: 1, epoch: gap.epoch, offset: 0 },
      ]);
      expect(peak - before).toBeLessThan(60);
      client.disconnect();
      await gw.kill();
    });
  });

  describe('a client that pipelines thousands of history commands and never reads', () => {
    let gw: ChildNode;
    beforeAll(async () => {
      gw = await stack.spawn('gateway');
    });

    it('is paced, not served: others get prompt replies, the gateway RSS stays flat, and it is served once it reads', async () => {
      const at = wsUrl(gw.port);
      const abuser = await rawConnected(at, 'abuser');
      stopReading(abuser);
      const before = rssMiB(gw.process.pid!);
      const sampler = rssPeak(gw.process.pid!);
      const ids = Array.from({ length: 5000 }, () => abuser.command('history', { channel: big.channel, limit: -1 }));

      // Meanwhile another client is served as usual.
      const other = await rawConnected(at, 'other');
      const small = uniqueChannel('small');
      await call(port, 'publish', { channel: small, data: { n: 1 } });
      let slowest = 0;
      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        const reply = await other.call('history', { channel: small, limit: 10 }, 5000);
        expect((reply.history as HistoryResult).publications.map((p) => p.offset)).toEqual([1]);
        slowest = Math.max(slowest, performance.now() - started);
        await new Promise((r) => setTimeout(r, 100));
      }
      const peak = sampler.stop();
      console.log(
        `[reply-bounds] 5,000 pipelined history commands not read: gateway RSS ${before.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB (+${(peak - before).toFixed(0)}); slowest reply to another client ${slowest.toFixed(0)} ms`,
      );
      expect(slowest).toBeLessThan(2000);
      expect(peak - before).toBeLessThan(60);
      expect(abuser.closeEvent).toBeUndefined(); // paused, not dropped

      // Once it reads, it is served, one bounded reply at a time.
      resumeReading(abuser);
      await abuser.reply(ids[20]!, 20_000);
      const first: Message = await abuser.reply(ids[0]!);
      expect((first.history as HistoryResult).publications.length).toBeGreaterThan(0);
      for (const id of ids.slice(0, 20)) expect(replyBytes(abuser, id)).toBeLessThanOrEqual(CLIENT_CAP);
      abuser.close();
      other.close();
    });
  });

  it('a legitimate client keeping 100 publishes in flight is never refused', async () => {
    const channel = uniqueChannel('inflight');
    const client = await connected(url, await token('busy'));
    const rec = record(client, channel);
    rec.sub.subscribe();
    await rec.sub.ready(10_000);
    const total = 1000;
    const errors: unknown[] = [];
    let next = 1;
    let maxInFlight = 0;
    let inFlight = 0;
    const lane = async (): Promise<void> => {
      while (next <= total) {
        const n = next++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await client.publish(channel, { n }).catch((err: unknown) => errors.push(err));
        inFlight--;
      }
    };
    await Promise.all(Array.from({ length: 100 }, lane));
    expect(errors).toEqual([]);
    expect(maxInFlight).toBe(100);
    await waitForCount(rec, total, 'every publication back on the subscription');
    expect(expectContiguous(rec.offsets(), total)).toBeUndefined();
    client.disconnect();
  });
});
