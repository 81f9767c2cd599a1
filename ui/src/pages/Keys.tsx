// Keys: the list with its filters, and creating a key. A key's own page is Key.tsx.
import { useEffect, useRef, useState } from "react";
import type { FormEvent } from "react";
import { fromAddress, query, toAddress, withOption } from "../address";
import { api } from "../api";
import { Button } from "../components/Button";
import { Secret } from "../components/Secret";
import { Select } from "../components/Select";
import { Table } from "../components/Table";
import { when } from "../format";
import { useLatest } from "../latest";
import { useNativeChange } from "../nativeChange";
import type { PageProps } from "../pages";
import { Link } from "../router";
import { StatusRegion, useStatus } from "../status";
import { tierNames } from "../tiers";
import { Key } from "./Key";

export function Keys({ rest }: PageProps) {
  return rest[0] ? <Key id={rest[0]} /> : <KeyList />;
}

/// The filters asked of the server (the search narrows what came back).
interface Asked {
  status: string;
  tier: string;
  owner: string;
}

const STATUSES: [string, string][] = [
  ["", "any status"],
  ["active", "active"],
  ["disabled", "disabled"],
  ["revoked", "revoked"],
];

function KeyList() {
  const status = useStatus();
  const latest = useLatest();
  const [name, setName] = useState("");
  const [owner, setOwner] = useState("");
  const [tier, setTier] = useState("");
  const [secret, setSecret] = useState<string | null>(null);

  const [search, setSearch] = useState(() => fromAddress("q"));
  const [byStatus, setByStatus] = useState(() => fromAddress("status"));
  const [byTier, setByTier] = useState(() => fromAddress("tier"));
  const [byOwner, setByOwner] = useState(() => fromAddress("owner"));
  const byOwnerField = useRef<HTMLInputElement>(null);

  const [tiers, setTiers] = useState<string[]>([]);
  const [ownerRecords, setOwnerRecords] = useState<{ id: string; name?: string }[]>([]);
  /// The owners of the keys loaded so far, for the owner fields' suggestions.
  const [keyOwners, setKeyOwners] = useState<string[]>([]);
  const [list, setList] = useState<{ keys: any[]; next: string | null } | null>(null);

  const asked = (): Asked => ({ status: byStatus, tier: byTier, owner: byOwner.trim() });

  const load = async (a: Asked, after: string | null = null) => {
    const current = latest();
    const page = await api("GET", "/v1/keys" + query({ ...a, after, limit: 1000 }));
    if (!current()) return;
    setList((l) => ({ keys: after && l ? l.keys.concat(page.keys) : page.keys, next: page.next ?? null }));
    setKeyOwners((known) => {
      const more = page.keys.map((k: any) => k.owner).filter((o: string, i: number, all: string[]) => !known.includes(o) && all.indexOf(o) === i);
      return more.length ? known.concat(more) : known;
    });
  };
  const reload = (a: Asked) => void load(a).catch((e) => status.fail(e));

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const [t, known] = await Promise.all([
          api("GET", "/v1/tiers"),
          api("GET", "/v1/owners?limit=1000").catch(() => ({ owners: [] })),
        ]);
        if (!live) return;
        setTiers(tierNames(t));
        setOwnerRecords(known.owners);
        await load(asked());
      } catch (e) {
        if (live) status.fail(e);
      }
    })();
    return () => {
      live = false;
    };
    // The first load only: later ones follow the filters' changes.
  }, []);

  // The address follows the list shown and the search, as they are drawn.
  useEffect(() => {
    if (list) toAddress(true, { q: search.trim(), status: byStatus, tier: byTier, owner: byOwner.trim() });
  }, [list, search]);

  useNativeChange(byOwnerField, () => reload(asked()));

  const create = async (ev: FormEvent) => {
    ev.preventDefault();
    try {
      const body: Record<string, unknown> = { name, owner };
      if (tier) body.tier = tier;
      const made = await api("POST", "/v1/keys", body);
      setSecret(made.secret);
      status.show(`Created ${made.key.id}`);
      await load(asked());
    } catch (e) {
      status.fail(e);
    }
  };

  const q = search.trim().toLowerCase();
  const shown = list
    ? list.keys.filter((k) => [k.id, k.name, k.tier, k.owner].some((f) => String(f ?? "").toLowerCase().includes(q)))
    : [];
  const recordIds = new Set(ownerRecords.map((o) => o.id));

  return (
    <>
      <h1>Keys</h1>
      <StatusRegion status={status} />
      <h2>Create a key</h2>
      <form className="inline" aria-label="Create a key" onSubmit={create}>
        <label htmlFor="new-name">
          Name <input id="new-name" required value={name} onChange={(e) => setName(e.target.value)} />
        </label>
        <label htmlFor="new-owner">
          Owner <input id="new-owner" required list="owner-list" value={owner} onChange={(e) => setOwner(e.target.value)} />
        </label>
        <label htmlFor="new-tier">
          Tier <input id="new-tier" list="tier-list" value={tier} onChange={(e) => setTier(e.target.value)} />
        </label>
        <button type="submit">Create key</button>
      </form>
      <Secret secret={secret} />
      <h2>Every key</h2>
      <form
        className="inline"
        role="search"
        aria-label="Filter keys"
        onSubmit={(ev) => {
          ev.preventDefault();
          reload(asked());
        }}
      >
        <label htmlFor="search">
          Search <input id="search" type="search" autoComplete="off" value={search} onChange={(e) => setSearch(e.target.value)} />
        </label>
        <label htmlFor="filter-status">
          Status{" "}
          <Select
            id="filter-status"
            options={withOption(STATUSES, byStatus)}
            value={byStatus}
            onChange={(v) => {
              setByStatus(v);
              reload({ ...asked(), status: v });
            }}
          />
        </label>
        <label htmlFor="filter-tier">
          Tier{" "}
          <Select
            id="filter-tier"
            options={withOption([["", "any tier"], ...tiers.map((t): [string, string] => [t, t])], byTier)}
            value={byTier}
            onChange={(v) => {
              setByTier(v);
              reload({ ...asked(), tier: v });
            }}
          />
        </label>
        <label htmlFor="filter-owner">
          Owner{" "}
          <input
            id="filter-owner"
            list="owner-list"
            autoComplete="off"
            ref={byOwnerField}
            value={byOwner}
            onChange={(e) => setByOwner(e.target.value)}
          />
        </label>
        <button type="submit" className="secondary">
          Filter
        </button>
      </form>
      <p id="key-count" aria-live="polite">
        {list
          ? `${shown.length} ${shown.length === 1 ? "key" : "keys"}` +
            (q ? ` matching “${search.trim()}”` : "") +
            (list.next ? `, of the first ${list.keys.length} loaded` : "")
          : ""}
      </p>
      <div id="list">
        {list ? (
          shown.length ? (
            <Table
              head={["Name", "Id", "Owner", "Tier", "Status", "Created", "Last used"]}
              rows={shown.map((k) => [
                <Link href={`/ui/keys/${encodeURIComponent(k.id)}`}>{k.name || k.id}</Link>,
                k.id,
                k.owner,
                k.tier,
                String(k.status),
                when(k.created_at),
                when(k.last_used_at),
              ])}
            />
          ) : (
            <p>No key matches.</p>
          )
        ) : null}
      </div>
      <p>
        {list?.next ? (
          <Button className="secondary" onClick={() => void load(asked(), list.next).catch((e) => status.fail(e))}>
            Load more keys
          </Button>
        ) : null}
      </p>
      <datalist id="owner-list">
        {ownerRecords.map((o) => (
          <option key={o.id} value={o.id}>
            {o.name ?? o.id}
          </option>
        ))}
        {keyOwners
          .filter((o) => !recordIds.has(o))
          .map((o) => (
            <option key={`key:${o}`} value={o} />
          ))}
      </datalist>
      <datalist id="tier-list">
        {tiers.map((t) => (
          <option key={t} value={t} />
        ))}
      </datalist>
    </>
  );
}
