// `npm run watch -- [jobId]`: follows a job live over Socket.IO and prints its state, records/s per operator
// and checkpoints. Without a job id it follows the newest active job. KEYFLOW_URL defaults to the local control plane;
// the API key is KEYFLOW_API_KEY, else the one `npm run up` keeps in .keyflow/api-key.
import { existsSync, readFileSync } from 'node:fs';
import { connectKeyflowSocket, createKeyflowClient, isActive, type Checkpoint, type JobMetrics } from '@keyflow/api';

const base = process.env.KEYFLOW_URL ?? `http://127.0.0.1:${process.env.CONTROL_PORT ?? 4000}`;
const keyFile = new URL('../.keyflow/api-key', import.meta.url);
const token = process.env.KEYFLOW_API_KEY || (existsSync(keyFile) ? readFileSync(keyFile, 'utf8').trim() : undefined);
if (!token) {
  console.error('no API key: set KEYFLOW_API_KEY (an admin makes one under API keys), or run `npm run up` once to make .keyflow/api-key');
  process.exit(1);
}
const client = createKeyflowClient(base, { token });

let jobId = process.argv[2];
if (!jobId) {
  const jobs = await client.listJobs();
  const job = jobs.find((j) => isActive(j.state)) ?? jobs[0];
  if (!job) {
    console.error(`no jobs at ${base}; deploy one first`);
    process.exit(1);
  }
  jobId = job.id;
}

const detail = await client.getJob(jobId);
let state = detail.state;
const fmt = (n: number) => Math.round(n).toLocaleString('en');
const time = () => new Date().toISOString().slice(11, 19);
console.log(`watching job ${jobId} (${detail.pipelineName} v${detail.version}) at ${base}; state ${state}; Ctrl-C to quit`);

const showCheckpoint = (c: Checkpoint, what: string) =>
  console.log(
    `${time()} checkpoint ${c.number} ${what}: ${c.acknowledged}/${c.totalSubtasks} acks` +
      (c.durationMs !== null ? `, ${c.durationMs} ms` : '') +
      (c.bytes ? `, ${fmt(c.bytes / 1024)} KiB` : '') +
      (c.failureReason ? ` (${c.failureReason})` : ''),
  );
const showMetrics = (m: JobMetrics) => {
  const parts = Object.entries(m.vertices).map(
    ([id, v]) =>
      `${id} ${fmt(v.recordsInPerSec)}/s${v.backpressure > 0.05 ? ` bp ${Math.round(v.backpressure * 100)}%` : ''}${v.deadLetters ? ` dlq ${v.deadLetters}` : ''}`,
  );
  console.log(`${time()} ${state.padEnd(10)} ${parts.join(' | ')}`);
};

const socket = connectKeyflowSocket(base, token);
socket.on('connect', () => socket.emit('job:subscribe', jobId!));
socket.on('connect_error', (err) => console.error(`${time()} cannot reach ${base}: ${err.message}`));
socket.on('job:state', (e) => {
  if (e.jobId !== jobId) return;
  state = e.to;
  console.log(`${time()} ${e.from ?? '-'} → ${e.to}${e.reason ? ` (${e.reason})` : ''}`);
});
socket.on('job:metrics', showMetrics);
socket.on('checkpoint:completed', (c) => showCheckpoint(c, 'completed'));
socket.on('checkpoint:failed', (c) => showCheckpoint(c, 'FAILED'));
process.on('SIGINT', () => {
  socket.close();
  process.exit(0);
});
