// The meetings function and the closer engine on the local stack: booking by hand moves the lead's
// assignment to meeting_booked through the state machine (or is a 409 where it may not), outcomes
// move it on (held, no-show, rescheduled back to booked, cancelled stays), won/lost close it, illegal
// steps are 409s that change nothing, every change reaches the client's webhooks once, and tenancy:
// another client's meeting is a 404 and a viewer cannot book. Also the calendar path (a meeting
// upserted by a Cal.com webhook, then meetingBooked with strict: false).
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "../../dev/stack.ts";
import { asService, db } from "../../shared/db/client.ts";
import { meetingBooked, recordMeetingOutcome } from "../../shared/engines/closer.ts";
import { call, getStack, leadInput, makeUser, unique, type TestUser } from "../helpers/stack.ts";
import { until } from "../helpers/until.ts";

let stack: Stack;
let ownerA: TestUser, memberA: TestUser, viewerA: TestUser, ownerB: TestUser, admin: TestUser;
let receiver: Server;
const received: Array<{ headers: Record<string, string | string[] | undefined>; body: { type: string; data: Record<string, any> } }> = [];

const HOUR = 3_600_000;
const at = (hoursFromNow: number) => new Date(Math.round(Date.now() / 1000) * 1000 + hoursFromNow * HOUR).toISOString();

/** A lead of `user`'s client whose assignment has been walked to `path`'s last status. */
async function leadAt(user: TestUser, path: string[]): Promise<{ leadId: string; assignmentId: string }> {
  const res = await call(stack, "leads", { token: user.token, body: leadInput() });
  expect(res.status).toBe(201);
  const assignmentId = res.body.assignment.id as string;
  for (const status of path) await db()`update public.lead_assignments set status = ${status} where id = ${assignmentId}`;
  return { leadId: res.body.id, assignmentId };
}
const REPLIED = ["queued", "in_sequence", "replied"];

async function assignmentStatus(id: string): Promise<string> {
  const [row] = await db()`select status from public.lead_assignments where id = ${id}`;
  return row.status;
}

async function deliveries(clientId: string, eventType?: string) {
  return await db()`
    select event_type, event_id, payload from public.webhook_deliveries
    where client_id = ${clientId} ${eventType ? db()`and event_type = ${eventType}` : db()``}
    order by created_at`;
}

async function book(user: TestUser, body: Record<string, unknown>) {
  return await call(stack, "meetings", { token: user.token, body: { starts_at: at(24), ends_at: at(24.5), ...body } });
}

beforeAll(async () => {
  stack = await getStack();
  const a = unique("meet-a"), b = unique("meet-b");
  ownerA = await makeUser(stack, { client: a, role: "owner" });
  memberA = await makeUser(stack, { client: a, role: "member" });
  viewerA = await makeUser(stack, { client: a, role: "viewer" });
  ownerB = await makeUser(stack, { client: b, role: "owner" });
  admin = await makeUser(stack, { role: "admin" });

  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (ch) => chunks.push(ch));
    req.on("end", () => {
      received.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
  // client A listens to everything the closer emits
  await db()`insert into public.client_webhooks (client_id, url, events, secret)
    values (${ownerA.clientId}, ${url}, ${["meeting.booked", "meeting.held", "meeting.no_show", "meeting.rescheduled", "meeting.cancelled", "lead.won", "lead.lost"]},
            'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')`;
});

afterAll(() => new Promise<void>((r) => receiver.close(() => r())));

describe("booking by hand", () => {
  it("books for a replied lead: 201, the assignment moves to meeting_booked, the client hears meeting.booked", async () => {
    const { leadId, assignmentId } = await leadAt(ownerA, REPLIED);
    const res = await book(memberA, { lead_id: leadId, title: "Intro call", notes: "prefers mornings" });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      lead_id: leadId, assignment_id: assignmentId, client_id: ownerA.clientId, source: "manual", status: "booked",
      assignment_status: "meeting_booked", title: "Intro call", created_by: memberA.userId, changed: true, events: ["meeting.booked"],
    });
    expect(res.body.attendee_email).toBe(res.body.lead.email);
    expect(await assignmentStatus(assignmentId)).toBe("meeting_booked");
    const [audit] = await db()`select from_status, to_status, reason, actor_id from public.events
      where entity_id = ${assignmentId} and kind = 'status_changed' order by id desc limit 1`;
    expect(audit).toEqual({ from_status: "replied", to_status: "meeting_booked", reason: "meeting booked by hand", actor_id: memberA.userId });
    const [d] = await deliveries(ownerA.clientId!, "meeting.booked").then((rows) => rows.filter((r) => r.payload.data.meeting.id === res.body.id));
    expect(d.event_id).toBe(`meeting.booked:${res.body.id}`);
    expect(d.payload.data).toMatchObject({ lead: { id: leadId }, assignment: { id: assignmentId, status: "meeting_booked" }, meeting: { title: "Intro call" } });
    // the delivery flow takes it to the client's endpoint
    const got = await until("meeting.booked at the receiver", async () => received.find((r) => r.body.data.meeting?.id === res.body.id));
    expect(got.headers["webhook-id"]).toBe(`meeting.booked:${res.body.id}`);
  });

  it("from in_sequence the booking is the lead's answer: replied, then meeting_booked, both audited", async () => {
    const { assignmentId } = await leadAt(ownerA, ["queued", "in_sequence"]);
    const res = await book(ownerA, { assignment_id: assignmentId });
    expect(res.status).toBe(201);
    const steps = await db()`select from_status, to_status from public.events where entity_id = ${assignmentId} and kind = 'status_changed' order by id`;
    expect(steps.slice(-2)).toEqual([{ from_status: "in_sequence", to_status: "replied" }, { from_status: "replied", to_status: "meeting_booked" }]);
  });

  it("a lead never contacted (assigned) or unsubscribed cannot be booked: 409 naming the states, nothing written", async () => {
    for (const path of [[], ["queued", "in_sequence", "unsubscribed"]]) {
      const { leadId, assignmentId } = await leadAt(ownerA, path);
      const before = await assignmentStatus(assignmentId);
      const res = await book(ownerA, { lead_id: leadId });
      expect(res.status).toBe(409);
      expect(res.body.error).toMatchObject({ code: "illegal_transition", details: { entity: "assignment", from: before, to: "meeting_booked" } });
      expect(await db()`select id from public.meetings where assignment_id = ${assignmentId}`).toHaveLength(0);
      expect(await assignmentStatus(assignmentId)).toBe(before);
    }
  });

  it("a viewer cannot book; another client's lead is a 404; bad input names the field", async () => {
    const { leadId, assignmentId } = await leadAt(ownerA, REPLIED);
    const viewer = await book(viewerA, { lead_id: leadId });
    expect(viewer.status).toBe(403);
    const other = await book(ownerB, { lead_id: leadId });
    expect(other.status).toBe(404);
    expect(await db()`select id from public.meetings where assignment_id = ${assignmentId}`).toHaveLength(0);

    const both = await book(ownerA, { lead_id: leadId, assignment_id: assignmentId });
    expect(both.status).toBe(400);
    expect(both.body.error.details[0].field).toBe("lead_id");
    const backwards = await book(ownerA, { lead_id: leadId, starts_at: at(5), ends_at: at(4) });
    expect(backwards.status).toBe(400);
    expect(backwards.body.error.details.map((d: { field: string }) => d.field)).toContain("ends_at");
    expect((await book(ownerA, { lead_id: leadId, starts_at: "tomorrow" })).status).toBe(400);
  });
});

describe("outcomes and closing", () => {
  it("held → meeting_held, then won → lead.won; illegal steps are 409s that change nothing; repeats change nothing", async () => {
    const { assignmentId } = await leadAt(ownerA, REPLIED);
    const meeting = (await book(ownerA, { assignment_id: assignmentId })).body;

    const early = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "won" } });
    expect(early.status).toBe(409);
    expect(early.body.error.details).toEqual({ entity: "assignment", from: "meeting_booked", to: "won" });

    const held = await call(stack, `meetings/${meeting.id}/outcome`, { token: memberA.token, body: { outcome: "held", notes: "went well" } });
    expect(held.status).toBe(200);
    expect(held.body).toMatchObject({ status: "held", assignment_status: "meeting_held", notes: "went well", changed: true, events: ["meeting.held"] });
    expect(held.body.outcome_at).not.toBeNull();

    const again = await call(stack, `meetings/${meeting.id}/outcome`, { token: memberA.token, body: { outcome: "held" } });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ changed: false, events: [] });
    const noShow = await call(stack, `meetings/${meeting.id}/outcome`, { token: memberA.token, body: { outcome: "no_show" } });
    expect(noShow.status).toBe(409);
    expect(noShow.body.error.details).toEqual({ entity: "meeting", from: "held", to: "no_show" });

    const won = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "won", reason: "signed the annual plan" } });
    expect(won.status).toBe(200);
    expect(won.body).toMatchObject({ assignment_status: "won", events: ["lead.won"] });
    const [audit] = await db()`select reason from public.events where entity_id = ${assignmentId} and to_status = 'won'`;
    expect(audit.reason).toBe("won: signed the annual plan");
    const lost = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "lost" } });
    expect(lost.status).toBe(409);
    expect(lost.body.error.details).toEqual({ entity: "assignment", from: "won", to: "lost" });
    expect((await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "won" } })).body.changed).toBe(false);

    const events = (await deliveries(ownerA.clientId!)).filter((d) => d.payload.data.meeting?.id === meeting.id).map((d) => d.event_type);
    expect(events).toEqual(["meeting.booked", "meeting.held", "lead.won"]);
    const [wonEvent] = (await deliveries(ownerA.clientId!, "lead.won")).filter((d) => d.payload.data.meeting.id === meeting.id);
    expect(wonEvent.event_id).toBe(`lead.won:${assignmentId}`);
    expect(wonEvent.payload.data).toMatchObject({ result: "won", reason: "signed the annual plan", assignment: { status: "won" } });
  });

  it("no-show → no_show; rescheduled rebooks (no_show → meeting_booked) keeping the length; then lost after a second no-show", async () => {
    const { assignmentId } = await leadAt(ownerA, REPLIED);
    const meeting = (await book(ownerA, { assignment_id: assignmentId, starts_at: at(10), ends_at: at(10.75) })).body;
    const ns = await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "no_show" } });
    expect(ns.body).toMatchObject({ status: "no_show", assignment_status: "no_show" });

    const noTime = await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "rescheduled" } });
    expect(noTime.status).toBe(400);
    expect(noTime.body.error.details[0].field).toBe("starts_at");
    const newStart = at(48);
    const re = await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "rescheduled", starts_at: newStart } });
    expect(re.status).toBe(200);
    expect(re.body).toMatchObject({ status: "rescheduled", assignment_status: "meeting_booked", starts_at: newStart, events: ["meeting.rescheduled"] });
    expect(Date.parse(re.body.ends_at) - Date.parse(re.body.starts_at)).toBe(0.75 * HOUR);
    const [rescheduled] = (await deliveries(ownerA.clientId!, "meeting.rescheduled")).filter((d) => d.payload.data.meeting.id === meeting.id);
    expect(rescheduled.payload.data.previous_starts_at).toBe(meeting.starts_at);

    expect((await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "no_show" } })).body.assignment_status).toBe("no_show");
    const lost = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "lost", reason: "went quiet" } });
    expect(lost.body).toMatchObject({ assignment_status: "lost", events: ["lead.lost"] });
    expect(await assignmentStatus(assignmentId)).toBe("lost");
  });

  it("cancelled: the assignment stays meeting_booked, a cancelled meeting takes no further outcome, and it can be closed lost", async () => {
    const { assignmentId } = await leadAt(ownerA, REPLIED);
    const meeting = (await book(ownerA, { assignment_id: assignmentId })).body;
    const cancelled = await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "cancelled" } });
    expect(cancelled.body).toMatchObject({ status: "cancelled", assignment_status: "meeting_booked", events: ["meeting.cancelled"] });
    const held = await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "held" } });
    expect(held.status).toBe(409);
    expect(await db()`select status from public.meetings where id = ${meeting.id}`).toEqual([{ status: "cancelled" }]);
    // a new time on an outcome that is not a reschedule is refused
    const odd = await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerA.token, body: { outcome: "held", starts_at: at(3) } });
    expect(odd.status).toBe(400);
    // the lead called it off: it cannot be won without a meeting, but it can be closed lost
    const won = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "won" } });
    expect(won.status).toBe(409);
    const lost = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "lost", reason: "cancelled, chose another agency" } });
    expect(lost.status).toBe(200);
    expect(lost.body).toMatchObject({ assignment_status: "lost", events: ["lead.lost"] });
    expect(await assignmentStatus(assignmentId)).toBe("lost");
  });

  it("a booked meeting that is not cancelled cannot be closed lost before it happens", async () => {
    const { assignmentId } = await leadAt(ownerA, REPLIED);
    const meeting = (await book(ownerA, { assignment_id: assignmentId })).body;
    const lost = await call(stack, `meetings/${meeting.id}/close`, { token: ownerA.token, body: { result: "lost" } });
    expect(lost.status).toBe(409);
    expect(lost.body.error.details).toEqual({ entity: "assignment", from: "meeting_booked", to: "lost" });
    expect(await assignmentStatus(assignmentId)).toBe("meeting_booked");
  });

  it("another client's meeting is a 404 everywhere; a viewer reads but cannot record outcomes or close", async () => {
    const { assignmentId } = await leadAt(ownerA, REPLIED);
    const meeting = (await book(ownerA, { assignment_id: assignmentId })).body;
    expect((await call(stack, `meetings/${meeting.id}`, { token: ownerB.token })).status).toBe(404);
    expect((await call(stack, `meetings/${meeting.id}/outcome`, { token: ownerB.token, body: { outcome: "held" } })).status).toBe(404);
    expect((await call(stack, `meetings/${meeting.id}/close`, { token: ownerB.token, body: { result: "won" } })).status).toBe(404);
    expect((await call(stack, `meetings/${meeting.id}`, { token: viewerA.token })).status).toBe(200);
    expect((await call(stack, `meetings/${meeting.id}/outcome`, { token: viewerA.token, body: { outcome: "held" } })).status).toBe(403);
    expect((await call(stack, `meetings/${meeting.id}/close`, { token: viewerA.token, body: { result: "won" } })).status).toBe(403);
    expect(await assignmentStatus(assignmentId)).toBe("meeting_booked");
    expect((await call(stack, `meetings/${meeting.id}`, { token: admin.token })).status).toBe(200);
    expect((await call(stack, "meetings/not-a-uuid", { token: ownerA.token })).status).toBe(400);
    expect((await call(stack, `meetings/${meeting.id}`)).status).toBe(401);
  });
});

describe("listing", () => {
  it("lists only the caller's client's meetings, latest start first, filtered and paged", async () => {
    const { assignmentId } = await leadAt(ownerB, REPLIED);
    const b1 = (await book(ownerB, { assignment_id: assignmentId, starts_at: at(200), ends_at: at(201) })).body;
    const b2 = (await call(stack, "meetings", { token: ownerB.token, body: { assignment_id: assignmentId, starts_at: at(300) } })).body;
    await call(stack, `meetings/${b1.id}/outcome`, { token: ownerB.token, body: { outcome: "held" } });

    const all = await call(stack, "meetings?limit=100", { token: ownerB.token });
    expect(all.body.data.map((m: { id: string }) => m.id)).toEqual([b2.id, b1.id]);
    const fromA = await call(stack, "meetings?limit=100", { token: ownerA.token });
    expect(fromA.body.data.every((m: { client_id: string }) => m.client_id === ownerA.clientId)).toBe(true);

    const first = await call(stack, "meetings?limit=1", { token: ownerB.token });
    expect(first.body.data.map((m: { id: string }) => m.id)).toEqual([b2.id]);
    const second = await call(stack, `meetings?limit=1&cursor=${first.body.next_cursor}`, { token: ownerB.token });
    expect(second.body).toMatchObject({ data: [{ id: b1.id }], next_cursor: null });

    expect((await call(stack, "meetings?status=held", { token: ownerB.token })).body.data.map((m: { id: string }) => m.id)).toEqual([b1.id]);
    const window = await call(stack, `meetings?from=${encodeURIComponent(at(250))}&to=${encodeURIComponent(at(350))}`, { token: ownerB.token });
    expect(window.body.data.map((m: { id: string }) => m.id)).toEqual([b2.id]);
    expect((await call(stack, "meetings?status=done", { token: ownerB.token })).status).toBe(400);
    expect((await call(stack, "meetings?cursor=garbage", { token: ownerB.token })).status).toBe(400);
  });
});

describe("the calendar path (meetings upserted by a Cal.com / Calendly webhook)", () => {
  async function calendarMeeting(assignmentId: string) {
    const [a] = await db()`select client_id, lead_id from public.lead_assignments where id = ${assignmentId}`;
    const [m] = await db()`
      insert into public.meetings (client_id, lead_id, assignment_id, source, external_id, starts_at, ends_at, title)
      values (${a.client_id}, ${a.lead_id}, ${assignmentId}, 'calcom', ${unique("cal")}, ${at(30)}, ${at(30.5)}, 'Discovery')
      returning id`;
    return m.id as string;
  }
  const service = { role: "service:webhooks", reason: "Cal.com booking" };

  it("a booking for a replied lead moves it to meeting_booked; calling again (a redelivered webhook) emits nothing new", async () => {
    const { assignmentId } = await leadAt(ownerA, REPLIED);
    const id = await calendarMeeting(assignmentId);
    const change = await asService(service, (tx) => meetingBooked(tx, id));
    expect(change).toMatchObject({ assignment: { from: "replied", to: "meeting_booked" }, events: ["meeting.booked"] });
    await asService(service, (tx) => meetingBooked(tx, id));
    const rows = (await deliveries(ownerA.clientId!, "meeting.booked")).filter((d) => d.payload.data.meeting.id === id);
    expect(rows).toHaveLength(1);
    const [audit] = await db()`select actor_role, reason from public.events where entity_id = ${assignmentId} and to_status = 'meeting_booked'`;
    expect(audit).toEqual({ actor_role: "service:webhooks", reason: "meeting booked (calcom)" });
  });

  it("a booking the state machine cannot follow keeps the meeting and the assignment, and says why", async () => {
    const { assignmentId } = await leadAt(ownerA, ["queued", "in_sequence", "completed"]);
    const id = await calendarMeeting(assignmentId);
    const change = await asService(service, (tx) => meetingBooked(tx, id));
    expect(change.assignment).toEqual({ id: assignmentId, from: "completed", to: "completed" });
    expect(change.assignmentBlocked).toContain("completed");
    expect(await assignmentStatus(assignmentId)).toBe("completed");
    // a calendar cancellation of a meeting already cancelled by hand is ignored, not an error
    await asService(service, (tx) => recordMeetingOutcome(tx, id, { outcome: "cancelled" }, { strict: false }));
    const again = await asService(service, (tx) => recordMeetingOutcome(tx, id, { outcome: "held" }, { strict: false }));
    expect(again).toMatchObject({ changed: false, meetingStatus: "cancelled" });
    expect(again.ignored).toBe("a cancelled meeting cannot be marked held");
  });
});
