// The pre-queue content checks: SMS segment counting (with fast-check properties), and every rule
// checkContent enforces per channel — subject, bounds, spam words, sender identification,
// unsubscribe / opt-out wording, one SMS segment, LinkedIn note limits and the EU/UK source notice.
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  checkContent,
  CONTENT_BOUNDS,
  findSpamWords,
  GSM7_BASIC,
  GSM7_EXTENSION,
  hasDataSourceNotice,
  needsDataSourceNotice,
  smsSegments,
  SPAM_TRIGGER_WORDS,
  UNSUBSCRIBE_PLACEHOLDER,
  type ContentCheckContext,
} from "../../shared/engines/content-checks.ts";

const basicChar = fc.constantFrom(...Array.from(GSM7_BASIC));
const extChar = fc.constantFrom(...Array.from(GSM7_EXTENSION));
const gsmChar = fc.oneof({ weight: 5, arbitrary: basicChar }, { weight: 1, arbitrary: extChar });
/** Characters outside GSM-7: accented letters GSM lacks, CJK, emoji (a surrogate pair). */
const ucs2Char = fc.constantFrom("ê", "ō", "中", "—", "’", "😀", "ç", "Ä\u0301");
const gsmUnits = (s: string) => Array.from(s).reduce((n, c) => n + (GSM7_EXTENSION.includes(c) ? 2 : 1), 0);

describe("smsSegments", () => {
  it("counts plain GSM-7 text", () => {
    expect(smsSegments("Hello")).toEqual({ encoding: "GSM-7", units: 5, segments: 1, singleSegmentLimit: 160 });
    expect(smsSegments("")).toMatchObject({ units: 0, segments: 0 });
    expect(smsSegments("a".repeat(160)).segments).toBe(1);
    expect(smsSegments("a".repeat(161)).segments).toBe(2);
    expect(smsSegments("a".repeat(306)).segments).toBe(2);
    expect(smsSegments("a".repeat(307)).segments).toBe(3);
  });

  it("counts extension characters as two septets", () => {
    expect(smsSegments("€")).toMatchObject({ encoding: "GSM-7", units: 2 });
    expect(smsSegments("[x]{y}~|^\\").units).toBe(18);
    expect(smsSegments("a".repeat(158) + "€").segments).toBe(1);
    expect(smsSegments("a".repeat(159) + "€").segments).toBe(2);
  });

  it("never splits an escape pair across parts", () => {
    // 152 + "€" (2) = 154 > 153: the euro sign moves to part two.
    const s = "a".repeat(152) + "€" + "a".repeat(10);
    expect(smsSegments(s)).toMatchObject({ units: 164, segments: 2 });
    const t = "a".repeat(152) + "€" + "a".repeat(152);
    expect(smsSegments(t).segments).toBe(3);
  });

  it("switches to UCS-2 for any other character, counting UTF-16 units", () => {
    expect(smsSegments("Hi Zoé")).toMatchObject({ encoding: "GSM-7" }); // é is in the basic table
    expect(smsSegments("Hi Zoë")).toMatchObject({ encoding: "UCS-2" }); // ë is not
    expect(smsSegments("Hi Zoê")).toEqual({ encoding: "UCS-2", units: 6, segments: 1, singleSegmentLimit: 70 });
    expect(smsSegments("😀")).toMatchObject({ encoding: "UCS-2", units: 2 });
    expect(smsSegments("€中")).toMatchObject({ encoding: "UCS-2", units: 2 }); // € is one unit in UCS-2
    expect(smsSegments("中".repeat(70)).segments).toBe(1);
    expect(smsSegments("中".repeat(71)).segments).toBe(2);
    expect(smsSegments("中".repeat(134)).segments).toBe(2);
    expect(smsSegments("中".repeat(135)).segments).toBe(3);
  });

  it("never splits a surrogate pair across UCS-2 parts", () => {
    const s = "中".repeat(66) + "😀" + "中"; // 66 + 2 > 67 → the emoji starts part two
    expect(smsSegments(s)).toMatchObject({ units: 69, segments: 1 });
    const t = "中".repeat(66) + "😀" + "中".repeat(10);
    expect(smsSegments(t)).toMatchObject({ units: 78, segments: 2 });
  });

  it("property: any GSM-7 text of at most 160 units is one segment", () => {
    fc.assert(fc.property(fc.array(gsmChar, { minLength: 1, maxLength: 160 }), (chars) => {
      const s = chars.join("");
      fc.pre(gsmUnits(s) <= 160);
      const r = smsSegments(s);
      expect(r.encoding).toBe("GSM-7");
      expect(r.units).toBe(gsmUnits(s));
      expect(r.segments).toBe(1);
    }));
  });

  it("property: GSM-7 text over 160 units needs at least ceil(units/153) segments, and never more than one per 152 units", () => {
    fc.assert(fc.property(fc.array(gsmChar, { minLength: 81, maxLength: 700 }), (chars) => {
      const s = chars.join("");
      const units = gsmUnits(s);
      fc.pre(units > 160);
      const r = smsSegments(s);
      expect(r.segments).toBeGreaterThanOrEqual(Math.ceil(units / 153));
      expect(r.segments).toBeLessThanOrEqual(Math.ceil(units / 152));
    }));
  });

  it("property: adding one UCS-2 character switches to UCS-2 and the single-segment limit to 70", () => {
    fc.assert(fc.property(fc.array(basicChar, { maxLength: 200 }), ucs2Char, fc.nat(), (chars, u, at) => {
      const i = chars.length ? at % (chars.length + 1) : 0;
      const s = [...chars.slice(0, i), u, ...chars.slice(i)].join("");
      const r = smsSegments(s);
      expect(r.encoding).toBe("UCS-2");
      expect(r.singleSegmentLimit).toBe(70);
      expect(r.units).toBe(s.length);
      expect(r.segments === 1).toBe(s.length <= 70);
    }));
  });

  it("property: segments never decrease as text grows", () => {
    fc.assert(fc.property(fc.array(fc.oneof(gsmChar, ucs2Char), { maxLength: 400 }), fc.oneof(gsmChar, ucs2Char), (chars, extra) => {
      const s = chars.join("");
      expect(smsSegments(s + extra).segments).toBeGreaterThanOrEqual(smsSegments(s).segments);
    }));
  });
});

const CTX: ContentCheckContext = { senderName: "Sam Taylor", clientName: "Acme Growth", recipientCountry: "AU", isFirstTouch: true };
const EMAIL_BODY =
  `Hi Ada,\n\nI came across Harbour Logistics in Sydney. Acme Growth works on outbound lead generation.\n\nWould a short call help?\n\nSam Taylor\nAcme Growth\n\nNot relevant? Unsubscribe here: ${UNSUBSCRIBE_PLACEHOLDER}`;
const codes = (v: { code: string }[]) => v.map((x) => x.code);

describe("checkContent: email", () => {
  it("accepts a compliant email", () => {
    expect(checkContent("email", { subject: "Idea for Harbour Logistics", body: EMAIL_BODY }, CTX)).toEqual([]);
  });

  it("requires a subject of 1–78 characters on one line", () => {
    expect(codes(checkContent("email", { subject: "", body: EMAIL_BODY }, CTX))).toEqual(["subject_missing"]);
    expect(codes(checkContent("email", { subject: "  ", body: EMAIL_BODY }, CTX))).toEqual(["subject_missing"]);
    expect(checkContent("email", { subject: "x".repeat(78), body: EMAIL_BODY }, CTX)).toEqual([]);
    expect(codes(checkContent("email", { subject: "x".repeat(79), body: EMAIL_BODY }, CTX))).toEqual(["subject_too_long"]);
    expect(codes(checkContent("email", { subject: "a\nb", body: EMAIL_BODY }, CTX))).toEqual(["subject_multiline"]);
  });

  it("bounds the body length", () => {
    const short = `Hi. Sam Taylor. Unsubscribe ${UNSUBSCRIBE_PLACEHOLDER}`.slice(0, 39);
    expect(codes(checkContent("email", { subject: "s", body: short }, CTX))).toContain("body_too_short");
    const long = EMAIL_BODY + "\n" + "word ".repeat(500);
    expect(codes(checkContent("email", { subject: "s", body: long }, CTX))).toContain("body_too_long");
    expect(codes(checkContent("email", { subject: "s", body: "" }, CTX))).toContain("body_empty");
  });

  it("requires unsubscribe wording with the placeholder or the rendered URL", () => {
    const noLink = EMAIL_BODY.replace(`Not relevant? Unsubscribe here: ${UNSUBSCRIBE_PLACEHOLDER}`, "Thanks");
    expect(codes(checkContent("email", { subject: "s", body: noLink }, CTX))).toEqual(["unsubscribe_missing"]);
    const url = "https://u.example.com/t/abc";
    const rendered = EMAIL_BODY.replace(UNSUBSCRIBE_PLACEHOLDER, url);
    expect(codes(checkContent("email", { subject: "s", body: rendered }, CTX))).toEqual(["unsubscribe_missing"]);
    expect(checkContent("email", { subject: "s", body: rendered }, { ...CTX, unsubscribeUrl: url })).toEqual([]);
    const linkOnly = EMAIL_BODY.replace("Not relevant? Unsubscribe here:", "Link:");
    expect(codes(checkContent("email", { subject: "s", body: linkOnly }, CTX))).toEqual(["unsubscribe_missing"]);
  });

  it("requires the sender or client name", () => {
    const anon = EMAIL_BODY.replace(/Sam Taylor|Acme Growth/g, "us");
    expect(codes(checkContent("email", { subject: "s", body: anon }, CTX))).toEqual(["sender_missing"]);
    expect(checkContent("email", { subject: "s", body: EMAIL_BODY.replace(/Sam Taylor/g, "Sam") }, CTX)).toEqual([]); // the client name is enough
    expect(codes(checkContent("email", { subject: "s", body: EMAIL_BODY }, {}))).toEqual(["sender_missing"]);
  });

  it("flags spam-trigger words whole-word and case-insensitively", () => {
    const v = checkContent("email", { subject: "ACT NOW", body: EMAIL_BODY.replace("Would", "Risk-free! Would") }, CTX);
    expect(codes(v)).toEqual(["spam_word"]);
    expect(v[0].message).toContain('"act now"');
    expect(v[0].message).toContain('"risk-free"');
    expect(findSpamWords("cheaper options at Cheapside")).toEqual([]);
    expect(findSpamWords("a CHEAP trick")).toEqual(["cheap"]);
    expect(findSpamWords("this isn’t spam")).toEqual(["this isn't spam"]);
    expect(findSpamWords("feel free to reply; guaranteed!")).toEqual(["guaranteed"]);
    // Every listed word is found by itself.
    for (const w of SPAM_TRIGGER_WORDS) expect(findSpamWords(`well, ${w.toUpperCase()} then`)).toContain(w);
  });

  it("rejects an unfilled merge field but not the unsubscribe placeholder", () => {
    const v = checkContent("email", { subject: "Hi {{first_name}}", body: EMAIL_BODY }, CTX);
    expect(codes(v)).toEqual(["merge_field_unrendered"]);
    expect(codes(checkContent("email", { subject: "s", body: EMAIL_BODY + " {{company" }, CTX))).toEqual(["merge_field_unrendered"]);
  });
});

describe("checkContent: SMS", () => {
  const ok = "Hi Ada, worth a quick chat about new client growth at Harbour? - Sam Taylor, Acme Growth. Reply STOP to opt out";

  it("accepts one GSM-7 segment with opt-out wording", () => {
    expect(checkContent("sms", { body: ok }, CTX)).toEqual([]);
    for (const w of ["Text STOP to unsubscribe", "reply \"STOP\" to end", "Opt out: reply stop", "STOP to opt-out"]) {
      expect(checkContent("sms", { body: ok.replace("Reply STOP to opt out", w) }, CTX)).toEqual([]);
    }
  });

  it("requires opt-out wording", () => {
    expect(codes(checkContent("sms", { body: ok.replace(". Reply STOP to opt out", ".") }, CTX))).toEqual(["opt_out_missing"]);
    expect(codes(checkContent("sms", { body: ok.replace("Reply STOP to opt out", "Stopwatch ready") }, CTX))).toEqual(["opt_out_missing"]);
  });

  it("must be exactly one segment, the opt-out included", () => {
    const long = ok.replace("Hi Ada,", `Hi Ada,${"x".repeat(161 - ok.length)}`);
    expect(smsSegments(long).units).toBe(161);
    expect(codes(checkContent("sms", { body: long }, CTX))).toEqual(["sms_segments"]);
    const exact = ok.replace("Hi Ada,", `Hi Ada,${"x".repeat(160 - ok.length)}`);
    expect(smsSegments(exact).units).toBe(160);
    expect(checkContent("sms", { body: exact }, CTX)).toEqual([]);
    // One non-GSM character drops the limit to 70.
    const curly = ok.replace("Hi Ada,", "Hi Ada’s team,");
    const v = checkContent("sms", { body: curly }, CTX);
    expect(codes(v)).toEqual(["sms_segments"]);
    expect(v[0].message).toContain("UCS-2");
  });
});

describe("checkContent: LinkedIn", () => {
  const note = "Hi Ada, I work with teams like Harbour on outbound growth. Would be good to connect. - Sam Taylor";
  it("limits invitation notes to 300 characters, 200 on a free account", () => {
    expect(checkContent("linkedin", { body: note }, { ...CTX, linkedinAction: "invitation" })).toEqual([]);
    const n250 = note + " " + "x".repeat(250 - note.length - 1);
    expect(n250.length).toBe(250);
    expect(checkContent("linkedin", { body: n250 }, { ...CTX, linkedinAction: "invitation" })).toEqual([]);
    expect(codes(checkContent("linkedin", { body: n250 }, { ...CTX, linkedinAction: "invitation", linkedinFreeAccount: true }))).toEqual(["linkedin_note_too_long"]);
    const n301 = note + " " + "x".repeat(301 - note.length - 1);
    expect(codes(checkContent("linkedin", { body: n301 }, { ...CTX, linkedinAction: "invitation" }))).toEqual(["linkedin_note_too_long"]);
    expect(codes(checkContent("linkedin", { body: n301.slice(0, 300) }, { ...CTX, linkedinAction: "invitation" }))).toEqual([]);
  });

  it("requires a way out in a message (not in a note)", () => {
    const msg = "Hi Ada,\n\nThanks for connecting. Open to a chat?\n\nSam Taylor, Acme Growth";
    expect(codes(checkContent("linkedin", { body: msg }, { ...CTX, linkedinAction: "message" }))).toEqual(["opt_out_missing"]);
    expect(checkContent("linkedin", { body: `${msg}\nIf this isn't relevant, reply "stop" and I won't message you again.` }, { ...CTX, linkedinAction: "message" })).toEqual([]);
  });
});

describe("checkContent: voice and mail", () => {
  it("bounds the voice opener and requires the caller's identity", () => {
    const opener = "Hi Ada, this is Sam Taylor calling from Acme Growth. Have you got two minutes?";
    expect(checkContent("voice", { body: opener }, CTX)).toEqual([]);
    expect(codes(checkContent("voice", { body: opener + " x".repeat(CONTENT_BOUNDS.voiceScriptMax) }, CTX))).toEqual(["body_too_long"]);
    expect(codes(checkContent("voice", { body: "Hi Ada, this is a quick call. Two minutes?" }, CTX))).toEqual(["sender_missing"]);
  });

  it("bounds a letter", () => {
    const letter = `Dear Ada,\n\n${"We work with companies like yours. ".repeat(5)}\n\nKind regards,\nSam Taylor\nAcme Growth`;
    expect(checkContent("mail", { body: letter }, CTX)).toEqual([]);
    expect(codes(checkContent("mail", { body: "Dear Ada, hello. Sam Taylor" }, CTX))).toEqual(["body_too_short"]);
    expect(codes(checkContent("mail", { body: letter + "x".repeat(3_000) }, CTX))).toEqual(["body_too_long"]);
  });
});

describe("EU/UK data-source notice (G3)", () => {
  const notice = "Why you're hearing from me: I found your business contact details via LinkedIn. Acme Growth contacts professionals on the basis of legitimate interest.";

  it("is required in the first message to EU/EEA/UK recipients only", () => {
    expect(needsDataSourceNotice("DE", true)).toBe(true);
    expect(needsDataSourceNotice("gb", true)).toBe(true);
    expect(needsDataSourceNotice("UK", true)).toBe(true);
    expect(needsDataSourceNotice("NO", true)).toBe(true);
    expect(needsDataSourceNotice("DE", false)).toBe(false);
    expect(needsDataSourceNotice("AU", true)).toBe(false);
    expect(needsDataSourceNotice("US", true)).toBe(false);
    expect(needsDataSourceNotice(null, true)).toBe(false);
  });

  it("flags its absence and accepts it when present", () => {
    const de = { ...CTX, recipientCountry: "DE" };
    expect(codes(checkContent("email", { subject: "s", body: EMAIL_BODY }, de))).toEqual(["data_source_notice_missing"]);
    expect(checkContent("email", { subject: "s", body: `${EMAIL_BODY}\n\n${notice}` }, de)).toEqual([]);
    expect(checkContent("email", { subject: "s", body: EMAIL_BODY }, { ...de, isFirstTouch: false })).toEqual([]);
    expect(hasDataSourceNotice("We value your legitimate interest")).toBe(false); // no source named
    expect(hasDataSourceNotice("(Got your details via LinkedIn; contacting you on legitimate interest.)")).toBe(true);
  });
});
