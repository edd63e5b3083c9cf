// Campaign generation: Claude drafts a campaign (its steps and their copy) from the client's ICP
// and offer, as a forced tool call validated with zod; the draft is stored as a campaign pending
// approval, never active (a client owner or an admin approves it like any other). Without Claude
// the draft is the default sequence with the default templates, and says so.
import { z } from "zod";
import type { AnthropicClient } from "../integrations/anthropic.ts";
import { ProviderError } from "../integrations/provider-http.ts";
import { DEFAULT_SEQUENCE, StepInput } from "../schemas/campaigns.ts";

export const DRAFT_CAMPAIGN_TOOL = {
  name: "draft_campaign",
  description: "Return the drafted outreach campaign: a name, a description and its ordered steps.",
  input_schema: {
    type: "object" as const,
    properties: {
      name: { type: "string", maxLength: 200 },
      description: { type: "string", maxLength: 2000 },
      steps: {
        type: "array",
        minItems: 1,
        maxItems: 10,
        items: {
          type: "object",
          properties: {
            day_offset: { type: "integer", minimum: 0, maximum: 60 },
            channel: { type: "string", enum: ["email", "sms", "voice", "linkedin", "mail"] },
            linkedin_action: { type: "string", enum: ["profile_view", "invitation", "message"] },
            subject: { type: "string", maxLength: 120 },
            body: { type: "string", maxLength: 3000 },
          },
          required: ["day_offset", "channel", "body"],
        },
      },
    },
    required: ["name", "steps"],
  },
};

const DraftSchema = z.object({
  name: z.string().min(1).max(200),
  description: z.string().max(2000).optional(),
  steps: z.array(z.object({
    day_offset: z.number().int().min(0).max(60),
    channel: z.enum(["email", "sms", "voice", "linkedin", "mail"]),
    linkedin_action: z.enum(["profile_view", "invitation", "message"]).optional(),
    subject: z.string().max(120).optional(),
    body: z.string().min(1).max(3000),
  })).min(1).max(10),
});

export interface DraftInput {
  clientName: string;
  offer: string;
  icp: { name?: string; target_titles?: string[]; industries?: string[]; countries?: string[]; employee_min?: number | null; employee_max?: number | null };
  /** Channels the client wants (default: the default sequence's). */
  channels?: string[];
}

export interface Draft {
  name: string;
  description: string | null;
  steps: Array<z.output<typeof StepInput>>;
  generation: { source: "claude" | "template_no_key"; model: string | null; usage: unknown; cost_cents: number };
}

const SYSTEM = `You draft B2B outbound campaigns for Agency OS. A campaign is an ordered sequence of steps
{day_offset, channel, subject (email only), body}. Write short, specific, respectful copy in plain text,
with merge fields {{first_name|there}}, {{company|your team}}, {{client_name}}. Never invent facts or
claims about the prospect. LinkedIn steps need linkedin_action (invitation first). SMS bodies must fit one
160-character segment. Compliance lines (sender identification, unsubscribe, opt-out) are added later:
do not write them.`;

function toSteps(draft: z.output<typeof DraftSchema>): Array<z.output<typeof StepInput>> {
  return draft.steps
    .sort((a, b) => a.day_offset - b.day_offset)
    .map((s) => StepInput.parse({
      day_offset: s.day_offset,
      channel: s.channel,
      linkedin_action: s.channel === "linkedin" ? s.linkedin_action ?? "invitation" : undefined,
      variants: [{ label: "A", subject_template: s.channel === "email" ? s.subject ?? null : null, body_template: s.body, weight: 1 }],
    }));
}

/** Drafts a campaign; throws ProviderError when Claude fails in a way waiting won't fix. */
export async function draftCampaign(input: DraftInput, anthropic: AnthropicClient | null): Promise<Draft> {
  if (!anthropic) {
    return {
      name: `${input.offer} — ${input.icp.name ?? "default ICP"}`.slice(0, 200),
      description: "Drafted without Claude (no ANTHROPIC_API_KEY): the default sequence with the default templates.",
      steps: DEFAULT_SEQUENCE.map((s) => StepInput.parse(s)),
      generation: { source: "template_no_key", model: null, usage: null, cost_cents: 0 },
    };
  }
  const icp = { ...input.icp, offer: input.offer, client: input.clientName, channels: input.channels };
  const model = anthropic.models.large;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const { message, usage, costCents } = await anthropic.createMessage({
      model,
      max_tokens: 4000,
      system: [{ type: "text", text: SYSTEM, cache_control: { type: "ephemeral" } }],
      tools: [DRAFT_CAMPAIGN_TOOL],
      tool_choice: { type: "tool", name: DRAFT_CAMPAIGN_TOOL.name },
      messages: [{ role: "user", content: `Draft a campaign for this client and ICP.\n<icp>${JSON.stringify(icp)}</icp>` }],
    } as never);
    const block = (message.content as Array<{ type: string; input?: unknown }>).find((b) => b.type === "tool_use");
    const parsed = DraftSchema.safeParse(block?.input);
    if (parsed.success) {
      return {
        name: parsed.data.name,
        description: parsed.data.description ?? null,
        steps: toSteps(parsed.data),
        generation: { source: "claude", model, usage, cost_cents: costCents },
      };
    }
    if (attempt === 2) {
      throw new ProviderError({
        provider: "anthropic", operation: "draft_campaign", code: "malformed", retryable: false,
        message: `the draft did not match the campaign schema: ${parsed.error.issues.map((i) => i.path.join(".") || i.message).join(", ")}`,
      });
    }
  }
  throw new Error("unreachable");
}
