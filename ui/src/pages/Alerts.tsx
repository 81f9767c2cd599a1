// Alerts: the rules configured, what is firing now, and the history of firing and
// resolving, a page at a time.
import { useEffect, useState } from "react";
import { fromAddress, query, withOption } from "../address";
import { api } from "../api";
import { Button } from "../components/Button";
import { Select } from "../components/Select";
import { Table } from "../components/Table";
import { count, seconds, when } from "../format";
import { useBeforePager } from "../pager";
import { StatusRegion, useStatus } from "../status";

/// What a rule watches, in words.
function watches(r: any): string {
  if (r.usage) {
    const of = r.usage.of === "included" ? "the plan's included units" : `${count(r.usage.of)} units`;
    return `usage per ${r.usage.per} reaches ${r.usage.percent}% of ${of} this period`;
  }
  if (r.denials) {
    return `${count(r.denials.at_least)} or more denials per ${r.denials.per} within ${seconds(r.denials.window_seconds)}`;
  }
  if (r.spike) {
    return `a key's denials in a minute reach ${r.spike.factor}× its usual rate (at least ${count(r.spike.at_least)}; half-life ${seconds(r.spike.half_life_seconds)})`;
  }
  if (r.failing) return `the ${r.failing} does not answer`;
  return "-";
}

interface Filters {
  rule: string;
  limit: string;
}

const PER_PAGE: [string, string][] = [
  ["10", "10"],
  ["25", "25"],
  ["100", "100"],
];

export function Alerts() {
  const status = useStatus();
  const [rule, setRule] = useState(() => fromAddress("rule"));
  const [limit, setLimit] = useState(() => fromAddress("limit") || "25");
  /// The rules' names, from the first answer, for the filter.
  const [names, setNames] = useState<string[] | null>(null);
  const [addressRule] = useState(rule);

  const pager = useBeforePager<Filters, any>({
    load: async (f, before) => {
      const a = await api("GET", "/v1/alerts" + query({ rule: f.rule, before, limit: f.limit }));
      setNames((n) => n ?? a.rules.map((r: any) => r.name));
      return { data: a, next: a.next_before ?? null };
    },
    address: (f, before) => ({ rule: f.rule, limit: f.limit === "25" ? null : f.limit, before }),
    status,
  });
  const filters = { rule, limit };

  useEffect(() => {
    void pager.start({ rule, limit });
    // The first load only: later ones follow the filters.
  }, []);

  // A rule from the address comes first, as it was chosen before the names came.
  const ruleOptions: [string, string][] = [["", "every rule"], ...(addressRule ? [[addressRule, addressRule] as [string, string]] : [])];
  for (const n of names ?? []) if (!ruleOptions.some(([v]) => v === n)) ruleOptions.push([n, n]);

  const a = pager.shown?.data;
  const shownRule = pager.shown?.filters.rule ?? "";
  const events: any[] = a?.events ?? [];
  const first = pager.offset(Number(pager.shown?.filters.limit ?? limit));

  return (
    <>
      <h1>Alerts</h1>
      <StatusRegion status={status} />
      <h2>Rules</h2>
      <div id="alert-rules">
        {a ? (
          a.rules.length ? (
            <Table
              head={["Rule", "Watches", "Severity", "Channels", "Tells the owner"]}
              rows={a.rules.map((r: any) => [
                r.name,
                watches(r),
                r.severity,
                (r.channels ?? []).join(", ") || "-",
                r.outreach ? "yes" : "no",
              ])}
            />
          ) : (
            <p>No alert rules are configured: add an alerts section to the configuration.</p>
          )
        ) : null}
      </div>
      <h2>Firing now</h2>
      <div id="alert-firing">
        {a ? (
          a.firing.length ? (
            <Table
              head={["Rule", "About", "Since", "Value"]}
              rows={a.firing.map((f: any) => [f.rule, f.subject, when(f.since), String(f.value)])}
            />
          ) : (
            <p>{shownRule ? `Nothing of ${shownRule} is firing.` : "Nothing is firing."}</p>
          )
        ) : null}
      </div>
      <h2>History</h2>
      <form
        className="inline"
        aria-label="Filter the history"
        onSubmit={(ev) => {
          ev.preventDefault();
          pager.restart(filters);
        }}
      >
        <label htmlFor="alert-rule">
          Rule{" "}
          <Select
            id="alert-rule"
            options={ruleOptions}
            value={rule}
            onChange={(v) => {
              setRule(v);
              pager.restart({ ...filters, rule: v });
            }}
          />
        </label>
        <label htmlFor="alert-limit">
          Per page{" "}
          <Select
            id="alert-limit"
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
      <p id="alert-page" aria-live="polite">
        {a
          ? events.length
            ? `Events ${first + 1} to ${first + events.length}, newest first` + (shownRule ? `, of ${shownRule}` : "")
            : pager.past
              ? "No older events."
              : "No alert has fired yet."
          : ""}
      </p>
      <div id="alert-history">
        {events.length ? (
          <Table
            head={["At", "Rule", "About", "Event", "Severity", "Value", "Summary"]}
            rows={events.map((e) => [
              when(e.at),
              e.rule,
              e.subject,
              <span className={`event ${e.event}`}>{e.event}</span>,
              e.severity,
              String(e.value),
              e.summary,
            ])}
          />
        ) : null}
      </div>
      <p className="pager">
        <Button className="secondary" ref={pager.newer} disabled={!pager.shown || !pager.past} onClick={() => pager.move(-1, filters)}>
          Newer events
        </Button>{" "}
        <Button className="secondary" ref={pager.older} disabled={!pager.shown || pager.shown.next == null} onClick={() => pager.move(1, filters)}>
          Older events
        </Button>
      </p>
    </>
  );
}
