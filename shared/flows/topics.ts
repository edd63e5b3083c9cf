// Which function each outbox topic goes to. A topic missing here has no subscriber yet: the
// publisher marks its rows done without a destination so the outbox does not grow.
export const TOPIC_DESTINATIONS: Record<string, string> = {
  "flow.enrichment": "flow-enrichment",
  "flow.scoring": "flow-scoring",
  "flow.allocation": "flow-allocation",
  "flow.pool-population": "flow-pool-population",
  "flow.outreach": "flow-outreach",
  "flow.content": "flow-content",
  "flow.dispatch.email": "flow-dispatch-email",
  "flow.dispatch.sms": "flow-dispatch-sms",
  "flow.dispatch.voice": "flow-dispatch-voice",
  "flow.dispatch.linkedin": "flow-dispatch-linkedin",
  "flow.dispatch.mail": "flow-dispatch-mail",
  "flow.timing": "flow-timing",
  "flow.dncr": "flow-dncr",
  "flow.inbound": "flow-inbound",
  "flow.webhook-delivery": "flow-webhook-delivery",
  "flow.crm-sync": "flow-crm-sync",
  "flow.replies": "flow-replies",
  "flow.reply-recovery": "flow-reply-recovery",
};

export type FlowTopic = keyof typeof TOPIC_DESTINATIONS;
