// The server-sent events of the live overview, read with fetch rather than EventSource,
// which cannot send the Bearer token (or the session's CSRF token).
import { ApiError, authHeaders, credentials } from "./api";

/// Reads the events of `path` until the stream ends or `signal` aborts it, calling `on`
/// with each event's data.
export async function events(path: string, signal: AbortSignal, on: (data: string) => void) {
  const res = await fetch(path, {
    headers: { ...authHeaders(), accept: "text/event-stream" },
    credentials: credentials(),
    signal,
  });
  if (!res.ok || !res.body) throw new ApiError(res.status, res.statusText, "");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (data) on(data);
    }
  }
}
