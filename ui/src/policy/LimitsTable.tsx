// Rules (or a tier's limits) as a table: the fields every limit has in columns of their
// own, the rest together.
import { Table } from "../components/Table";
import { count } from "../format";

const OWN_COLUMNS = ["name", "algorithm", "limit", "period", "key", "match"];

export function LimitsTable({ list, none, first, caption }: { list: any; none: string; first: string; caption?: string }) {
  if (!Array.isArray(list) || !list.length) return <p>{none}</p>;
  return (
    <Table
      head={[first, "Algorithm", "Limit", "Period", "Counter key", "Matches", "Also"]}
      rows={list.map((r: any) => [
        String(r.name ?? "-"),
        String(r.algorithm ?? "gcra"),
        typeof r.limit === "number" ? count(r.limit) : String(r.limit ?? "-"),
        String(r.period ?? "-"),
        String(r.key ?? "-"),
        r.match
          ? Object.entries(r.match)
              .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
              .join(", ")
          : "every request",
        Object.entries(r)
          .filter(([k]) => !OWN_COLUMNS.includes(k))
          .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : String(v)}`)
          .join(", ") || "-",
      ])}
      caption={caption}
    />
  );
}
