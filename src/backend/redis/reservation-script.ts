import type { Redis, Cluster } from 'ioredis';
import { BackendError } from '../../errors.js';
import { reservationExpiryKey } from '../../limiter/algorithms/reservation.js';
import { RESERVATION_OUTCOMES, type ReservationCall } from '../../limiter/reservation-types.js';
import type { CounterOp, EvaluateResult } from '../../limiter/types.js';
import type { AssembledScript } from './lua-assembler.js';
import { assembleReservationScript } from './lua-assembler.js';

/**
 * lua/reservation.lua as an ioredis command: registration, KEYS/ARGV (the script's contract) and
 * the typed reply. A reservation call is one script call of its own, never batched with the
 * ordinary decisions (they keep their scripts and their cost); both keys share the counter's
 * hash tag, so on a cluster ioredis sends the call to the counter's slot.
 */

/** The ioredis command the reservation script is registered under. */
export const RESERVATION_COMMAND = 'meshlimitReservation';

let shared: AssembledScript | undefined;

/** The reservation script, read from lua/ once per process. */
export function defaultReservationScript(): AssembledScript {
  return (shared ??= assembleReservationScript());
}

type Client = Redis | Cluster;
type Registered = Record<string, ((numKeys: number, ...keysAndArgs: string[]) => Promise<unknown>) | undefined>;

/** Registers the script (EVALSHA with EVAL fallback on NOSCRIPT). Idempotent. */
export function registerReservationScript(client: Client, script: AssembledScript = defaultReservationScript()): void {
  if (typeof (client as unknown as Registered)[RESERVATION_COMMAND] !== 'function')
    client.defineCommand(RESERVATION_COMMAND, { lua: script.source });
}

/** KEYS and ARGV of one call (see lua/reservation.lua). */
export function marshalReservation(op: CounterOp, call: ReservationCall, now: number | undefined): { keys: string[]; argv: string[] } {
  return {
    keys: [op.key, reservationExpiryKey(op.key)],
    argv: [
      call.phase === 'reserve' ? 'r' : 's',
      call.id,
      String(call.amount),
      String(op.threshold),
      String(op.windowMs),
      String(call.ttlMs),
      call.expiryCharge ? '1' : '0',
      String(call.maxOutstanding),
      now === undefined ? '' : String(Math.floor(now)),
    ],
  };
}

/** The script's reply as an EvaluateResult with its `reservation`; a malformed reply is a BackendError. */
export function parseReservationReply(reply: unknown): EvaluateResult {
  if (!Array.isArray(reply) || reply.length !== 8 || !reply.every((x) => typeof x === 'number')) {
    throw new BackendError(`unexpected reply from the reservation script: ${JSON.stringify(reply)}`);
  }
  const [over, remaining, resetMs, code, expired, outstanding, used, reserved] = reply as number[];
  const outcome = RESERVATION_OUTCOMES[code! - 1];
  if (outcome === undefined) throw new BackendError(`unexpected outcome code ${code} from the reservation script`);
  const overLimit = over === 1;
  return {
    denied: overLimit,
    outcomes: [{ overLimit, remaining: remaining!, resetMs: resetMs! }],
    reservation: { outcome, expired: expired!, outstanding: outstanding!, used: used!, reserved: reserved! },
  };
}

/** Runs one call on `client` (standalone or cluster: both keys share a slot). */
export async function runReservation(
  client: Client,
  op: CounterOp,
  call: ReservationCall,
  now: number | undefined,
): Promise<EvaluateResult> {
  const run = (client as unknown as Registered)[RESERVATION_COMMAND];
  if (run === undefined) throw new BackendError('the reservation script is not registered on this client');
  const { keys, argv } = marshalReservation(op, call, now);
  return parseReservationReply(await run.call(client, keys.length, ...keys, ...argv));
}
