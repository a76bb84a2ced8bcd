/**
 * Preloaded (`node --import`) into every gateway and worker the bench spawns: when the bench
 * process dies without cleaning up (SIGKILL, OOM), its children are reparented, and this
 * notices within a second and ends the child, so no server keeps running on its own.
 * The bench passes its pid in BENCH_PARENT_PID, which also catches a child that only got
 * this far after the bench was gone. Part of the load generator's harness, not of the server.
 */
const expected = Number(process.env.BENCH_PARENT_PID);

function orphaned(): boolean {
  return Number.isInteger(expected) && expected > 0 && process.ppid !== expected;
}

if (orphaned()) process.kill(process.pid, 'SIGKILL');
const timer = setInterval(() => {
  if (orphaned()) process.kill(process.pid, 'SIGKILL');
}, 1000);
timer.unref();
