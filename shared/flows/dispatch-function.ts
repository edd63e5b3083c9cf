// The dispatch function of one channel: one QStash message per dispatch batch recorded by the send
// gate (topic flow.dispatch.<channel>). Withdraws what may no longer go (emergency pause, a reply
// or unsubscribe since the gate), leases the due sends and hands each to its provider. Sends still
// waiting (retries, LinkedIn pacing) bring the same batch back later. Redelivered or concurrent
// messages never send twice: sends are leased, and an expired lease is reconciled, not resent.
import { z } from "@hono/zod-openapi";
import type { Channel } from "../channels/types.ts";
import { asService, db } from "../db/client.ts";
import { type AdapterRegistry, dispatchBatch } from "../engines/dispatch.ts";
import type { App } from "../http/app.ts";
import { createFlowFunction } from "./flow-app.ts";

export function createDispatchFunction(channel: Channel, adapters: () => AdapterRegistry): App {
  let registry: AdapterRegistry | undefined;
  return createFlowFunction(
    `flow-dispatch-${channel}`,
    `flow.dispatch.${channel}`,
    `Send one ${channel} dispatch batch through its provider`,
    z.object({ batch_id: z.string().uuid() }),
    async ({ input, continueLater }) => {
      registry ??= adapters();
      const result = await dispatchBatch(db(), input.batch_id, registry);
      if (result.nextInSeconds !== null) {
        await asService({ role: "service:dispatch" }, (tx) => continueLater(tx, { batch_id: input.batch_id }, result.nextInSeconds!));
      }
      return { processed: result.claimed, more: result.nextInSeconds !== null, ...result };
    },
  );
}
