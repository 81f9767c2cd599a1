// Billing: an owner's current period as it stands, and the records of closed periods
// with their export.
import { useEffect, useState } from "react";
import { fromAddress, query, toAddress, withOption } from "../address";
import { api, apiBlob, ApiError } from "../api";
import { Button } from "../components/Button";
import { Select } from "../components/Select";
import { Table } from "../components/Table";
import { count, money, when } from "../format";
import { useLatest } from "../latest";
import { StatusRegion, useStatus } from "../status";

/// What the page shows of one owner: its current period and its closed ones.
type Shown =
  | { kind: "owner"; owner: string; now: any; records: any[] }
  | { kind: "no-owner" }
  | { kind: "off" };

export function Billing() {
  const status = useStatus();
  const latest = useLatest();
  const [owners, setOwners] = useState<[string, string][]>([]);
  const [owner, setOwner] = useState("");
  const [shown, setShown] = useState<Shown | null>(null);

  const show = async (o: string) => {
    if (!o) return;
    const current = latest();
    toAddress(current(), { owner: o });
    const [now, records] = await Promise.all([
      api("GET", `/v1/owners/${encodeURIComponent(o)}/billing/current`),
      api("GET", "/v1/billing/records" + query({ owner: o })),
    ]);
    if (current()) setShown({ kind: "owner", owner: o, now, records: records.records });
  };
  const run = (o: string) =>
    void show(o).catch((e) => {
      if (e instanceof ApiError && e.status === 404 && /billing/i.test(e.title + e.detail)) setShown({ kind: "off" });
      else status.fail(e);
    });

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        // Owners with a record, and owners of keys that have none: both may be billed.
        const [records, keys] = await Promise.all([api("GET", "/v1/owners?limit=1000"), api("GET", "/v1/keys?limit=1000")]);
        if (!live) return;
        const names = new Map<string, string>();
        for (const o of records.owners) names.set(o.id, o.name && o.name !== o.id ? `${o.id} (${o.name})` : o.id);
        for (const k of keys.keys) if (!names.has(k.owner)) names.set(k.owner, k.owner);
        const sorted = [...names.entries()].sort((a, b) => a[0].localeCompare(b[0]));
        if (!sorted.length) {
          setShown({ kind: "no-owner" });
          return;
        }
        const chosen = fromAddress("owner") || sorted[0][0];
        setOwners(withOption(sorted, chosen));
        setOwner(chosen);
        run(chosen);
      } catch (e) {
        if (live) status.fail(e);
      }
    })();
    return () => {
      live = false;
    };
    // The first load only: later ones follow the owner chosen.
  }, []);

  // The export needs the token too, so it is fetched here and handed over as a file
  // rather than linked (a link could not send the Authorization header).
  const download = async (o: string) => {
    try {
      const blob = await apiBlob("/v1/billing/records" + query({ owner: o, format: "csv" }));
      const url = URL.createObjectURL(blob);
      const a = document.createElement("a");
      a.href = url;
      a.download = `billing-${o}.csv`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      status.show(`Downloaded billing-${o}.csv`);
    } catch (e) {
      status.fail(e);
    }
  };

  return (
    <>
      <h1>Billing</h1>
      <StatusRegion status={status} />
      <form
        className="inline"
        aria-label="Choose an owner"
        onSubmit={(ev) => {
          ev.preventDefault();
          run(owner);
        }}
      >
        <label htmlFor="billing-owner">
          Owner{" "}
          <Select
            id="billing-owner"
            options={owners}
            value={owner}
            onChange={(v) => {
              setOwner(v);
              run(v);
            }}
          />
        </label>
        <button type="submit" className="secondary">
          Show
        </button>
      </form>
      <h2>This period so far</h2>
      <div id="billing-current">
        {shown?.kind === "owner" ? (
          <Current owner={shown.owner} now={shown.now} />
        ) : shown?.kind === "off" ? (
          <p>Billing is not configured on this server: add a billing section with a plan per tier.</p>
        ) : shown?.kind === "no-owner" ? (
          <p>No owner yet: create a key or an owner record first.</p>
        ) : null}
      </div>
      <h2>Closed periods</h2>
      <p>
        {shown?.kind === "owner" ? (
          <Button className="secondary" label={`Download CSV of ${shown.owner}'s closed periods`} onClick={() => void download(shown.owner)}>
            Download CSV
          </Button>
        ) : null}
      </p>
      <div id="billing-records">{shown?.kind === "owner" ? <Closed owner={shown.owner} scope={shown.now.scope} records={shown.records} /> : null}</div>
    </>
  );
}

/// Its tier, told with the account when the plan bills per key.
function tierOf(scope: string, l: any): string {
  return scope === "key" ? `${l.tier} (key ${l.account})` : l.tier;
}

function Current({ owner, now }: { owner: string; now: any }) {
  const lines: any[] = now.lines;
  if (!lines.length) return <p>{`${owner} has no live key on a billed tier this period.`}</p>;
  return (
    <>
      <Table
        head={["Tier", "Period", "Units", "Included", "Beyond", "Base fee", "Overage", "Amount"]}
        rows={lines.map((l) => [
          tierOf(now.scope, l),
          `${l.period} (${when(l.period_start)} to ${when(l.period_end)} UTC)`,
          count(l.units),
          count(l.included),
          count(l.overage_units),
          money(l.base_fee, l.currency),
          money(l.overage_amount, l.currency),
          money(l.amount, l.currency),
        ])}
        caption={`${owner}: the current period, projected from the usage so far`}
      />
      <p id="billing-total">
        {now.total != null
          ? `Total so far: ${money(now.total, lines[0].currency)}`
          : "The lines are in more than one currency, so they have no single total."}
      </p>
    </>
  );
}

function Closed({ owner, scope, records }: { owner: string; scope: string; records: any[] }) {
  if (!records.length) return <p>{`No period of ${owner} has been closed yet.`}</p>;
  return (
    <Table
      head={["Period (UTC)", "Tier", "Units", "Included", "Beyond", "Base fee", "Overage", "Amount", "Closed"]}
      rows={records.map((r) => [
        `${when(r.period_start)} to ${when(r.period_end)}`,
        tierOf(scope, r),
        count(r.units),
        count(r.included),
        count(r.overage_units),
        money(r.base_fee, r.currency),
        money(r.overage_amount, r.currency),
        money(r.amount, r.currency),
        when(r.closed_at),
      ])}
      caption={`${owner}: records of closed periods, oldest first`}
    />
  );
}
