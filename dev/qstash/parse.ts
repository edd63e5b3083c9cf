// Parsers for QStash header values: durations (`1d10h30m`), the `Upstash-Retry-Delay` math
// expression (a tiny safe evaluator, no eval), and retry hints from a destination's response.

/** `50s`, `10h`, `1d10h30m`, `1500ms`; a bare integer counts as seconds. Returns ms or null. */
export function parseDurationMs(raw: string | null | undefined): number | null {
  if (raw == null) return null;
  const s = raw.trim();
  if (s === "") return null;
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * unitMs[m[2]];
    consumed = re.lastIndex;
  }
  return consumed === s.length && consumed > 0 ? Math.round(total) : null;
}

// ---------------------------------------------------------------------------------------------
// Retry-delay expressions: numbers, `retried`, + - * / %, parentheses, unary minus and the
// documented functions. Compiled once at publish time so a bad expression is a 400, not a
// failure at the first retry.

type Node =
  | { k: "num"; v: number }
  | { k: "var" }
  | { k: "neg"; a: Node }
  | { k: "bin"; op: string; a: Node; b: Node }
  | { k: "call"; fn: string; args: Node[] };

const FUNCS: Record<string, { arity: [number, number]; f: (...xs: number[]) => number }> = {
  pow: { arity: [2, 2], f: (a, b) => Math.pow(a, b) },
  sqrt: { arity: [1, 1], f: Math.sqrt },
  abs: { arity: [1, 1], f: Math.abs },
  exp: { arity: [1, 1], f: Math.exp },
  floor: { arity: [1, 1], f: Math.floor },
  ceil: { arity: [1, 1], f: Math.ceil },
  round: { arity: [1, 1], f: Math.round },
  min: { arity: [1, 64], f: Math.min },
  max: { arity: [1, 64], f: Math.max },
};

function tokenize(src: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(?:(\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\*\*|[-+*/%(),]))/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new Error(`unexpected character at ${i}: ${JSON.stringify(src[i] ?? "")}`);
    tokens.push(m[1] ?? m[2] ?? m[3]);
    i = re.lastIndex;
  }
  return tokens;
}

function parseExpr(src: string): Node {
  const t = tokenize(src);
  let p = 0;
  const peek = () => t[p];
  const eat = (tok?: string) => {
    const cur = t[p];
    if (cur === undefined || (tok !== undefined && cur !== tok)) {
      throw new Error(`expected ${tok ?? "token"}, got ${cur ?? "end of expression"}`);
    }
    p++;
    return cur;
  };
  const additive = (): Node => {
    let a = multiplicative();
    while (peek() === "+" || peek() === "-") {
      const op = eat();
      a = { k: "bin", op, a, b: multiplicative() };
    }
    return a;
  };
  const multiplicative = (): Node => {
    let a = unary();
    while (peek() === "*" || peek() === "/" || peek() === "%") {
      const op = eat();
      a = { k: "bin", op, a, b: unary() };
    }
    return a;
  };
  const unary = (): Node => {
    if (peek() === "-") {
      eat();
      return { k: "neg", a: unary() };
    }
    if (peek() === "+") {
      eat();
      return unary();
    }
    return power();
  };
  const power = (): Node => {
    const a = primary();
    // `**` is right-associative, as in most languages.
    if (peek() === "**") {
      eat();
      return { k: "bin", op: "**", a, b: unary() };
    }
    return a;
  };
  const primary = (): Node => {
    const tok = eat();
    if (tok === "(") {
      const e = additive();
      eat(")");
      return e;
    }
    if (/^[\d.]/.test(tok)) return { k: "num", v: Number(tok) };
    if (/^[A-Za-z_]/.test(tok)) {
      if (tok === "retried") return { k: "var" };
      const fn = FUNCS[tok];
      if (!fn) throw new Error(`unknown identifier ${tok}`);
      eat("(");
      const args: Node[] = [];
      if (peek() !== ")") {
        args.push(additive());
        while (peek() === ",") {
          eat(",");
          args.push(additive());
        }
      }
      eat(")");
      if (args.length < fn.arity[0] || args.length > fn.arity[1]) {
        throw new Error(`${tok} takes ${fn.arity[0]}${fn.arity[1] > fn.arity[0] ? "+" : ""} argument(s)`);
      }
      return { k: "call", fn: tok, args };
    }
    throw new Error(`unexpected ${tok}`);
  };
  if (t.length === 0) throw new Error("empty expression");
  const node = additive();
  if (p !== t.length) throw new Error(`unexpected ${t[p]}`);
  return node;
}

function evalNode(n: Node, retried: number): number {
  switch (n.k) {
    case "num":
      return n.v;
    case "var":
      return retried;
    case "neg":
      return -evalNode(n.a, retried);
    case "call":
      return FUNCS[n.fn].f(...n.args.map((a) => evalNode(a, retried)));
    case "bin": {
      const a = evalNode(n.a, retried);
      const b = evalNode(n.b, retried);
      switch (n.op) {
        case "+": return a + b;
        case "-": return a - b;
        case "*": return a * b;
        case "/": return a / b;
        case "%": return a % b;
        default: return Math.pow(a, b);
      }
    }
  }
}

/** Compile an `Upstash-Retry-Delay` expression; throws with a readable message if invalid. */
export function compileRetryDelay(expression: string): (retried: number) => number {
  const node = parseExpr(expression);
  return (retried) => evalNode(node, retried);
}

// ---------------------------------------------------------------------------------------------

const MAX_HINT_MS = 86_400_000;

/**
 * How long the destination asked us to wait (`Retry-After`, `X-RateLimit-Reset*`): seconds,
 * an HTTP date, or a Go-style duration like `6m5s`; capped at one day. Null if none usable.
 */
export function retryHintMs(headers: Headers, nowMs: number): number | null {
  for (const name of ["retry-after", "x-ratelimit-reset", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]) {
    const v = headers.get(name)?.trim();
    if (!v) continue;
    let ms: number | null = null;
    if (/^\d+(\.\d+)?$/.test(v)) {
      const n = Number(v);
      // Some APIs send an epoch timestamp in X-RateLimit-Reset; treat big numbers as that.
      ms = n > 1e9 ? n * 1000 - nowMs : n * 1000;
    } else {
      ms = parseDurationMs(v);
      if (ms === null) {
        const at = Date.parse(v);
        if (!Number.isNaN(at)) ms = at - nowMs;
      }
    }
    if (ms !== null && Number.isFinite(ms)) return Math.min(MAX_HINT_MS, Math.max(0, ms));
  }
  return null;
}
