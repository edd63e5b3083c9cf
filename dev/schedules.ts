// The cron schedules that start the pipeline ticks: one QStash schedule per flow function, with a
// fixed schedule id so running this again overwrites instead of duplicating. The local stack
// calls it at start; against production run `npm run schedules` with the real QStash env.
import { Client } from "@upstash/qstash";

/** Flow functions and their cron (UTC). Each tick does one bounded batch and chains itself. */
export const FLOW_SCHEDULES: Record<string, string> = {
  "outbox-publisher": "* * * * *",
  "flow-enrichment": "* * * * *",
  "flow-scoring": "* * * * *",
  "flow-allocation": "*/5 * * * *",
  "flow-timing": "*/5 * * * *",
  "flow-outreach": "* * * * *",
  "flow-content": "*/5 * * * *",
  "flow-dncr": "*/5 * * * *",
  // inbound: stored webhook events nobody's message picked up, replies left unclassified, and
  // replies no webhook delivered (polled from the providers)
  "flow-inbound": "* * * * *",
  "flow-replies": "*/5 * * * *",
  "flow-reply-recovery": "*/15 * * * *",
};

export async function ensureSchedules(opts: {
  qstashUrl: string;
  token: string;
  functionsBaseUrl: string;
  functions: string[];
}): Promise<string[]> {
  const client = new Client({ baseUrl: opts.qstashUrl, token: opts.token, enableTelemetry: false });
  const created: string[] = [];
  for (const [name, cron] of Object.entries(FLOW_SCHEDULES)) {
    if (!opts.functions.includes(name)) continue;
    await client.schedules.create({
      scheduleId: `agency-os-${name}`,
      destination: `${opts.functionsBaseUrl}/${name}`,
      cron,
      body: "{}",
      headers: { "content-type": "application/json" },
      retries: 3,
    });
    created.push(name);
  }
  return created;
}
