/**
 * Private Redis and PostgreSQL servers from the binaries on this machine, for tests and for
 * `tidings dev`. Each server runs in its own process group on 127.0.0.1 and a port of its
 * own (never the system's 5432 or 6379), keeps its data in the directory it is given, and
 * can be stopped, killed with -9 and restarted on the same port and data.
 *
 * Servers this process started are SIGKILLed when it exits; call stop() for a clean end.
 */
export { findBinary, MissingBinaryError } from './binaries.js';
export { freePort } from './ports.js';
export { startPostgres, type PostgresOptions } from './postgres.js';
export { startRedis, type RedisOptions } from './redis.js';
export { startRedisCluster, type RedisClusterHandle, type RedisClusterOptions } from './redis-cluster.js';
export type { ServerHandle } from './server.js';
