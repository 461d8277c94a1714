/**
 * Freezes `value` and everything reachable from it through own enumerable properties, in place,
 * and returns it. Settings and compiled config snapshots are frozen once, after they are built,
 * so nothing can change them while requests read them.
 */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
