// The contract between the outreach dispatcher and the five channel adapters (email via Salesforge,
// SMS via Twilio or ClickSend, voice via Vapi, LinkedIn via Unipile, direct mail via PostGrid).
// The send gate has already decided that a message may go; an adapter only talks to its provider.
// Adapters throw ProviderError (shared/integrations/provider-http.ts) on failure: retryable tells
// the dispatcher whether trying again later may succeed.

export const CHANNELS = ["email", "sms", "voice", "linkedin", "mail"] as const;
export type Channel = (typeof CHANNELS)[number];

/** LinkedIn is paced like a person: a profile view, then the invitation, then messages once accepted. */
export type LinkedInAction = "profile_view" | "invitation" | "message";

export interface PostalAddress {
  line1: string;
  line2?: string | null;
  city: string;
  state: string;
  postcode: string;
  /** ISO 3166-1 alpha-2 */
  country: string;
}

export interface Recipient {
  firstName?: string | null;
  lastName?: string | null;
  company?: string | null;
  title?: string | null;
  email?: string | null;
  /** E.164 */
  phoneE164?: string | null;
  linkedinUrl?: string | null;
  postalAddress?: PostalAddress | null;
}

export interface Sender {
  /** senders.id */
  id: string;
  /** mailbox address, phone number (E.164 or a registered alphanumeric id), LinkedIn account id, or a return-address label */
  address: string;
  displayName?: string | null;
  /** The provider's own id for this sender (Salesforge mailbox id, Unipile account_id, Vapi phoneNumberId, PostGrid contact id). */
  providerAccountId?: string | null;
  /** Return address for direct mail. */
  postalAddress?: PostalAddress | null;
}

export interface VoiceScript {
  firstMessage: string;
  /** System prompt of the voice agent, including the knowledge base built for Hot leads. */
  systemPrompt: string;
  /** ElevenLabs voice id (configured, never hard-coded). */
  voiceId: string;
  maxDurationSeconds?: number;
}

export interface SendRequest {
  /** Our sends.id: the reference echoed back by the provider (custom_string, metadata, externalId, Idempotency-Key). */
  sendId: string;
  clientId: string;
  leadId: string;
  channel: Channel;
  sender: Sender;
  recipient: Recipient;
  subject?: string | null;
  body: string;
  /** Email: List-Unsubscribe, List-Unsubscribe-Post and the like. */
  headers?: Record<string, string>;
  /** Email follow-up: the provider's id of the earlier message in the same thread. */
  threadRef?: string | null;
  /** LinkedIn: which action this step performs (default "message"). */
  linkedinAction?: LinkedInAction;
  voice?: VoiceScript;
  /** Where the provider posts delivery/status webhooks for this message. */
  statusCallbackUrl?: string | null;
  signal?: AbortSignal;
}

export type SendStatus = "accepted" | "queued" | "sent" | "delivered";

export interface SendResult {
  provider: string;
  /** The provider's id for the message, call, invitation or letter. */
  providerMessageId: string;
  status: SendStatus;
  /** What the provider charged or will charge, in US cents (0 when unknown). */
  costCents: number;
  /** Email: the id later follow-ups thread onto. */
  threadRef?: string | null;
}

export interface ChannelAdapter {
  readonly provider: string;
  readonly channel: Channel;
  send(req: SendRequest): Promise<SendResult>;
  /**
   * After a crash between the provider call and recording its answer: did the provider accept a
   * message with this reference? null = not found (safe to send), undefined = the provider can't tell.
   */
  findByReference?(sendId: string, req: SendRequest): Promise<SendResult | null | undefined>;
}
