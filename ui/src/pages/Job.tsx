// A job's own page: its record, its payload, and retrying or discarding it.
import { useCallback, useEffect, useState } from "react";
import { api } from "../api";
import { Table } from "../components/Table";
import { when } from "../format";
import { JobActions } from "../jobs/Actions";
import { useShown } from "../latest";
import { Link } from "../router";
import { StatusRegion, useStatus } from "../status";

export function Job({ id }: { id: string }) {
  const status = useStatus();
  const shown = useShown();
  const [job, setJob] = useState<any>(null);

  const load = useCallback(async () => {
    const j = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    if (shown()) setJob(j);
  }, [id, shown]);

  useEffect(() => {
    load().catch((e) => shown() && status.fail(e));
  }, [load, shown, status.fail]);

  return (
    <>
      <h1>{`Job ${id}`}</h1>
      <StatusRegion status={status} />
      <div>
        {job ? (
          <>
            <Table
              head={["Field", "Value"]}
              rows={Object.entries(job)
                .filter(([f]) => f !== "payload")
                .map(([f, v]) => [f, f.endsWith("_at") && typeof v === "number" ? when(v) : v == null ? "-" : String(v)])}
            />
            <h2>Payload</h2>
            <pre>{JSON.stringify(job.payload, null, 2)}</pre>
            <p>
              <JobActions job={job} status={status} after={load} />
            </p>
          </>
        ) : null}
      </div>
      <p>
        <Link href="/ui/jobs">Back to the job queue</Link>
      </p>
    </>
  );
}
