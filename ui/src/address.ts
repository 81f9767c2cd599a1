// A page's filters and paging in its address, so that a filtered view can be bookmarked
// and shared. Pages read them when they are drawn (on load, and on Back and Forward, which
// draw the page afresh) and write them back as they change.

/// A query string of the parameters that are set.
export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/// A filter of the page on show, as its address holds it.
export function fromAddress(name: string): string {
  return new URLSearchParams(location.search).get(name) ?? "";
}

/// Writes the page's filters and paging into its address. The entry is replaced rather
/// than added, so that Back leaves the page instead of stepping through every filter
/// tried. `shown` says whether the page writing is still the one on show: a list that
/// answers after its page was left would otherwise write its filters into the address of
/// the page shown since.
export function toAddress(shown: boolean, values: Record<string, string | number | null | undefined>) {
  if (!shown) return;
  const s = query(values);
  if (s !== location.search) history.replaceState(history.state, "", location.pathname + s);
}

/// The options of a select ([value, text]) with `value` added when it is not among them,
/// so that a view shared with a value the server no longer lists still filters as it did.
export function withOption(options: [string, string][], value: string): [string, string][] {
  return !value || options.some(([v]) => v === value) ? options : [...options, [value, value]];
}
