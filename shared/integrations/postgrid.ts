// PostGrid Print & Mail client and the direct-mail channel adapter (providers.md §13): letters are
// created with POST /letters (x-api-key, JSON, inline `to`/`from` contacts, html body), carry our
// send id in metadata and in the Idempotency-Key header, and are found again by that id after a crash.
// Status changes come back as letter.updated webhooks (JWT bodies, verified in shared/webhooks/).
//
// A create is attempted once per call: the dispatcher owns retries, after asking findByReference, and
// the Idempotency-Key makes a repeated create with the same send id return the same letter (as
// integrators report; unconfirmed, so findByReference is asked first anyway).
import { z } from "zod";
import type { Redis } from "@upstash/redis";
import { readEnv } from "../config/env.ts";
import { PROVIDERS } from "../config/providers.ts";
import type { ChannelAdapter, PostalAddress, SendRequest, SendResult, SendStatus } from "../channels/types.ts";
import {
  isLocalUrl,
  lenient,
  ProviderError,
  providerFetch,
  rateLimitFromEnv,
  tolerantArray,
  type ProviderCallContext,
  type ProviderSpec,
  type RateLimitSpec,
  type RecordCall,
  type RetrySpec,
  type SqlTag,
} from "./provider-http.ts";

/** An environment variable, or undefined when unset or blank. */
function envValue(name: string): string | undefined {
  return readEnv(name)?.trim() || undefined;
}

export const POSTGRID_DEFAULT_BASE_URL = "https://api.postgrid.com/print-mail/v1";

export interface PostgridConfig {
  /** test_sk_… (test mode, nothing printed) or live_sk_… */
  apiKey?: string;
  baseUrl?: string;
  /** Default 60 calls/min shared (POSTGRID_RATE_LIMIT overrides). */
  rateLimit?: RateLimitSpec | false;
  retry?: RetrySpec;
  timeoutMs?: number;
  redis?: Redis | null;
  record?: RecordCall;
  sql?: SqlTag;
  fetch?: typeof fetch;
}

/** A PostGrid contact, inline on a letter. firstName or companyName is required. */
export interface PostgridContactInput {
  firstName?: string;
  lastName?: string;
  companyName?: string;
  addressLine1: string;
  addressLine2?: string;
  city: string;
  provinceOrState: string;
  postalOrZip: string;
  /** ISO 3166-1 alpha-2 */
  countryCode: string;
}

export type PostgridLetterSize = "us_letter" | "us_legal" | "a4";
export type PostgridAddressPlacement = "top_first_page" | "insert_blank_page";

export interface PostgridLetterParams {
  /** An inline contact or a contact id (contact_…). */
  to: PostgridContactInput | string;
  from: PostgridContactInput | string;
  html: string;
  size?: PostgridLetterSize;
  color?: boolean;
  doubleSided?: boolean;
  addressPlacement?: PostgridAddressPlacement;
  mailingClass?: string;
  description?: string;
  metadata?: Record<string, string>;
}

export type PostgridLetterStatus = "ready" | "printing" | "processed_for_delivery" | "completed" | "cancelled";

export interface PostgridLetter {
  id: string;
  status: string;
  live: boolean | null;
  metadata: Record<string, string>;
  description: string | null;
  sendDate: string | null;
  createdAt: string | null;
  trackingNumber: string | null;
  /** USPS barcode tracking: entered_mail_stream, out_for_delivery, returned_to_sender. */
  imbStatus: string | null;
  url: string | null;
}

export interface PostgridClient {
  /** POST /letters with Idempotency-Key. */
  createLetter(params: PostgridLetterParams, idempotencyKey: string, ctx?: ProviderCallContext): Promise<PostgridLetter>;
  /** GET /letters/{id}; null when PostGrid has no such letter. */
  getLetter(id: string, ctx?: ProviderCallContext): Promise<PostgridLetter | null>;
  /** GET /letters?search&limit&skip */
  listLetters(query?: { search?: string; limit?: number; skip?: number }, ctx?: ProviderCallContext): Promise<{ letters: PostgridLetter[]; totalCount: number | null }>;
}

const MetadataWire = z.unknown().optional().transform((v): Record<string, string> => {
  if (!v || typeof v !== "object" || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"));
});

const LetterWire = z.object({
  id: z.string().min(1),
  status: z.string(),
  live: lenient.boolean,
  metadata: MetadataWire,
  description: lenient.string,
  sendDate: lenient.string,
  createdAt: lenient.string,
  trackingNumber: lenient.string,
  imbStatus: lenient.string,
  url: lenient.string,
}).transform((l): PostgridLetter => ({
  id: l.id, status: l.status, live: l.live, metadata: l.metadata, description: l.description, sendDate: l.sendDate,
  createdAt: l.createdAt, trackingNumber: l.trackingNumber, imbStatus: l.imbStatus, url: l.url,
}));

const LetterListWire = z.object({
  data: tolerantArray(LetterWire),
  totalCount: lenient.number,
});

export function createPostgridClient(config: PostgridConfig = {}): PostgridClient {
  const baseUrl = config.baseUrl ?? envValue(PROVIDERS.postgrid.baseUrl) ?? POSTGRID_DEFAULT_BASE_URL;
  const apiKey = config.apiKey ?? envValue(PROVIDERS.postgrid.key) ?? (isLocalUrl(baseUrl) ? "sandbox" : undefined);
  const spec: ProviderSpec = {
    provider: "postgrid",
    baseUrl,
    headers: { "x-api-key": apiKey ?? "" },
    missingCredentials: apiKey ? undefined : "POSTGRID_API_KEY is not set",
    rateLimit: config.rateLimit ?? rateLimitFromEnv("POSTGRID_RATE_LIMIT", { limit: 60, window: "1 m" }),
    retry: config.retry,
    timeoutMs: config.timeoutMs ?? 20_000,
    redis: config.redis,
    record: config.record,
    sql: config.sql,
    fetch: config.fetch,
  };
  // Creates print and post a letter: one attempt per call (see the header).
  const createSpec: ProviderSpec = { ...spec, retry: { ...config.retry, attempts: 1 } };

  return {
    async createLetter(params, idempotencyKey, ctx) {
      if (!idempotencyKey.trim()) {
        throw new ProviderError({ provider: "postgrid", operation: "letters.create", code: "invalid_request", retryable: false, message: "an Idempotency-Key is required" });
      }
      const res = await providerFetch(createSpec, {
        operation: "letters.create",
        method: "POST",
        path: "/letters",
        body: params,
        headers: { "idempotency-key": idempotencyKey },
        schema: LetterWire,
      }, ctx);
      return res.data;
    },

    async getLetter(id, ctx) {
      const res = await providerFetch(spec, {
        operation: "letters.get",
        path: `/letters/${encodeURIComponent(id)}`,
        schema: LetterWire.nullable(),
        onStatus: { 404: () => null },
      }, ctx);
      return res.data;
    },

    async listLetters(query = {}, ctx) {
      const res = await providerFetch(spec, {
        operation: "letters.list",
        path: "/letters",
        query: { search: query.search, limit: query.limit ?? 10, skip: query.skip ?? 0 },
        schema: LetterListWire,
      }, ctx);
      return { letters: res.data.data, totalCount: res.data.totalCount };
    },
  };
}

/** The client configured from POSTGRID_API_KEY and POSTGRID_BASE_URL. */
export function postgridFromEnv(overrides: Partial<PostgridConfig> = {}): PostgridClient {
  return createPostgridClient(overrides);
}

// ---------------------------------------------------------------------------------------------
// The "mail" channel adapter
// ---------------------------------------------------------------------------------------------

export interface PostgridMailAdapterOptions {
  client?: PostgridClient;
  /** Letter settings (default: A4, black and white, single-sided, the address on an added blank page). */
  letter?: Pick<PostgridLetterParams, "size" | "color" | "doubleSided" | "addressPlacement" | "mailingClass">;
  /** What a letter costs in US cents, for sends.cost_cents (PostGrid's answer carries no price; default 0 = unknown). */
  centsPerLetter?: number;
}

// Our rendered body is not laid out around an address window, so by default the address goes on a blank first page.
const LETTER_DEFAULTS = { size: "a4", color: false, doubleSided: false, addressPlacement: "insert_blank_page" } as const;

function invalid(message: string): ProviderError {
  return new ProviderError({ provider: "postgrid", operation: "letters.create", code: "invalid_request", retryable: false, message });
}

function addressOf(a: PostalAddress): Omit<PostgridContactInput, "firstName" | "lastName" | "companyName"> {
  return {
    addressLine1: a.line1,
    ...(a.line2 ? { addressLine2: a.line2 } : {}),
    city: a.city,
    provinceOrState: a.state,
    postalOrZip: a.postcode,
    countryCode: a.country.toUpperCase(),
  };
}

function completeAddress(a: PostalAddress | null | undefined): a is PostalAddress {
  return !!a && !!a.line1?.trim() && !!a.city?.trim() && !!a.state?.trim() && !!a.postcode?.trim() && /^[A-Za-z]{2}$/.test(a.country ?? "");
}

function statusOf(letter: PostgridLetter): SendStatus {
  if (letter.status === "completed") return "delivered";
  if (letter.status === "printing" || letter.status === "processed_for_delivery") return "sent";
  return "accepted";
}

/** Builds the POST /letters body for a send (exported for tests and previews). */
export function postgridLetterFor(req: SendRequest, letter: PostgridMailAdapterOptions["letter"] = {}): PostgridLetterParams {
  const r = req.recipient;
  if (!completeAddress(r.postalAddress)) throw invalid("the recipient has no complete postal address");
  const firstName = r.firstName?.trim() || undefined;
  const lastName = r.lastName?.trim() || undefined;
  const companyName = r.company?.trim() || undefined;
  if (!firstName && !companyName) throw invalid("a letter needs the recipient's first name or company");
  // The return address inline; a PostGrid contact id (sender.providerAccountId) when there is none.
  let from: PostgridContactInput | string;
  if (completeAddress(req.sender.postalAddress)) {
    from = { companyName: req.sender.displayName?.trim() || req.sender.address, ...addressOf(req.sender.postalAddress) };
  } else if (req.sender.providerAccountId?.trim()) {
    from = req.sender.providerAccountId.trim();
  } else {
    throw invalid("the sender has neither a PostGrid contact id nor a complete return address");
  }
  if (!req.body.trim()) throw invalid("empty letter body");
  return {
    to: { ...(firstName ? { firstName } : {}), ...(lastName ? { lastName } : {}), ...(companyName ? { companyName } : {}), ...addressOf(r.postalAddress) },
    from,
    html: req.body,
    ...LETTER_DEFAULTS,
    ...letter,
    description: `aos send ${req.sendId}`,
    metadata: { sendId: req.sendId },
  };
}

export function postgridMailAdapter(opts: PostgridMailAdapterOptions = {}): ChannelAdapter {
  let client = opts.client;
  const pg = () => (client ??= postgridFromEnv());
  const result = (letter: PostgridLetter): SendResult => ({
    provider: "postgrid",
    providerMessageId: letter.id,
    status: statusOf(letter),
    costCents: opts.centsPerLetter ?? 0,
    threadRef: null,
  });

  return {
    provider: "postgrid",
    channel: "mail",

    async send(req) {
      const params = postgridLetterFor(req, opts.letter);
      const letter = await pg().createLetter(params, req.sendId, { leadId: req.leadId, clientId: req.clientId, signal: req.signal });
      return result(letter);
    },

    async findByReference(sendId, req) {
      const { letters } = await pg().listLetters({ search: sendId, limit: 20 }, { leadId: req.leadId, clientId: req.clientId, signal: req.signal });
      const letter = letters.find((l) => l.metadata.sendId === sendId);
      return letter ? result(letter) : null;
    },
  };
}
