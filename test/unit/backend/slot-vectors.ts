/**
 * Hash slots as Redis Cluster computes them. The same vectors are checked against CLUSTER KEYSLOT
 * on a real cluster in test/integration/cluster/cluster-backend.test.ts.
 */
export const SLOT_VECTORS: ReadonlyArray<readonly [string, number]> = [
  ['123456789', 12739],
  ['foo', 12182],
  ['bar', 5061],
  ['hello', 866],
  ['somekey', 11058],
  ['{user1000}.following', 3443],
  ['{user1000}.followers', 3443],
  ['foo{bar}{zap}', 5061], // the first tag only
  ['foo{{bar}}zap', 4015], // tag "{bar"
  ['foo{}{bar}', 8363], // empty first tag: the whole key
  ['{}', 15257],
  ['{', 4092],
  ['}{x}', 16287],
  ['ключ', 10303], // UTF-8 bytes
  ['€{ü}x', 9552],
];
