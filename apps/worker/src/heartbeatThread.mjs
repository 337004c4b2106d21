// The worker's heartbeat thread (see Heartbeat in heartbeat.ts): beats every `intervalMs` while the main thread
// shows life, and at once when the main thread reports a change of its subtasks.
import { parentPort, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';

const config = workerData;
const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
let down = false;
redis.on('error', (err) => {
  if (!down) parentPort.postMessage({ error: `heartbeat: Redis connection lost: ${err.message}` });
  down = true;
});
redis.on('ready', () => (down = false));

const alive = new BigInt64Array(config.alive);
let subtasks = '[]';

// The beat is stamped with Redis's clock (TIME), not this host's: the control plane judges it by the same clock,
// so workers and control planes on hosts whose clocks disagree neither look lost nor hide a real loss.
redis.defineCommand('beat', {
  numberOfKeys: 2,
  lua: `
    local t = redis.call('TIME')
    redis.call('HSET', KEYS[1], 'id', ARGV[1], 'host', ARGV[2], 'pid', ARGV[3], 'slots', ARGV[4], 'subtasks', ARGV[5],
      'operators', ARGV[7], 'cpu', ARGV[8], 'lastHeartbeat', tostring(t[1] * 1000 + math.floor(t[2] / 1000)))
    redis.call('PEXPIRE', KEYS[1], ARGV[6])
    redis.call('SADD', KEYS[2], ARGV[1])
  `,
});

// The cores the whole process used (every thread: the subtasks' main thread, garbage collection, this one), over
// the time since the last beat, smoothed over a few beats.
let cpu = 0;
let cpuAt = performance.now();
let cpuUsage = process.cpuUsage();
const sampleCpu = () => {
  const now = performance.now();
  const used = process.cpuUsage(cpuUsage);
  if (now - cpuAt >= 100) {
    const cores = (used.user + used.system) / 1000 / (now - cpuAt);
    cpu = cpu === 0 ? cores : 0.5 * cpu + 0.5 * cores;
    cpuAt = now;
    cpuUsage = process.cpuUsage();
  }
  return cpu.toFixed(3);
};

const beat = async () => {
  // A main thread stuck for `stuckMs` runs nothing: the worker stops beating and counts as lost. (Both times are
  // this host's: a difference, not a comparison with another clock.)
  if (Date.now() - Number(Atomics.load(alive, 0)) > config.stuckMs) return;
  const { id, host, pid, slots, operators } = config.fields;
  await redis.beat(config.key, config.workersKey, id, host, pid, slots, subtasks, Math.max(5000, 4 * config.intervalMs), operators, sampleCpu());
};

parentPort.on('message', (m) => {
  subtasks = m.subtasks;
  void beat()
    .catch(() => {})
    .finally(() => parentPort.postMessage({ beat: true }));
});
setInterval(() => void beat().catch(() => {}), config.intervalMs);
