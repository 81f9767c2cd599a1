// A key's own page: its record, rotating and revoking it, its tier and overrides, the
// limits in force, its usage and its violations.
import { useEffect, useState } from "react";
import type { FormEvent } from "react";
import { api } from "../api";
import { Button } from "../components/Button";
import { Secret } from "../components/Secret";
import { Table } from "../components/Table";
import { when } from "../format";
import { Limits } from "../key/Limits";
import { Overrides } from "../key/Overrides";
import { UsageChart } from "../key/UsageChart";
import { KeyViolations } from "../key/Violations";
import { StatusRegion, useStatus } from "../status";
import { tierNames } from "../tiers";

export function Key({ id }: { id: string }) {
  const status = useStatus();
  const path = `/v1/keys/${encodeURIComponent(id)}`;
  const [key, setKey] = useState<Record<string, unknown> | null>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [tier, setTier] = useState("");
  const [tiers, setTiers] = useState<string[]>([]);
  /// Counts the changes that alter the limits in force, to draw them again.
  const [changes, setChanges] = useState(0);
  const [usage, setUsage] = useState<unknown>(null);

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const k = await api("GET", path);
        if (!live) return;
        setKey(k);
        setTier(String(k.tier ?? ""));
        api("GET", "/v1/tiers")
          .then((t) => live && setTiers(tierNames(t)))
          .catch(() => undefined);
        const u = await api("GET", `${path}/usage`).catch(() => null);
        if (live && u) setUsage(u);
      } catch (e) {
        if (live) status.fail(e);
      }
    })();
    return () => {
      live = false;
    };
  }, [path, status.fail]);

  const rotate = async () => {
    try {
      const r = await api("POST", `${path}/rotate`, {});
      setSecret(r.secret);
    } catch (e) {
      status.fail(e);
    }
  };
  const revoke = async () => {
    try {
      await api("DELETE", path);
      status.show("Revoked");
    } catch (e) {
      status.fail(e);
    }
  };
  const changeTier = async (ev: FormEvent) => {
    ev.preventDefault();
    try {
      const changed = await api("PATCH", path, { tier });
      status.show(`Tier is now ${changed.tier}`);
      setKey(changed);
      setChanges((n) => n + 1);
    } catch (e) {
      status.fail(e);
    }
  };

  return (
    <>
      <h1>{`Key ${id}`}</h1>
      <StatusRegion status={status} />
      <Secret secret={secret} />
      {key ? (
        <>
          <div>
            <Table
              head={["Field", "Value"]}
              rows={Object.entries(key).map(([f, v]) => [
                f,
                f.endsWith("_at") && typeof v === "number" ? when(v) : typeof v === "object" ? JSON.stringify(v) : String(v),
              ])}
            />
          </div>
          <p>
            <Button onClick={() => void rotate()}>Rotate</Button>{" "}
            <Button className="secondary" onClick={() => void revoke()}>
              Revoke
            </Button>
          </p>
          <form className="inline" aria-label="Change tier" onSubmit={changeTier}>
            <label htmlFor="key-tier">
              Tier <input id="key-tier" list="key-tier-list" value={tier} onChange={(e) => setTier(e.target.value)} />
            </label>
            <datalist id="key-tier-list">
              {tiers.map((t) => (
                <option key={t} value={t} />
              ))}
            </datalist>
            <button type="submit">Change tier</button>
          </form>
          <Overrides
            path={path}
            current={key.overrides}
            status={status}
            saved={(changed) => {
              setKey(changed);
              setChanges((n) => n + 1);
            }}
          />
          <h2>Limits in force</h2>
          <Limits path={path} changes={changes} />
          <UsageChart keyPath={path} />
          <KeyViolations id={id} />
          {usage ? (
            <>
              <h2>Usage now</h2>
              <pre>{JSON.stringify(usage, null, 2)}</pre>
            </>
          ) : null}
        </>
      ) : null}
    </>
  );
}
