// How the dead letters' pages put a letter's replays, and the refusals of the server, in
// words.
import { ApiError } from "../api";
import { count, when } from "../format";

/// How a dead letter's replays have gone so far, in words.
export function replayState(d: any): string {
  if (d.replaying_since) return `replay under way since ${when(d.replaying_since)}`;
  if (!d.replays) return "not replayed";
  return `${d.replays === 1 ? "1 failed replay" : `${count(d.replays)} failed replays`}, last at ${when(d.replayed_at)}`;
}

/// What a refused replay or discard means, told in words of the dashboard's own with the
/// server's account after it.
export function refusal(e: unknown, verb: "replay" | "discard"): Error {
  if (!(e instanceof ApiError)) return e instanceof Error ? e : new Error(String(e));
  const said = e.detail ? ` (${e.detail})` : "";
  if (e.status === 403) {
    return new Error(
      `${verb === "replay" ? "Replaying" : "Discarding"} a dead letter needs the admin role, which this account does not have${said}.`,
    );
  }
  switch (e.kind) {
    case "dead-letter-truncated":
      return new Error(
        "Not replayed: its body was longer than the route's dead_letter.body_limit and only a part was kept, so a replay would send a different request. Discard it instead.",
      );
    case "dead-letter-unroutable":
      return new Error(`Not replayed: no proxy route takes its URL any more${said}.`);
    case "dead-letter-replaying":
      return new Error(
        "Not replayed: another replay of it is under way and it is never sent twice. Look again once that replay has ended.",
      );
    case "proxy-off":
      return new Error("Not replayed: no reverse proxy is serving on this server.");
    case "dead-letter-not-found":
      return new Error("It is gone: delivered by another replay, or discarded.");
  }
  return e;
}
