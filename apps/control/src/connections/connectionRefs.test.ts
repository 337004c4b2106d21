import { describe, expect, it } from 'vitest';
import { connectionFields, connectionIssues, connectionRefs } from './connectionRefs.ts';

describe('the connections a pipeline names', () => {
  it.each([
    ['nats', [{ name: 'connection', kind: 'nats' }]],
    ['natsSink', [{ name: 'connection', kind: 'nats' }]],
    ['redisStream', [{ name: 'connection', kind: 'redis' }]],
    ['redisStreamSink', [{ name: 'connection', kind: 'redis' }]],
    ['postgresCdc', [{ name: 'connection', kind: 'postgres' }]],
    ['mqtt', [{ name: 'connection', kind: 'mqtt' }]],
    ['webhook', [{ name: 'connection', kind: 'http' }]],
    ['generator', []],
    ['postgres', []],
    ['no such operator', []],
  ])('%s: the settings that name one, read from its schema', (type, fields) => {
    expect(connectionFields(type)).toEqual(fields);
  });

  const graph = {
    vertices: [
      { id: 'orders', type: 'nats', parallelism: 1, settings: { connection: 'prod-nats', stream: 'ORDERS' } },
      // Keyflow's own Redis: no connection named.
      { id: 'clicks', type: 'redisStream', parallelism: 1, settings: { streams: 'clicks' } },
      { id: 'out', type: 'redisStreamSink', parallelism: 1, settings: { connection: 'prod-nats', stream: 'out' } },
      { id: 'hook', type: 'webhook', parallelism: 1, settings: { connection: 'alerts' } },
      'not a vertex',
    ],
    edges: [],
  };

  it('are found by vertex and setting; anything that is no vertex is passed over', () => {
    expect(connectionRefs(graph)).toEqual([
      { vertexId: 'orders', type: 'nats', index: 0, field: 'connection', kind: 'nats', connection: 'prod-nats' },
      { vertexId: 'out', type: 'redisStreamSink', index: 2, field: 'connection', kind: 'redis', connection: 'prod-nats' },
      { vertexId: 'hook', type: 'webhook', index: 3, field: 'connection', kind: 'http', connection: 'alerts' },
    ]);
    expect(connectionRefs(null)).toEqual([]);
    expect(connectionRefs({ vertices: 'none' })).toEqual([]);
  });

  it('must exist and be of the kind the setting takes: each issue names the vertex and the setting', () => {
    expect(connectionIssues(graph, new Map([['prod-nats', 'nats']]))).toEqual([
      {
        path: ['vertices', 2, 'settings', 'connection'],
        vertexId: 'out',
        message: "out: connection 'prod-nats' is a nats connection; a Redis Streams sink needs a redis one",
      },
      {
        path: ['vertices', 3, 'settings', 'connection'],
        vertexId: 'hook',
        message: "hook: there is no connection named 'alerts' (an admin makes one under Connections)",
      },
    ]);
  });
});
