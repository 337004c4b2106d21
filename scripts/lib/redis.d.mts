export interface RedisConnection {
  command(...args: (string | number)[]): Promise<unknown>;
  close(): void;
}
export function connectRedis(url: string, options?: { timeoutMs?: number }): Promise<RedisConnection>;
export function redisAnswers(url: string, timeoutMs?: number): Promise<boolean>;
export function deleteKeys(url: string, patterns: string[]): Promise<number>;
