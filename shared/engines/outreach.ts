// The outreach engine's database side: plan each new assignment's sequence, run the one send gate,
// close finished sequences. The rules themselves live in SQL (migration 001200, the gate) so
// nothing can send around them; this module only calls them. The facts the gate reads about time
// (recipients' zones, holiday calendars) are kept by timing-facts.ts, in its own flow.
import type { Tx } from "../db/client.ts";

export interface GateSummary {
  /** Due step runs this call looked at. */
  claimed: number;
  /** Sends recorded (grouped into dispatch batches, one QStash message each). */
  sent: number;
  batches: number;
  /** Refusals by reason: each rescheduled, held for approval or skipped, never dropped. */
  refused: Record<string, number>;
}

export interface TickOptions {
  limit?: number;
  /** The instant the rules are evaluated at (tests and the bench pass one). */
  now?: Date;
}

/** Step runs for assignments whose campaign is active; the assignments move to queued. */
export async function planSequences(tx: Tx, opts: TickOptions = {}): Promise<number> {
  const [row] = await tx`select private.plan_step_runs(${opts.limit ?? 1000}, ${opts.now ?? new Date()}) as planned`;
  return Number(row.planned);
}

/** The gate over up to `limit` due step runs, in the caller's transaction. */
export async function runSendGate(tx: Tx, opts: TickOptions & { batchSize?: number } = {}): Promise<GateSummary> {
  const [row] = await tx`
    select private.gate_due_steps(${opts.limit ?? 1000}, ${opts.batchSize ?? 100}, ${opts.now ?? new Date()}) as summary`;
  return row.summary as GateSummary;
}

/** Assignments with nothing left to send and no reply for 3 days become completed. */
export async function completeSequences(tx: Tx, opts: TickOptions = {}): Promise<number> {
  const [row] = await tx`select private.complete_finished_sequences(${opts.limit ?? 1000}, ${opts.now ?? new Date()}) as done`;
  return Number(row.done);
}
