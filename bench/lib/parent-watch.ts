/**
 * Preloaded (`node --import`) into every gateway and worker the bench spawns: when the bench
 * process dies without cleaning up (SIGKILL, OOM), its children are reparented, and this
 * notices within a second and ends the child, so no server keeps running on its own.
 * It is part of the load generator's harness, not of the server being measured.
 */
const parent = process.ppid;

const timer = setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL');
}, 1000);
timer.unref();
