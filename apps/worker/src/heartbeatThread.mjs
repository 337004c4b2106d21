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
const beat = async () => {
  // A main thread stuck for `stuckMs` runs nothing: the worker stops beating and counts as lost.
  if (Date.now() - Number(Atomics.load(alive, 0)) > config.stuckMs) return;
  await redis
    .multi()
    .hset(config.key, { ...config.fields, subtasks, lastHeartbeat: String(Date.now()) })
    .pexpire(config.key, Math.max(5000, 4 * config.intervalMs))
    .sadd(config.workersKey, config.fields.id)
    .exec();
};

parentPort.on('message', (m) => {
  subtasks = m.subtasks;
  void beat()
    .catch(() => {})
    .finally(() => parentPort.postMessage({ beat: true }));
});
setInterval(() => void beat().catch(() => {}), config.intervalMs);
