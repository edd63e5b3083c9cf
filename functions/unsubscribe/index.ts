// The unsubscribe link and RFC 8058 one-click endpoint every message carries (compliance S3, U1, M1;
// product.md §6). No login and nothing asked of the person: the signed token in ?t= names them.
//
//   GET  /unsubscribe?t=…   a plain confirmation page with one button. It changes NOTHING: mail
//                           security scanners fetch every link in a message, and a GET that
//                           unsubscribed would unsubscribe people who never clicked.
//   POST /unsubscribe?t=…   the button (a form post) or a mail client's one-click request (body
//                           List-Unsubscribe=One-Click): the person is unsubscribed everywhere —
//                           every identifier suppressed globally, every assignment ended, pending
//                           steps cancelled (shared/engines/suppress.ts) — and a "done" page answers.
// A bad or expired token is a 400 page and nothing changes. Posting twice changes nothing twice.
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { asService } from "../../shared/db/client.ts";
import { unsubscribeSecret, verifyUnsubscribeToken, type VerifiedUnsubscribe } from "../../shared/compliance/unsubscribe-token.ts";
import { unsubscribePerson } from "../../shared/engines/suppress.ts";
import { createFunctionApp, type AppEnv } from "../../shared/http/app.ts";
import { serveFunction } from "../../shared/http/serve.ts";

const app = createFunctionApp("unsubscribe", {
  title: "Unsubscribe",
  description: "One-click unsubscribe (RFC 8058) and the unsubscribe link's confirmation page. Public: the signed token is the only credential.",
});

const ONE_CLICK = "List-Unsubscribe=One-Click";
const Query = z.object({ t: z.string().max(500).optional().openapi({ description: "The signed token from the message's link" }) });
const html = (description: string) => ({ description, content: { "text/html": { schema: z.string() } } });

// ---------------------------------------------------------------------------------------------
// Pages (no personal data on any of them: the page may be opened by a scanner or a forwardee)
// ---------------------------------------------------------------------------------------------

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1.25rem; color: #1f2328; line-height: 1.5; }
  h1 { font-size: 1.5rem; }
  button { font-size: 1rem; padding: 0.7rem 1.4rem; border: 0; border-radius: 6px; background: #1f6feb; color: #fff; cursor: pointer; }
  p.small { color: #59636e; font-size: 0.9rem; }
</style>
</head>
<body>
${body}
</body>
</html>
`;
}

const confirmPage = (token: string) => page("Unsubscribe", `<h1>Unsubscribe</h1>
<p>Press the button to stop all messages from us, and from us on behalf of our clients, by email, text message, phone, LinkedIn and post.</p>
<form method="post" action="?t=${token}">
  <input type="hidden" name="t" value="${token}">
  <button type="submit" name="confirm" value="yes">Unsubscribe</button>
</form>
<p class="small">You do not need to sign in or give any details.</p>`);

const donePage = () => page("You are unsubscribed", `<h1>You are unsubscribed</h1>
<p>You will not receive any more messages from us or from us on behalf of our clients. This took effect immediately.</p>`);

const invalidPage = () => page("Link not valid", `<h1>This link is not valid</h1>
<p>This unsubscribe link is incomplete or has expired, so nothing was changed.</p>
<p>To stop our messages, reply to any of them with the word <strong>unsubscribe</strong> (or text <strong>STOP</strong>), and we will remove you.</p>`);

const unavailablePage = () => page("Try again shortly", `<h1>Please try again in a few minutes</h1>
<p>We could not process unsubscribes just now. Nothing was changed. You can also reply to any of our messages with the word <strong>unsubscribe</strong>.</p>`);

function send(c: Context<AppEnv>, body: string, status: 200 | 400 | 503) {
  // the token is a credential: not cached, not leaked in a Referer, not indexed
  c.header("cache-control", "no-store");
  c.header("referrer-policy", "no-referrer");
  c.header("x-robots-tag", "noindex");
  return c.html(body, status);
}

async function check(token: string | undefined): Promise<VerifiedUnsubscribe | "unavailable"> {
  if (!token) return { ok: false, reason: "malformed" };
  let secret: string;
  try {
    secret = unsubscribeSecret();
  } catch {
    return "unavailable";
  }
  return await verifyUnsubscribeToken(token, secret, new Date());
}

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

app.openapi(
  createRoute({
    method: "get", path: "/", summary: "The confirmation page (changes nothing)",
    request: { query: Query },
    responses: { 200: html("A page with one Unsubscribe button"), 400: html("The token is missing, altered or expired"), 503: html("UNSUBSCRIBE_SECRET is not configured") },
  }),
  async (c) => {
    const token = c.req.valid("query").t?.trim();
    const v = await check(token);
    if (v === "unavailable") {
      c.var.log.error("unsubscribe link opened but UNSUBSCRIBE_SECRET is not set");
      return send(c, unavailablePage(), 503);
    }
    if (!v.ok) return send(c, invalidPage(), 400);
    return send(c, confirmPage(token!), 200);
  },
);

app.openapi(
  createRoute({
    method: "post", path: "/", summary: "Unsubscribe the person everywhere (the page's button, or RFC 8058 one-click)",
    description: "Body (any of): a mail client's one-click `List-Unsubscribe=One-Click` (form-encoded or multipart), or the confirmation page's form (`t`, `confirm`). The token may be in ?t= or in the form field t. The body is read as sent, whatever its content type.",
    request: { query: Query },
    responses: { 200: html("Unsubscribed (also when already unsubscribed)"), 400: html("The token is missing, altered or expired; nothing changed"), 503: html("UNSUBSCRIBE_SECRET is not configured") },
  }),
  async (c) => {
    // Read the raw body ourselves: mail clients send one-click bodies with varying content types.
    const raw = await c.req.text().catch(() => "");
    const type = c.req.header("content-type") ?? "";
    let form = new URLSearchParams();
    if (type.startsWith("multipart/form-data")) {
      try {
        const fd = await new Response(raw, { headers: { "content-type": type } }).formData();
        for (const [k, v] of fd) if (typeof v === "string") form.append(k, v);
      } catch {
        form = new URLSearchParams();
      }
    } else form = new URLSearchParams(raw.trim());
    const oneClick = form.get("List-Unsubscribe") === "One-Click" || raw.trim() === ONE_CLICK;
    const token = (c.req.valid("query").t ?? form.get("t") ?? "").trim() || undefined;

    const v = await check(token);
    if (v === "unavailable") {
      c.var.log.error("unsubscribe request refused: UNSUBSCRIBE_SECRET is not set");
      return send(c, unavailablePage(), 503);
    }
    if (!v.ok) {
      c.var.log.warn("unsubscribe token refused", { reason: v.reason, one_click: oneClick });
      return send(c, invalidPage(), 400);
    }
    const via = oneClick ? "one_click" : "link";
    const result = await asService({ role: "service:unsubscribe", reason: `unsubscribed by ${via === "one_click" ? "one-click" : "link"}` }, async (tx) => {
      const [s] = v.sendId ? await tx`select client_id from public.sends where id = ${v.sendId}` : [];
      // the same link used again is the same request: it keeps the first one's time (so the company
      // pause it started is not pushed on) and changes nothing
      const [first] = await tx`
        select coalesce((
          select occurred_at from public.events
          where kind = 'unsubscribed' and entity_type = 'lead' and entity_id = ${v.leadId}::uuid
            and data->>'send_id' is not distinct from ${v.sendId}::text
          order by occurred_at limit 1), now()) as occurred_at`;
      const stopped = await unsubscribePerson(tx, {
        leadId: v.leadId,
        reason: via === "one_click" ? "one_click_unsubscribe" : "link_unsubscribe",
        source: `unsubscribe:${v.sendId ?? "link"}`,
        clientId: (s?.client_id as string | undefined) ?? null,
        at: first.occurred_at as Date,
      });
      // one audit row per person and message, however often the link is used
      await tx`
        insert into public.events (client_id, entity_type, entity_id, kind, actor_id, actor_role, reason, data)
        select ${(s?.client_id as string | undefined) ?? null}::uuid, 'lead', ${v.leadId}::uuid, 'unsubscribed',
               private.current_actor_id(), private.current_actor_role(), ${`unsubscribe ${via}`},
               ${tx.json({ via, send_id: v.sendId, suppressions_added: stopped.suppressionsAdded } as never)}
        where not exists (
          select 1 from public.events e
          where e.kind = 'unsubscribed' and e.entity_type = 'lead' and e.entity_id = ${v.leadId}::uuid
            and e.data->>'send_id' is not distinct from ${v.sendId}::text)`;
      return stopped;
    });
    if (!result.leadIds.length) c.var.log.warn("unsubscribe for a person no longer in the pool", { lead_id: v.leadId, send_id: v.sendId });
    c.var.log.info("unsubscribed", { via, lead_id: v.leadId, send_id: v.sendId, suppressions_added: result.suppressionsAdded, assignments_stopped: result.assignmentsStopped });
    return send(c, donePage(), 200);
  },
);

export default app;
serveFunction(app);
