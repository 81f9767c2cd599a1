// The job queue: how many jobs stand in each state, the dead letters with their last
// error, and retrying or discarding them. A job's own page is Job.tsx.
import { useEffect, useState } from "react";
import { fromAddress, query, toAddress, withOption } from "../address";
import { api } from "../api";
import { Select } from "../components/Select";
import { Table } from "../components/Table";
import { count, when } from "../format";
import { JobActions } from "../jobs/Actions";
import { useLatest } from "../latest";
import type { PageProps } from "../pages";
import { Link } from "../router";
import { StatusRegion, useStatus } from "../status";
import { Job } from "./Job";

const JOB_STATES = ["queued", "running", "done", "dead", "discarded"];

export function Jobs({ rest }: PageProps) {
  return rest[0] ? <Job id={rest[0]} /> : <JobList />;
}

function JobList() {
  const status = useStatus();
  const latest = useLatest();
  const [state, setState] = useState(() => fromAddress("state") || "dead");
  const [shown, setShown] = useState<{ state: string; counts: Map<string, any>; jobs: any[] } | null>(null);

  const load = async (s: string) => {
    const current = latest();
    const j = await api("GET", "/v1/jobs" + query({ state: s, limit: 200 }));
    if (!current()) return;
    toAddress(true, { state: s === "dead" ? null : s });
    setShown({ state: s, counts: new Map(j.counts.map((c: any) => [c.state, c])), jobs: j.jobs });
  };
  const reload = (s: string) => void load(s).catch((e) => status.fail(e));

  useEffect(() => {
    reload(state);
    // The first load only: later ones follow the state chosen.
  }, []);

  const s = shown?.state;
  return (
    <>
      <h1>Job queue</h1>
      <StatusRegion status={status} />
      <h2>Jobs per state</h2>
      <div id="job-counts">
        {shown ? (
          <Table
            head={["State", "Jobs", "Oldest queued at"]}
            rows={JOB_STATES.map((x) => [
              x,
              <span id={`count-${x}`}>{count(shown.counts.get(x)?.count ?? 0)}</span>,
              when(shown.counts.get(x)?.oldest),
            ])}
          />
        ) : null}
      </div>
      <h2 id="jobs-title">{s ? (s === "dead" ? "Dead letters" : `Jobs ${s}`) : ""}</h2>
      <form
        className="inline"
        aria-label="Choose a state"
        onSubmit={(ev) => {
          ev.preventDefault();
          reload(state);
        }}
      >
        <label htmlFor="job-state">
          State{" "}
          <Select
            id="job-state"
            options={withOption(
              JOB_STATES.map((x): [string, string] => [x, x]),
              state,
            )}
            value={state}
            onChange={(v) => {
              setState(v);
              reload(v);
            }}
          />
        </label>
        <button type="submit" className="secondary">
          Show
        </button>
      </form>
      <div id="job-list">
        {shown ? (
          shown.jobs.length ? (
            <Table
              head={["Job", "Kind", "Tries", "Last error", "Changed", "Actions"]}
              rows={shown.jobs.map((job) => [
                <Link href={`/ui/jobs/${encodeURIComponent(job.id)}`}>{job.id}</Link>,
                job.kind,
                `${job.attempts} of ${job.max_attempts}`,
                job.last_error ?? "-",
                when(job.updated_at),
                <JobActions key={job.id} job={job} status={status} after={() => load(state)} />,
              ])}
            />
          ) : (
            <p>{s === "dead" ? "No dead letters: every job either ran or is still trying." : `No job is ${s}.`}</p>
          )
        ) : null}
      </div>
    </>
  );
}
