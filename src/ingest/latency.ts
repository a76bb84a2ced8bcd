/**
 * Recent publish→commit times per partition, as this gateway saw them: the admin console's
 * "job latency" (issue 16). The Prometheus histograms hold the same times but only as
 * buckets, summed over partitions (`tidings_ingest_publish_to_commit_seconds`) or kept by
 * each worker (`tidings_worker_job_duration_seconds`); a gateway answering a page needs the
 * recent ones of every partition, at hand. A ring of the last SAMPLES per partition: O(1) to
 * record on the ack path, sorted only when someone looks.
 */

const SAMPLES = 256;

export interface LatencySummary {
  /** Samples held (at most SAMPLES): the publications the figures below describe. */
  samples: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

class Ring {
  readonly values = new Float64Array(SAMPLES);
  count = 0;
  next = 0;

  add(ms: number): void {
    this.values[this.next] = ms;
    this.next = (this.next + 1) % SAMPLES;
    this.count = Math.min(this.count + 1, SAMPLES);
  }
}

export class LatencyWindow {
  private readonly rings: Ring[];

  constructor(partitions: number) {
    this.rings = Array.from({ length: partitions }, () => new Ring());
  }

  record(partition: number, ms: number): void {
    this.rings[partition]?.add(ms);
  }

  summary(partition: number): LatencySummary {
    const ring = this.rings[partition];
    if (!ring || ring.count === 0) return { samples: 0, p50_ms: 0, p99_ms: 0, max_ms: 0 };
    const sorted = ring.values.slice(0, ring.count).sort();
    const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return {
      samples: ring.count,
      p50_ms: at(0.5),
      p99_ms: at(0.99),
      max_ms: round(sorted[sorted.length - 1]!),
    };
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
