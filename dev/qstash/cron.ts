// Cron parsing for emulated QStash schedules: 5-field, UTC, optional `CRON_TZ=Area/City ` prefix.
// croner only computes run times; the emulator's tick fires them, so an injected clock works.
import { Cron } from "croner";

export interface ParsedCron {
  expression: string;
  timezone: string;
  /** Next run strictly after `afterMs`, or null if the pattern never fires again. */
  next(afterMs: number): number | null;
}

/** Throws with a readable message if the expression is not a valid QStash cron. */
export function parseCron(raw: string): ParsedCron {
  let expression = raw.trim();
  let timezone = "Etc/UTC";
  const tz = /^CRON_TZ=(\S+)\s+(.*)$/.exec(expression);
  if (tz) {
    timezone = tz[1];
    expression = tz[2].trim();
    try {
      // Validate the zone up front; croner would only fail later, at first evaluation.
      new Intl.DateTimeFormat("en-US", { timeZone: timezone });
    } catch {
      throw new Error(`invalid CRON_TZ timezone: ${timezone}`);
    }
  }
  if (expression.split(/\s+/).length !== 5) {
    throw new Error(`cron must have 5 fields (minute hour day-of-month month day-of-week): ${raw}`);
  }
  // "5-part" pins seconds to 0 like QStash; no callback, so croner starts no timers.
  const job = new Cron(expression, { timezone, mode: "5-part" });
  if (job.nextRun(new Date(0)) === null && job.nextRun() === null) {
    throw new Error(`cron never fires: ${raw}`);
  }
  return {
    expression: raw.trim(),
    timezone,
    next(afterMs) {
      const d = job.nextRun(new Date(afterMs));
      return d ? d.getTime() : null;
    },
  };
}
