// The audit log: what was changed through the admin API, by whom.
import { useEffect, useState } from "react";
import { api } from "../api";
import { Table } from "../components/Table";
import { when } from "../format";
import { StatusRegion, useStatus } from "../status";

export function Audit() {
  const status = useStatus();
  const [items, setItems] = useState<any[] | null>(null);
  useEffect(() => {
    let live = true;
    api("GET", "/v1/audit?limit=100")
      .then((a) => live && setItems(a.entries))
      .catch((e) => live && status.fail(e));
    return () => {
      live = false;
    };
  }, [status.fail]);
  return (
    <>
      <h1>Audit log</h1>
      <StatusRegion status={status} />
      {items ? (
        <Table
          head={["At", "Actor", "Role", "Action", "Target", "Status"]}
          rows={items.map((i) => [when(i.at), i.actor, i.role, i.action, i.target, String(i.status)])}
        />
      ) : null}
    </>
  );
}
