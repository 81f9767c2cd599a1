// Retry (a dead or discarded job) and Discard (a queued or dead one), as the server allows
// from each state (the operator role's to do); a refusal, for a role or a state, is told
// in the status.
import { api, ApiError } from "../api";
import { Button } from "../components/Button";
import type { Status } from "../status";

export function JobActions({ job, status, after }: { job: any; status: Status; after: () => Promise<void> }) {
  const act = (verb: "retry" | "discard") => async () => {
    try {
      const moved = await api("POST", `/v1/jobs/${encodeURIComponent(job.id)}/${verb}`);
      status.show(verb === "retry" ? `${job.id} is ${moved.state} again, with fresh tries.` : `${job.id} is ${moved.state}.`);
      await after();
    } catch (e) {
      const verbing = verb === "retry" ? "Retrying" : "Discarding";
      if (e instanceof ApiError && e.status === 403) {
        status.fail(new Error(`${verbing} a job needs the operator role, which this token does not have (${e.detail}).`));
      } else status.fail(e);
    }
  };
  const retry = job.state === "dead" || job.state === "discarded";
  const discard = job.state === "dead" || job.state === "queued";
  return (
    <span className="actions">
      {retry ? (
        <Button label={`Retry ${job.id}`} onClick={() => void act("retry")()}>
          Retry
        </Button>
      ) : null}
      {discard ? (
        <>
          {" "}
          <Button className="secondary" label={`Discard ${job.id}`} onClick={() => void act("discard")()}>
            Discard
          </Button>
        </>
      ) : null}
    </span>
  );
}
