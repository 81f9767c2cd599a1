// The violations: the last requests denied, newest first.
import { useEffect, useState } from "react";
import { api } from "../api";
import { Table } from "../components/Table";
import { when } from "../format";
import { StatusRegion, useStatus } from "../status";

export function Violations() {
  const status = useStatus();
  const [items, setItems] = useState<any[] | null>(null);
  useEffect(() => {
    let live = true;
    api("GET", "/v1/violations?limit=100")
      .then((v) => live && setItems(v.violations))
      .catch((e) => live && status.fail(e));
    return () => {
      live = false;
    };
  }, [status.fail]);
  return (
    <>
      <h1>Violations</h1>
      <StatusRegion status={status} />
      {items ? <Table head={["At", "Key", "Rule", "Code"]} rows={items.map((i) => [when(i.at), i.key_id ?? "-", i.rule, i.code])} /> : null}
    </>
  );
}
