import { httpSourceSettings, type Graph, type HttpSourceSettings } from '@keyflow/core';
import type { ActiveJob } from './activeJob.ts';
import { Refused } from './refusal.ts';

/** An HTTP source of a job: where records POSTed to /api/ingest/<name> go. */
export interface IngestSource {
  job: ActiveJob;
  vertexId: string;
  settings: HttpSourceSettings;
}

type HttpSources = { vertexId: string; settings: HttpSourceSettings }[];

/** An active job's graph does not change: its HTTP sources are parsed once, not on every ingest request. */
const parsed = new WeakMap<Graph, HttpSources>();

/** The HTTP sources of a graph, with their settings. */
export function httpSourcesOf(graph: Graph): HttpSources {
  let sources = parsed.get(graph);
  if (!sources) {
    sources = graph.vertices.flatMap((v) => {
      if (v.type !== 'http') return [];
      const s = httpSourceSettings.safeParse(v.settings ?? {});
      return s.success ? [{ vertexId: v.id, settings: s.data }] : [];
    });
    parsed.set(graph, sources);
  }
  return sources;
}

/**
 * The HTTP source named `name` among the active jobs. A deploy refuses a name an active job reads already, so there is
 * one; should two jobs have it even so (deployed at the same moment), the one with the lowest id answers every time.
 */
export function findIngestSource(jobs: Iterable<ActiveJob>, name: string): IngestSource | undefined {
  let found: IngestSource | undefined;
  for (const job of jobs)
    for (const s of httpSourcesOf(job.graph))
      if (s.settings.name === name && (!found || job.id < found.job.id)) found = { job, vertexId: s.vertexId, settings: s.settings };
  return found;
}

/**
 * Refuses a deploy whose HTTP source names one that an active job reads (409), or names one twice (422): two sources
 * of one name would read the one ingest log, each taking records the other never sees and trimming what it had not read.
 */
export function checkIngestNames(graph: Graph, jobs: Iterable<ActiveJob>): void {
  const seen = new Map<string, string>();
  for (const { vertexId, settings } of httpSourcesOf(graph)) {
    const twice = seen.get(settings.name);
    if (twice)
      throw new Refused('invalid', `operators '${twice}' and '${vertexId}' are both HTTP source '${settings.name}': give each a name of its own`);
    seen.set(settings.name, vertexId);
  }
  for (const job of jobs)
    for (const s of httpSourcesOf(job.graph))
      if (seen.has(s.settings.name))
        throw new Refused(
          'conflict',
          `HTTP source '${s.settings.name}' is read by job ${job.id} (${job.state}) already: stop or cancel it first, or name this one differently`,
        );
}
