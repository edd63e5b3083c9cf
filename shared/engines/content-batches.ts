// Record/replay around writeStep, so a message written through the Message Batches API (half
// price, for steps nobody waits on) is built by exactly the code that writes it live: the same
// prompt, the same checks, the same one retry, the same template fallbacks.
//
//   record: writeStep runs with recordingClient; its first Claude call is not made but captured
//           (BatchDeferred carries the params), and those params become the step's batch request.
//           Steps that need no Claude (template mode, no room, budget) return normally and are
//           stored at once.
//   replay: when the batch has ended, writeStep runs again with replayClient, which answers that
//           first call with the batch's message (usage and cost at batch prices) and passes any
//           later call — the one retry with the problems fed back — to the live client.
//
// Only single-call tiers (Warm: write_message, Cool: write_first_line) are batched; Hot research
// is a conversation of dependent calls and stays live. The caller (step-content.ts) chooses the
// rows; the guards here only make a mismatch fail loudly instead of storing the wrong message.
import {
  addUsage,
  roundCents,
  ZERO_USAGE,
  type AnthropicClient,
  type BatchResultItem,
  type ClaudeMessage,
  type MessageParams,
  type MessageResult,
} from "../integrations/anthropic.ts";
import { writeStep, type WriteStepDeps, type WriteStepInput, type WrittenStep } from "./content.ts";

/**
 * Thrown by recordingClient instead of calling Claude. Not a ProviderError, so writeStep neither
 * falls back to a template nor retries: it rethrows it to the caller.
 */
export class BatchDeferred extends Error {
  readonly params: MessageParams;
  constructor(params: MessageParams) {
    super(`deferred to a message batch (${params.model})`);
    this.name = "BatchDeferred";
    this.params = params;
  }
}

/** A batch result that cannot answer the step as it is now (e.g. the lead went from Warm to Cool). */
export class BatchResultMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BatchResultMismatch";
  }
}

/** The client methods that are not createMessage, passed through unchanged. */
function passThrough(live: AnthropicClient): Omit<AnthropicClient, "createMessage"> {
  return {
    sdk: live.sdk,
    models: live.models,
    baseUrl: live.baseUrl,
    submitBatch: (requests, ctx) => live.submitBatch(requests, ctx),
    batchStatus: (id, ctx) => live.batchStatus(id, ctx),
    batchResults: (id, ctx) => live.batchResults(id, ctx),
  };
}

export interface RecordingClient extends AnthropicClient {
  /** The params of the first createMessage call, once there was one. */
  readonly recorded: MessageParams | null;
}

/** A client whose createMessage records the first call's params and throws BatchDeferred with them. */
export function recordingClient(live: AnthropicClient): RecordingClient {
  let recorded: MessageParams | null = null;
  return {
    ...passThrough(live),
    get recorded() {
      return recorded;
    },
    async createMessage(params): Promise<MessageResult> {
      recorded ??= params;
      throw new BatchDeferred(recorded);
    },
  };
}

export interface ReplayClient extends AnthropicClient {
  /** Whether the batch's message answered a call (false: writeStep stopped before calling Claude). */
  readonly replayed: boolean;
}

/** The forced tool a request names, if any. */
function forcedTool(params: MessageParams): string | null {
  const choice = params.tool_choice;
  return choice && choice.type === "tool" ? choice.name : null;
}

/** An alias and the dated snapshot the API may answer with (claude-haiku-4-5 / claude-haiku-4-5-20251001) match. */
function sameModel(asked: string, answered: string): boolean {
  return asked === answered || answered.startsWith(`${asked}-`) || asked.startsWith(`${answered}-`);
}

/**
 * The batch's message must answer the request writeStep makes now: same model, and when a tool is
 * forced, a reply that called it (a reply with no tool call at all — a refusal — is writeStep's to
 * handle).
 */
function assertAnswers(params: MessageParams, message: ClaudeMessage): void {
  if (!sameModel(params.model, message.model)) {
    throw new BatchResultMismatch(`the batch answered with ${message.model}; the step now asks ${params.model}`);
  }
  const tool = forcedTool(params);
  const used = message.content.flatMap((b) => (b.type === "tool_use" ? [b.name] : []));
  if (tool && used.length > 0 && !used.includes(tool)) {
    throw new BatchResultMismatch(`the batch answered with ${used.join(", ")}; the step now asks for ${tool}`);
  }
}

/**
 * A client whose first createMessage is answered by the batch result (its message, usage and
 * batch-price cost) and whose later calls (the retry) go to the live client at the live price.
 */
export function replayClient(live: AnthropicClient, result: BatchResultItem): ReplayClient {
  let replayed = false;
  return {
    ...passThrough(live),
    get replayed() {
      return replayed;
    },
    async createMessage(params, ctx) {
      if (replayed) return await live.createMessage(params, ctx);
      replayed = true;
      if (result.type !== "succeeded" || !result.message) {
        throw new BatchResultMismatch(`the batch item ${result.customId} is ${result.type}, not a message`);
      }
      assertAnswers(params, result.message);
      return { message: result.message, usage: result.usage ?? ZERO_USAGE, costCents: result.costCents ?? 0 };
    },
  };
}

export type RecordedStep =
  | { kind: "deferred"; params: MessageParams }
  | { kind: "written"; written: WrittenStep };

/**
 * writeStep with its first Claude call captured: the params to batch, or the finished step when it
 * needed no Claude. Anything else writeStep throws (ContentRefusedError …) is the caller's.
 */
export async function recordStep(input: WriteStepInput, deps: WriteStepDeps & { anthropic: AnthropicClient }): Promise<RecordedStep> {
  try {
    return { kind: "written", written: await writeStep(input, { ...deps, anthropic: recordingClient(deps.anthropic) }) };
  } catch (err) {
    if (err instanceof BatchDeferred) return { kind: "deferred", params: err.params };
    throw err;
  }
}

/**
 * writeStep answered from a batch result (see replayClient). When writeStep stopped before its
 * first call (the client's budget ran out since the batch was sent), the template it returns
 * carries the batch's cost anyway: Anthropic billed it.
 */
export async function replayStep(
  input: WriteStepInput,
  deps: WriteStepDeps & { anthropic: AnthropicClient },
  result: BatchResultItem,
): Promise<WrittenStep> {
  const client = replayClient(deps.anthropic, result);
  const written = await writeStep(input, { ...deps, anthropic: client });
  if (client.replayed || result.type !== "succeeded") return written;
  const billed = result.costCents ?? 0;
  return {
    ...written,
    model: written.model ?? result.message?.model ?? null,
    usage: addUsage(written.usage, result.usage ?? ZERO_USAGE),
    costCents: roundCents(written.costCents + billed),
    notes: [...written.notes, `the batch result went unused (${billed} cents billed): ${written.source}`],
  };
}
