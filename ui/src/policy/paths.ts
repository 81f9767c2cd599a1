// Paths into the policy as the server writes them in its errors: `rules[0].period`,
// `tiers.free.limits[1]`.

export type Seg = string | number;

export function pathText(segs: Seg[]): string {
  return segs.reduce<string>((p, s) => (typeof s === "number" ? `${p}[${s}]` : p ? `${p}.${s}` : s), "");
}

/// The path one step up: `rules[0].period` to `rules[0]` to `rules` to the root ("").
export function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
  return cut > 0 ? path.slice(0, cut) : "";
}

export function clone<T>(v: T): T {
  return v === undefined ? v : JSON.parse(JSON.stringify(v));
}

/// What a field's text stands for: a number where one was (a mistyped number stays text,
/// so that the server says what is wrong with it), JSON where nothing was, else the text.
export function parseLeaf(text: string, was: unknown): unknown {
  const t = text.trim();
  if (typeof was === "number") return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t) ? Number(t) : text;
  if (was === null) {
    if (!t) return null;
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}
