/** A key Keyflow can partition by: what a record field may hold. */
export type Key = string | number | bigint | boolean;

const TWO_32 = 4294967296;

/** Java's `String.hashCode()`: s[0]*31^(n-1) + … + s[n-1] in 32-bit arithmetic, over UTF-16 code units. */
export function javaStringHashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

/** Java's `Long.hashCode(v)`: `(int)(v ^ (v >>> 32))`. */
export function javaLongHashCode(v: bigint): number {
  const u = BigInt.asUintN(64, v);
  return Number(BigInt.asIntN(32, u ^ (u >> 32n)));
}

const f64 = new Float64Array(1);
const f64bits = new BigInt64Array(f64.buffer);

/** Java's `Double.hashCode(v)` on `doubleToLongBits` (canonical NaN). */
export function javaDoubleHashCode(v: number): number {
  f64[0] = Number.isNaN(v) ? NaN : v;
  return javaLongHashCode(f64bits[0]!);
}

/**
 * Java's hashCode for the key's natural Java type: strings as String, integers in int range as Integer,
 * other safe integers and bigints as Long, other numbers as Double, booleans as Boolean.
 */
export function javaHashCode(key: Key): number {
  switch (typeof key) {
    case 'string':
      return javaStringHashCode(key);
    case 'number':
      if (Number.isInteger(key)) {
        if (key >= -2147483648 && key <= 2147483647) return key | 0;
        if (Number.isSafeInteger(key)) {
          // (int)(v ^ (v >>> 32)) without BigInt: the high word is floor(v / 2^32) in two's complement.
          const lo = key >>> 0;
          const hi = Math.floor(key / TWO_32) | 0;
          return (lo ^ hi) | 0;
        }
      }
      return javaDoubleHashCode(key);
    case 'bigint':
      return javaLongHashCode(key);
    case 'boolean':
      return key ? 1231 : 1237;
  }
}

/** Flink's `MathUtils.murmurHash(int)`: one Murmur3 block, fmix, made non-negative. */
export function murmurHash(code: number): number {
  let h = Math.imul(code | 0, 0xcc9e2d51);
  h = (h << 15) | (h >>> 17);
  h = Math.imul(h, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  h ^= 4;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  if (h >= 0) return h;
  return h === -2147483648 ? 0 : -h;
}
