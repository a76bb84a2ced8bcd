/**
 * Redis Cluster hash slots (https://redis.io/docs/reference/cluster-spec/, "Keys distribution
 * model"): a key's slot is CRC16 (XMODEM) of its hash tag — the part between the first `{` and
 * the next `}`, when not empty — or of the whole key, modulo 16384. Keys and shard channels
 * in one slot live on one master, so one script or one SPUBLISH may touch them together.
 *
 * The partition tags: bare `{0}`, `{1}`, … land on slots chosen by CRC16's whims (with 8
 * partitions on 3 masters, one master can get half of them), so each partition p of N gets a
 * tag whose slot falls near the middle of the p-th of N equal slot ranges. A cluster made by
 * `redis-cli --cluster create` (or a managed one) gives each master a contiguous range, so
 * every master then owns N / masters partitions, give or take one.
 */
export const SLOTS = 16384;

const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** CRC16/XMODEM (polynomial 0x1021, initial 0), as Redis Cluster uses. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/** The hash slot of a key or shard channel. */
export function slotOf(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, 'utf8')) % SLOTS;
}

const tagTables = new Map<number, readonly string[]>();

/**
 * The hash tag (without braces) of each of `partitions` partitions: `<p>.<n>` with the smallest
 * n whose slot lies near the middle of the p-th range. Deterministic, so every gateway and
 * worker with the same TIDINGS_PARTITIONS agrees; computed once (1024 partitions: ~0.1 s).
 */
export function partitionTags(partitions: number): readonly string[] {
  let tags = tagTables.get(partitions);
  if (!tags) tagTables.set(partitions, (tags = Array.from({ length: partitions }, (_, p) => tagInRange(p, partitions))));
  return tags;
}

/**
 * Near the middle of the range, not anywhere in it: a range that straddles two masters' slots
 * then still goes to the master that holds most of it, which keeps masters within one
 * partition of each other.
 */
function tagInRange(partition: number, partitions: number): string {
  const width = SLOTS / partitions;
  const middle = Math.floor((partition + 0.5) * width);
  const slack = Math.floor(width / 8);
  for (let n = 0; ; n++) {
    const tag = `${partition}.${n}`;
    if (Math.abs(asciiSlot(tag) - middle) <= slack) return tag;
  }
}

/** slotOf for a brace-free ASCII string, without allocating: tags are searched by the thousand. */
function asciiSlot(text: string): number {
  let crc = 0;
  for (let i = 0; i < text.length; i++) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ text.charCodeAt(i)) & 0xff]!;
  return crc % SLOTS;
}
