// A minimal Redis client on node:net (RESP2), for the launch and test scripts, which must run
// before any dependency is installed. Not for application code.
import net from 'node:net';

/** Opens a connection to `url` (redis://[user:pass@]host:port[/db]); rejects after `timeoutMs`. */
export async function connectRedis(url, { timeoutMs = 2000 } = {}) {
  const { hostname, port, username, password, pathname } = new URL(url);
  const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port || 6379) });
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`Redis at ${hostname}:${port || 6379} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => (clearTimeout(timer), resolve()));
    socket.once('error', (error) => (clearTimeout(timer), reject(error)));
  });

  let buffer = Buffer.alloc(0);
  const waiting = [];
  socket.on('data', (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const parsed = parseReply(buffer, 0);
      if (!parsed) break;
      buffer = buffer.subarray(parsed.end);
      waiting.shift()?.(parsed.value);
    }
  });
  socket.on('error', () => {});

  const client = {
    command(...args) {
      return new Promise((resolve, reject) => {
        waiting.push((value) => (value instanceof Error ? reject(value) : resolve(value)));
        socket.write(encode(args));
      });
    },
    close() {
      socket.end();
      socket.destroy();
    },
  };
  const db = pathname?.slice(1);
  if (password) await client.command('AUTH', ...(username ? [decodeURIComponent(username)] : []), decodeURIComponent(password));
  if (db) await client.command('SELECT', db);
  return client;
}

/** True when a Redis server at `url` answers PING. */
export async function redisAnswers(url, timeoutMs = 1500) {
  try {
    const client = await connectRedis(url, { timeoutMs });
    try {
      return (await withTimeout(client.command('PING'), timeoutMs)) === 'PONG';
    } finally {
      client.close();
    }
  } catch {
    return false;
  }
}

/** Deletes every key matching one of `patterns`; returns how many were deleted. */
export async function deleteKeys(url, patterns) {
  const client = await connectRedis(url);
  let deleted = 0;
  try {
    for (const pattern of patterns) {
      let cursor = '0';
      do {
        const [next, keys] = await client.command('SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000');
        cursor = next;
        if (keys.length) deleted += await client.command('UNLINK', ...keys);
      } while (cursor !== '0');
    }
  } finally {
    client.close();
  }
  return deleted;
}

function withTimeout(promise, ms) {
  return Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))]);
}

function encode(args) {
  let out = `*${args.length}\r\n`;
  for (const arg of args) {
    const s = String(arg);
    out += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  }
  return out;
}

// Returns { value, end } for one complete reply starting at `start`, or null if incomplete.
function parseReply(buf, start) {
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buf[start]);
  const line = buf.toString('utf8', start + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, end: next };
    case '-':
      return { value: new Error(line), end: next };
    case ':':
      return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items = [];
      let pos = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, pos);
        if (!item) return null;
        items.push(item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new Error(`Unexpected Redis reply type ${type}`);
  }
}
