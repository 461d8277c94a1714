// The names of meshlimit's opt-in limit explanation (answered by mapping.ts's explainLimits),
// in a module of their own so `meshlimit ask` loads them without the server.

/**
 * Request metadata a client sends to ask for {@link EXPLAIN_TRAILER} (`meshlimit ask` does). RLS
 * v3's `current_limit` has no field for a window of several units, the algorithm or a token
 * bucket's capacity, so a 30-per-15-minutes limit reads `30/MINUTE` and a bucket's remaining
 * tokens exceed its `requests_per_unit`.
 */
export const EXPLAIN_HEADER = 'meshlimit-explain';
/**
 * Trailing metadata answering {@link EXPLAIN_HEADER}: JSON, one entry per descriptor status, null
 * without a limit, else the reported limit as the config says it: `{requestsPerUnit, unit,
 * unitMultiplier, algorithm, burst}`. No rule keys or descriptor values: nothing the response
 * does not already imply about the config. At most 64 descriptors of five short fields.
 */
export const EXPLAIN_TRAILER = 'meshlimit-limits';
