// The tiers' names, which the keys' pages offer in their tier fields.

/// The names of the tiers of a `GET /v1/tiers` answer, which lists them by name or as
/// records with a name.
export function tierNames(answer: any): string[] {
  const t = answer?.tiers;
  if (Array.isArray(t)) return t.map((x: any) => (typeof x === "string" ? x : x.name)).filter(Boolean);
  return t && typeof t === "object" ? Object.keys(t) : [];
}
