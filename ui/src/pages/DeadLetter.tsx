// A dead letter's own page: the request as kept, its headers and body, and replaying or
// discarding it.
import { useCallback, useEffect, useState } from "react";
import { api, ApiError } from "../api";
import { Table } from "../components/Table";
import { DeadLetterActions } from "../deadletters/Actions";
import { replayState } from "../deadletters/words";
import { count, when } from "../format";
import { useShown } from "../latest";
import { Link } from "../router";
import { StatusRegion, useStatus } from "../status";
import type { Status } from "../status";

/// How much of a body the page shows; the rest is told by its size.
const BODY_PREVIEW = 4096;

export function DeadLetter({ id }: { id: string }) {
  const status = useStatus();
  const shown = useShown();
  /// The letter, or "gone" once it is no longer kept.
  const [letter, setLetter] = useState<any | "gone" | null>(null);

  const load = useCallback(
    async (gone: boolean) => {
      if (gone) {
        if (shown()) setLetter("gone");
        return;
      }
      const d = await api("GET", `/v1/dead-letters/${encodeURIComponent(id)}`);
      if (shown()) setLetter(d);
    },
    [id, shown],
  );

  useEffect(() => {
    load(false).catch((e) => {
      if (!shown()) return;
      if (e instanceof ApiError && e.status === 404) setLetter("gone");
      status.fail(e);
    });
  }, [load, shown, status.fail]);

  return (
    <>
      <h1>{`Dead letter ${id}`}</h1>
      <StatusRegion status={status} />
      <div id="dl-detail">
        {letter === "gone" ? <p>This dead letter is no longer kept.</p> : letter ? <Letter d={letter} status={status} after={load} /> : null}
      </div>
      <p>
        <Link href="/ui/dead-letters">Back to the dead letters</Link>
      </p>
    </>
  );
}

function Letter({ d, status, after }: { d: any; status: Status; after: (gone: boolean) => Promise<void> }) {
  const s = d.summary ?? d;
  const text: string | null = d.body_text ?? null;
  const size = Number(s.body_size ?? 0);
  const headers: any[] = d.headers ?? [];
  const preview =
    size === 0 ? (
      <p>No body.</p>
    ) : text !== null ? (
      <pre id="dl-body" tabIndex={0} aria-label="Body">
        {text.length > BODY_PREVIEW ? text.slice(0, BODY_PREVIEW) + "…" : text}
      </pre>
    ) : (
      <div>
        <p>{`Not text: ${count(size)} bytes, shown in base64.`}</p>
        <pre id="dl-body" tabIndex={0} aria-label="Body in base64">
          {String(d.body_base64 ?? "").slice(0, BODY_PREVIEW)}
        </pre>
      </div>
    );
  return (
    <>
      <Table
        head={["Field", "Value"]}
        rows={[
          ["When", when(s.at)],
          ["Route", s.route],
          ["Upstream", s.upstream],
          ["Method", s.method],
          ["URL", s.url],
          ["Upstream failure", s.last_failure],
          ["Tries", count(s.tries)],
          ["Replayed", replayState(s)],
          ["Body size", `${count(size)} bytes`],
          ["Body kept cut", s.body_truncated ? "yes: it was longer than the route's limit, so it cannot be replayed" : "no"],
        ]}
        caption="The request"
      />
      <h2>Headers</h2>
      {headers.length ? (
        <Table head={["Name", "Value"]} rows={headers.map((h) => [h.name, h.value])} caption="Headers as forwarded, credentials and cookies left out" />
      ) : (
        <p>No headers were kept.</p>
      )}
      <h2>Body</h2>
      {preview}
      <p>
        <DeadLetterActions letter={s} status={status} after={after} />
      </p>
    </>
  );
}
