/**
 * After a group of jobs commits: one Redis round (the fanout script, src/bus/scripts.ts)
 * that appends to each channel's history cache, moves its cached position, publishes the
 * publications to the channel topic (in offset order) and acknowledges the originating
 * gateways.
 *
 * Every step is idempotent, so the worker may repeat the whole round after a failure or a
 * crash: the cache ZSET member for an offset is always the same bytes, the position only
 * moves forward, and gateways drop offsets they already delivered. Cache and position are
 * written before the PUBLISH, so a gateway that hears of offset N can always read N back.
 */
import { publishTo, type RedisClient } from '../bus/client.js';
import type { ScriptedRedis } from '../bus/scripts.js';
import { encodeAcks, type Ack } from '../ingest/acks.js';
import type { Keys } from '../bus/keys.js';
import { publicationJson } from '../protocol/publication.js';
import type { PersistOutcome, StoredPublication } from '../db/repos/publications.js';
import { Errors } from '../protocol/codes.js';
import type { Database } from '../db/client.js';
import type { Logger } from '../observability/logger.js';
import type { CommitHook } from '../webhooks/publications.js';

export interface CacheSettings {
  size: number;
  ttlS: number;
}

/** The cache settings of a channel (its namespace's history_size / history_ttl_s). */
export type CachePolicy = (channel: string) => CacheSettings;

function groupByChannel(stored: StoredPublication[]): Map<string, StoredPublication[]> {
  const groups = new Map<string, StoredPublication[]>();
  for (const pub of stored) {
    const group = groups.get(pub.channel);
    if (group) group.push(pub);
    else groups.set(pub.channel, [pub]);
  }
  for (const group of groups.values()) group.sort((a, b) => a.offset - b.offset);
  return groups;
}

/** What a commit path (the group commit, the outbox relay) works with. */
export interface CommitPath {
  database: Database;
  redis: ScriptedRedis;
  keys: Keys;
  cache: CachePolicy;
  /** After each fan-out, before the work counts as done: `publication` webhooks (src/webhooks/publications.ts). */
  hook: CommitHook;
  log: Logger;
}

/**
 * What follows a commit, before the jobs (or outbox rows) that carried it are done with: the
 * fan-out, then the commit hook. A process that dies in between leaves that work to run again,
 * and both steps with it; both are idempotent.
 */
export async function deliverCommitted(path: Pick<CommitPath, 'redis' | 'keys' | 'cache' | 'hook'>, jobs: CommittedJob[]): Promise<void> {
  await fanoutCommitted(path.redis, path.keys, path.cache, jobs);
  await path.hook.committed(jobs.flatMap((j) => j.outcome.stored));
}

/** A committed job, and the gateway that waits for its acks. */
export interface CommittedJob {
  outcome: PersistOutcome;
  /** Who waits for the acks; undefined when nobody does (publications from SQL, src/persist/relay.ts). */
  gatewayId: string | undefined;
  /** The job part's partition: where its rejections are acknowledged in Redis Cluster mode. */
  partition?: number;
}

/** One fanout script call's bounds: Redis parses a call whole, so a huge round goes in several. */
const CALL_MAX_CHANNELS = 1000;
const CALL_MAX_BYTES = 8 * 1024 * 1024;

/** The arguments of one tidingsFanout call (src/bus/scripts.ts), filled channel by channel. */
interface FanoutCall {
  keys: string[];
  args: (string | number)[];
  channels: number;
  bytes: number;
}

/** What one pipeline of fanout calls carries: publications, and (topic, message) acks sent after them. */
interface FanoutRound {
  stored: StoredPublication[];
  acks: [topic: string, message: string][];
}

/**
 * One Redis round for every job of a group commit, as one pipeline of fanout script calls
 * (usually one): per channel the cache append, the position move and one PUBLISH carrying
 * the publications of all the jobs in offset order; then per gateway one ack message, after
 * every channel, so an acknowledged publisher can always read its publication back.
 *
 * In Redis Cluster mode a script reaches one slot only, so the round is split by partition:
 * one pipeline per partition with its channels and its ack topics (src/bus/keys.ts), all sent
 * at once. Each ack still follows its publication's channel, in the same script.
 */
export async function fanoutCommitted(redis: ScriptedRedis, keys: Keys, cachePolicy: CachePolicy, jobs: CommittedJob[]): Promise<void> {
  const tops = topsOf(jobs);
  const committedAt = Date.now();
  if (!keys.cluster) {
    const acks = [...acksByGateway(jobs)].map(([gatewayId, list]): [string, string] => [keys.acks(gatewayId), encodeAcks(list)]);
    const round = { stored: jobs.flatMap((j) => j.outcome.stored), acks };
    return execCalls(redis, buildCalls(keys, cachePolicy, round, tops), committedAt);
  }
  const rounds = [...roundsByPartition(keys, jobs)];
  await Promise.all(rounds.map(([p, round]) => execCalls(redis, buildCalls(keys, cachePolicy, round, tops), committedAt, keys.queuePrefixOf(p))));
}

function buildCalls(keys: Keys, cachePolicy: CachePolicy, round: FanoutRound, tops: Map<string, number>): FanoutCall[] {
  const calls: FanoutCall[] = [];
  let call: FanoutCall | undefined;
  for (const [channel, pubs] of groupByChannel(round.stored)) {
    const epoch = pubs[0]!.epoch;
    const cache = cachePolicy(channel);
    const top = tops.get(channel) ?? pubs[pubs.length - 1]!.offset;
    if (!call || call.channels >= CALL_MAX_CHANNELS || call.bytes >= CALL_MAX_BYTES) calls.push((call = { keys: [], args: [], channels: 0, bytes: 0 }));
    call.keys.push(keys.history(channel), keys.meta(channel));
    call.args.push(keys.topic(channel), epoch, top, cache.ttlS, cache.size, pubs.length);
    for (const p of pubs) {
      const json = publicationJson(p, epoch);
      call.args.push(p.offset, json);
      call.bytes += json.length;
    }
    call.channels++;
  }
  if (!call) calls.push((call = { keys: [], args: [], channels: 0, bytes: 0 }));
  for (const [topic, message] of round.acks) call.args.push(topic, message);
  return calls;
}

/**
 * One pipeline of the calls. `routeKey` (cluster mode): a name in the calls' slot, passed as
 * one more key so that ioredis sends even a call without channels (acks only) to its master;
 * the script never touches it, and uses SPUBLISH.
 */
async function execCalls(redis: ScriptedRedis, calls: FanoutCall[], committedAt: number, routeKey?: string): Promise<void> {
  const pipeline = redis.pipeline() as unknown as ScriptedRedis & ReturnType<RedisClient['pipeline']>;
  for (const c of calls) {
    if (routeKey === undefined) pipeline.tidingsFanout(c.keys.length, ...c.keys, committedAt, c.channels, ...c.args);
    else pipeline.tidingsFanoutSharded(c.keys.length + 1, ...c.keys, routeKey, committedAt, c.channels, ...c.args);
  }
  const results = await pipeline.exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0];
}

/** Cluster mode: each partition's publications and acks (an ack goes with its publication's channel). */
function roundsByPartition(keys: Keys, jobs: CommittedJob[]): Map<number, FanoutRound> {
  const rounds = new Map<number, FanoutRound>();
  const roundOf = (p: number) => rounds.get(p) ?? rounds.set(p, { stored: [], acks: [] }).get(p)!;
  for (const pub of jobs.flatMap((j) => j.outcome.stored)) roundOf(keys.partitionOfChannel(pub.channel)).stored.push(pub);
  // ack topic (one per gateway and partition) → its partition and acks
  const acks = new Map<string, { p: number; list: Ack[] }>();
  const add = (p: number, gatewayId: string, ack: Ack) => {
    const topic = keys.ackTopic(gatewayId, p);
    const entry = acks.get(topic) ?? acks.set(topic, { p, list: [] }).get(topic)!;
    entry.list.push(ack);
  };
  for (const { outcome, gatewayId, partition } of jobs) {
    if (gatewayId === undefined) continue;
    for (const r of outcome.results) add(keys.partitionOfChannel(r.channel), gatewayId, [r.id, r.offset, r.epoch]);
    for (const r of outcome.rejected) add(partition ?? 0, gatewayId, [r.id, 0, '', rejectionCode(r.why)]);
  }
  for (const [topic, { p, list }] of acks) roundOf(p).acks.push([topic, encodeAcks(list)]);
  return rounds;
}

/** Each channel's top after the group: the highest any of its jobs saw (they ran in one transaction). */
function topsOf(jobs: CommittedJob[]): Map<string, number> {
  const tops = new Map<string, number>();
  for (const { outcome } of jobs) {
    for (const [channel, pos] of outcome.tops) tops.set(channel, Math.max(tops.get(channel) ?? 0, pos.top));
  }
  return tops;
}

function acksByGateway(jobs: CommittedJob[]): Map<string, Ack[]> {
  const byGateway = new Map<string, Ack[]>();
  for (const { outcome, gatewayId } of jobs) {
    if (gatewayId === undefined) continue;
    let acks = byGateway.get(gatewayId);
    if (!acks) byGateway.set(gatewayId, (acks = []));
    for (const r of outcome.results) acks.push([r.id, r.offset, r.epoch]);
    for (const r of outcome.rejected) acks.push([r.id, 0, '', rejectionCode(r.why)]);
  }
  return byGateway;
}

/**
 * What the publisher hears for a publication that will never be committed: its own input
 * was refused (107, retrying the same is pointless), or its job lost its turn after Redis
 * lost track of it (100, temporary: a retry is a new publication and commits).
 */
function rejectionCode(why: PersistOutcome['rejected'][number]['why']): number {
  return why === 'refused' ? Errors.badRequest.code : Errors.internal.code;
}

/** Tells a gateway that these publications will never be committed, so it can answer now. */
export async function rejectPublications(redis: RedisClient, keys: Keys, gatewayId: string, ids: string[], code: number, partition = 0) {
  const acks: Ack[] = ids.map((id) => [id, 0, '', code]);
  await publishTo(redis, keys.cluster, keys.ackTopic(gatewayId, partition), encodeAcks(acks));
}

/**
 * After a history removal committed (API `history_remove`): drop the channel's Redis history
 * cache and acknowledge the gateway with the channel's position. The position hash stays,
 * since epoch and top did not change. Idempotent, like fanoutCommitted.
 */
export async function clearHistoryCache(
  redis: RedisClient,
  keys: Keys,
  removal: { g: string; i: string; channel: string },
  position: { epoch: string; top: number },
): Promise<void> {
  const acks: Ack[] = [[removal.i, position.top, position.epoch]];
  // In cluster mode the ack topic is in the channel's slot, so the pipeline stays on one master.
  const topic = keys.ackTopic(removal.g, keys.partitionOfChannel(removal.channel));
  const pipeline = redis.pipeline().del(keys.history(removal.channel));
  const results = await (keys.cluster ? pipeline.spublish(topic, encodeAcks(acks)) : pipeline.publish(topic, encodeAcks(acks))).exec();
  const failed = results?.find(([err]) => err);
  if (failed) throw failed[0];
}
