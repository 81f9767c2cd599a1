// The reverse proxy's dead letters: the requests it could not deliver, newest first, one
// route's or all, a page at a time; replaying one through the proxy or discarding it. A
// letter's own page is DeadLetter.tsx.
import { useEffect, useState } from "react";
import { fromAddress, query, withOption } from "../address";
import { api } from "../api";
import { Button } from "../components/Button";
import { Select } from "../components/Select";
import { Table } from "../components/Table";
import { DeadLetterActions } from "../deadletters/Actions";
import { replayState } from "../deadletters/words";
import { count, when } from "../format";
import { useBeforePager } from "../pager";
import type { PageProps } from "../pages";
import { Link } from "../router";
import { StatusRegion, useStatus } from "../status";
import { DeadLetter } from "./DeadLetter";

export function DeadLetters({ rest }: PageProps) {
  return rest[0] ? <DeadLetter id={rest[0]} /> : <DeadLetterList />;
}

interface Filters {
  route: string;
  limit: string;
}

const PER_PAGE: [string, string][] = [
  ["10", "10"],
  ["25", "25"],
  ["100", "100"],
];

function DeadLetterList() {
  const status = useStatus();
  const [route, setRoute] = useState(() => fromAddress("route"));
  const [limit, setLimit] = useState(() => fromAddress("limit") || "25");
  /// The routes of the letters seen so far, for the route field's suggestions.
  const [routes, setRoutes] = useState<string[]>([]);

  const pager = useBeforePager<Filters, any[]>({
    load: async (f, before) => {
      const page = await api("GET", "/v1/dead-letters" + query({ route: f.route, before, limit: f.limit }));
      const letters: any[] = page.dead_letters;
      setRoutes((seen) => {
        const more = letters.map((d) => d.route).filter((r, i, all) => !seen.includes(r) && all.indexOf(r) === i);
        return more.length ? seen.concat(more) : seen;
      });
      return { data: letters, next: page.next ?? null };
    },
    address: (f, before) => ({ route: f.route, limit: f.limit === "25" ? null : f.limit, before }),
    status,
  });
  // The route as typed, as each load asks it.
  const filters = { route: route.trim(), limit };

  useEffect(() => {
    void pager.start(filters);
    // The first load only: later ones follow the filters.
  }, []);

  const letters = pager.shown?.data ?? [];
  const r = pager.shown?.filters.route ?? "";
  const first = pager.offset(Number(pager.shown?.filters.limit ?? limit));

  return (
    <>
      <h1>Dead letters</h1>
      <p className="hint">
        Requests the reverse proxy could not deliver on routes that keep them. A replay sends one again through the proxy now;
        delivered, it is removed.
      </p>
      <StatusRegion status={status} />
      <form
        className="inline"
        aria-label="Filter the dead letters"
        onSubmit={(ev) => {
          ev.preventDefault();
          pager.restart(filters);
        }}
      >
        <label htmlFor="dl-route">
          Route{" "}
          <input
            id="dl-route"
            type="text"
            list="dl-routes"
            placeholder="/v1 or api.example.com/v1"
            autoComplete="off"
            value={route}
            onChange={(e) => setRoute(e.target.value)}
          />
        </label>
        <datalist id="dl-routes">
          {routes.map((x) => (
            <option key={x} value={x} />
          ))}
        </datalist>
        <label htmlFor="dl-limit">
          Per page{" "}
          <Select
            id="dl-limit"
            options={withOption(PER_PAGE, limit)}
            value={limit}
            onChange={(v) => {
              setLimit(v);
              pager.restart({ ...filters, limit: v });
            }}
          />
        </label>
        <button type="submit" className="secondary">
          Show
        </button>
      </form>
      <p id="dl-page" aria-live="polite">
        {pager.shown
          ? letters.length
            ? `Dead letters ${first + 1} to ${first + letters.length}, newest first` + (r ? `, of route ${r}` : "")
            : pager.past
              ? "No older dead letters."
              : r
                ? `No dead letter of route ${r}.`
                : "No dead letters: the proxy delivered everything it was given, or nothing was kept."
          : ""}
      </p>
      <div id="dl-list">
        {letters.length ? (
          <Table
            head={["When", "Route", "Method", "URL", "Upstream failure", "Tries", "Replayed", "Actions"]}
            rows={letters.map((d) => [
              when(d.at),
              d.route,
              d.method,
              <Link href={`/ui/dead-letters/${encodeURIComponent(d.id)}`} aria-label={`Dead letter ${d.id}: ${d.method} ${d.url}`}>
                {d.url}
              </Link>,
              d.last_failure,
              count(d.tries),
              replayState(d),
              <DeadLetterActions key={d.id} letter={d} status={status} after={() => pager.reload(filters)} />,
            ])}
            caption="The proxy's dead letters"
          />
        ) : null}
      </div>
      <p className="pager">
        <Button
          className="secondary"
          label="Newer dead letters"
          ref={pager.newer}
          disabled={!pager.shown || !pager.past}
          onClick={() => pager.move(-1, filters)}
        >
          Newer
        </Button>{" "}
        <Button
          className="secondary"
          label="Older dead letters"
          ref={pager.older}
          disabled={!pager.shown || pager.shown.next == null}
          onClick={() => pager.move(1, filters)}
        >
          Older
        </Button>
      </p>
    </>
  );
}
