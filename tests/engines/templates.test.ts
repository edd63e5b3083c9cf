// Merge-field templates: rendering, fallbacks, errors (unknown field, missing value, broken braces),
// HTML escaping, dropped optional lines, and the default template of every step kind passing
// checkContent once framed — for an ordinary lead, a lead with no data, and an EU first touch.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { checkContent, smsSegments, UNSUBSCRIBE_PLACEHOLDER } from "../../shared/engines/content-checks.ts";
import {
  composeMessage,
  dataSourceNotice,
  DEFAULT_TEMPLATES,
  linkedinActionFor,
  renderStep,
  renderTemplate,
  renderTemplateHtml,
  STEP_KIND_CHANNEL,
  STEP_KINDS,
  stepKindFor,
  TemplateError,
  templateFields,
  type MergeFields,
} from "../../shared/engines/templates.ts";

const FIELDS: MergeFields = {
  first_name: "Ada",
  last_name: "Nguyen",
  company: "Harbour Logistics",
  title: "Head of Operations",
  sender_name: "Sam Taylor",
  sender_title: "Director",
  client_name: "Acme Growth",
  offer: "outbound lead generation for logistics firms",
};

function thrown(fn: () => unknown): TemplateError {
  try {
    fn();
  } catch (e) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error("expected a TemplateError");
}

describe("renderTemplate", () => {
  it("fills fields, with spaces inside the braces allowed", () => {
    expect(renderTemplate("Hi {{first_name}} at {{ company }}", FIELDS)).toBe("Hi Ada at Harbour Logistics");
  });

  it("uses the fallback when the value is missing or blank", () => {
    expect(renderTemplate("Hi {{first_name|there}},", {})).toBe("Hi there,");
    expect(renderTemplate("Hi {{first_name|there}},", { first_name: "   " })).toBe("Hi there,");
    expect(renderTemplate("Hi {{first_name|there}},", { first_name: null })).toBe("Hi there,");
    expect(renderTemplate("Hi {{first_name|there}},", FIELDS)).toBe("Hi Ada,");
    expect(renderTemplate("x{{sender_title|}}y", {})).toBe("xy");
  });

  it("throws on an unknown field, even when a fallback is given or values are missing", () => {
    const e = thrown(() => renderTemplate("Hi {{firstname}}", FIELDS));
    expect(e.code).toBe("unknown_field");
    expect(e.field).toBe("firstname");
    expect(thrown(() => renderTemplate("{{nickname|pal}}", {})).code).toBe("unknown_field");
    expect(thrown(() => renderTemplate("{{First_Name}}", FIELDS)).code).toBe("unknown_field");
  });

  it("throws on a missing value without fallback", () => {
    const e = thrown(() => renderTemplate("Hi {{first_name}}", {}));
    expect(e.code).toBe("missing_field");
    expect(e.field).toBe("first_name");
  });

  it("throws on braces that are not a merge field, so no literal {{ is ever sent", () => {
    for (const t of ["Hi {{first_name", "Hi {{ first name }}", "Hi }} there", "{{}}", "{{first_name|a|b}}", "{{{first_name}}}"]) {
      expect(() => renderTemplate(t, FIELDS), t).toThrow(TemplateError);
    }
  });

  it("keeps a kept field's placeholder when unset and fills it when set", () => {
    expect(renderTemplate(`Unsubscribe: {{ unsubscribe_url }}`, {}, { keep: ["unsubscribe_url"] })).toBe(`Unsubscribe: ${UNSUBSCRIBE_PLACEHOLDER}`);
    expect(renderTemplate(`Unsubscribe: {{unsubscribe_url}}`, { unsubscribe_url: "https://u.example/x" }, { keep: ["unsubscribe_url"] }))
      .toBe("Unsubscribe: https://u.example/x");
    expect(() => renderTemplate(`Unsubscribe: {{unsubscribe_url}}`, {})).toThrow(TemplateError);
  });

  it("values can't smuggle in a placeholder or a line break", () => {
    const out = renderTemplate("Hi {{first_name}} from {{company}}", { first_name: "{{sender_name}}", company: "Evil\nCo" });
    expect(out).toBe("Hi sender_name from Evil Co");
    expect(out).not.toContain("{{");
  });

  it("property: a rendered template never contains braces from values", () => {
    fc.assert(fc.property(fc.string(), fc.string(), (a, b) => {
      const out = renderTemplate("{{first_name|x}} / {{company|y}}", { first_name: a, company: b });
      expect(out.includes("{{") || out.includes("}}")).toBe(false);
    }));
  });

  it("drops a line that held only an optional field that came out empty", () => {
    const sig = "{{sender_name}}\n{{sender_title|}}\n{{client_name}}";
    expect(renderTemplate(sig, FIELDS)).toBe("Sam Taylor\nDirector\nAcme Growth");
    expect(renderTemplate(sig, { ...FIELDS, sender_title: "" })).toBe("Sam Taylor\nAcme Growth");
    // A line with other text stays, and a deliberate blank line stays.
    expect(renderTemplate("Title: {{sender_title|}}\n\nend", {})).toBe("Title:\n\nend");
  });

  it("HTML variant escapes values and fallbacks, not the markup", () => {
    const out = renderTemplateHtml("<p>Dear {{first_name|<friend>}}, from <b>{{company}}</b></p>", { company: `Smith & Sons <script>"x"</script>` });
    expect(out).toBe("<p>Dear &lt;friend&gt;, from <b>Smith &amp; Sons &lt;script&gt;&quot;x&quot;&lt;/script&gt;</b></p>");
    expect(renderTemplate("{{company}}", { company: "A & B" })).toBe("A & B");
  });

  it("templateFields lists the fields a template uses", () => {
    expect(templateFields("{{first_name}} {{company|x}} {{first_name}}").sort()).toEqual(["company", "first_name"]);
  });
});

describe("step kinds", () => {
  it("maps channels to kinds", () => {
    expect(stepKindFor("email", { isFirstTouch: true })).toBe("email_first");
    expect(stepKindFor("email", { isFirstTouch: false })).toBe("email_followup");
    expect(stepKindFor("linkedin", { linkedinAction: "invitation" })).toBe("linkedin_note");
    expect(stepKindFor("linkedin", {})).toBe("linkedin_message");
    expect(stepKindFor("voice")).toBe("voice_opener");
    expect(stepKindFor("mail")).toBe("letter");
    for (const k of STEP_KINDS) expect(stepKindFor(STEP_KIND_CHANNEL[k], { isFirstTouch: k !== "email_followup", linkedinAction: linkedinActionFor(k) })).toBe(k);
  });
});

describe("DEFAULT_TEMPLATES", () => {
  const ctxFor = (kind: (typeof STEP_KINDS)[number], extra: object = {}) => ({
    senderName: "Sam Taylor", clientName: "Acme Growth", isFirstTouch: kind !== "email_followup",
    linkedinAction: linkedinActionFor(kind), ...extra,
  });

  it.each(STEP_KINDS.map((k) => [k]))("%s passes checkContent for an ordinary lead", (kind) => {
    const m = renderStep(kind, FIELDS);
    expect(m.body).not.toMatch(/\{\{(?!unsubscribe_url\}\})/);
    expect(checkContent(STEP_KIND_CHANNEL[kind], m, ctxFor(kind))).toEqual([]);
  });

  it.each(STEP_KINDS.map((k) => [k]))("%s passes checkContent with nothing known about the lead", (kind) => {
    const m = renderStep(kind, { sender_name: "Sam Taylor", client_name: "Acme Growth" });
    expect(checkContent(STEP_KIND_CHANNEL[kind], m, ctxFor(kind))).toEqual([]);
  });

  it.each(["email_first", "linkedin_note", "linkedin_message", "voice_opener", "letter"] as const)(
    "%s carries the source notice for an EU first touch", (kind) => {
      const m = renderStep(kind, { ...FIELDS, data_source: "LinkedIn" }, { notice: true });
      expect(checkContent(STEP_KIND_CHANNEL[kind], m, ctxFor(kind, { recipientCountry: "FR" }))).toEqual([]);
      // Without the notice the same message fails.
      const bare = renderStep(kind, FIELDS);
      expect(checkContent(STEP_KIND_CHANNEL[kind], bare, ctxFor(kind, { recipientCountry: "FR" })).map((v) => v.code))
        .toEqual(["data_source_notice_missing"]);
    },
  );

  it("the default SMS is one GSM-7 segment with room to spare, and an SMS can't also carry the notice", () => {
    const m = renderStep("sms", FIELDS);
    const seg = smsSegments(m.body);
    expect(seg).toMatchObject({ encoding: "GSM-7", segments: 1 });
    expect(m.body).toMatch(/Reply STOP to opt out$/);
    // A first SMS to an EU recipient is rejected by the checks rather than sent without its notice.
    const eu = renderStep("sms", FIELDS, { notice: true });
    expect(checkContent("sms", eu, { senderName: "Sam Taylor", recipientCountry: "DE", isFirstTouch: true }).map((v) => v.code)).toEqual(["sms_segments"]);
  });

  it("email renders the full frame: greeting, signature without blank optional lines, unsubscribe placeholder", () => {
    const m = renderStep("email_first", { ...FIELDS, sender_title: null });
    expect(m.subject).toBe("Quick question, Ada");
    expect(m.body.startsWith("Hi Ada,\n\nI'm reaching out because Harbour Logistics")).toBe(true);
    expect(m.body).toContain("Sam Taylor\nAcme Growth\n\nNot relevant? Unsubscribe here: {{unsubscribe_url}}");
    const sent = renderStep("email_first", { ...FIELDS, unsubscribe_url: "https://u.example/t/1" });
    expect(sent.body).toContain("Unsubscribe here: https://u.example/t/1");
  });

  it("a first line replaces the template's opener (the Cool tier)", () => {
    const m = renderStep("email_first", FIELDS, { firstLine: "Congrats on the new Brisbane depot." });
    expect(m.body).toContain("Hi Ada,\n\nCongrats on the new Brisbane depot.\n\nAcme Growth works on");
    expect(m.body).not.toContain("I'm reaching out");
  });

  it("a broken custom template throws instead of sending braces", () => {
    expect(() => renderStep("email_first", FIELDS, { template: { subject: "Hi", opener: "Hey {{nickname}}", main: "x" } })).toThrow(TemplateError);
  });

  it("composeMessage frames any core, adds voice introduction and notice", () => {
    const v = composeMessage("voice_opener", { body: "I'm calling about your new depot." }, FIELDS, { notice: true });
    expect(v.subject).toBeNull();
    expect(v.body.startsWith("Hi Ada, this is Sam Taylor calling from Acme Growth. I'm calling about your new depot.")).toBe(true);
    expect(v.body).toContain(dataSourceNotice("short", FIELDS));
  });
});
