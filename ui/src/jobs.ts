// The job queue: how many jobs stand in each state, the dead letters with their last
// error, and retrying or discarding them (the operator role's to do).

const JOB_STATES = ["queued", "running", "done", "dead", "discarded"];

async function jobsPage(main: HTMLElement, rest: string[]) {
  const here = leaving.signal;
  if (rest[0]) return jobPage(main, rest[0]);
  const status = statusRegion();
  const counts = el("div", { id: "job-counts" });
  const state = select("job-state", JOB_STATES.map((s) => [s, s] as [string, string]), "dead");
  const filter = el(
    "form",
    { class: "inline", "aria-label": "Choose a state" },
    el("label", { for: "job-state" }, "State ", state),
    el("button", { type: "submit", class: "secondary" }, "Show"),
  );
  const title = el("h2", { id: "jobs-title" });
  const list = el("div", { id: "job-list" });
  main.append(
    el("h1", {}, "Job queue"),
    status,
    el("h2", {}, "Jobs per state"),
    counts,
    title,
    filter,
    list,
  );
  choose(state, fromAddress("state"));
  const load = async () => {
    toAddress(here, { state: state.value === "dead" ? null : state.value });
    const j = await api("GET", "/v1/jobs" + query({ state: state.value, limit: 200 }));
    const by = new Map<string, any>(j.counts.map((c: any) => [c.state, c]));
    counts.replaceChildren(
      table(
        ["State", "Jobs", "Oldest queued at"],
        JOB_STATES.map((s) => [s, el("span", { id: `count-${s}` }, count(by.get(s)?.count ?? 0)), when(by.get(s)?.oldest)]),
      ),
    );
    title.textContent = state.value === "dead" ? "Dead letters" : `Jobs ${state.value}`;
    const jobs: any[] = j.jobs;
    list.replaceChildren(
      jobs.length
        ? table(
            ["Job", "Kind", "Tries", "Last error", "Changed", "Actions"],
            jobs.map((job) => [
              el("a", { href: `/ui/jobs/${encodeURIComponent(job.id)}` }, job.id),
              job.kind,
              `${job.attempts} of ${job.max_attempts}`,
              job.last_error ?? "-",
              when(job.updated_at),
              jobActions(main, job, load),
            ]),
          )
        : el("p", {}, state.value === "dead" ? "No dead letters: every job either ran or is still trying." : `No job is ${state.value}.`),
    );
  };
  state.addEventListener("change", () => void load().catch((e) => showError(main, e)));
  filter.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void load().catch((e) => showError(main, e));
  });
  try {
    await load();
  } catch (e) {
    showError(main, e);
  }
}

/// Retry (a dead or discarded job) and discard (a queued or dead one), as the server
/// allows from each state; a refusal, for a role or a state, is told in the status.
function jobActions(main: HTMLElement, job: any, after: () => Promise<void>): HTMLElement {
  const act = (verb: "retry" | "discard") => async () => {
    try {
      const moved = await api("POST", `/v1/jobs/${encodeURIComponent(job.id)}/${verb}`);
      showStatus(
        main,
        verb === "retry" ? `${job.id} is ${moved.state} again, with fresh tries.` : `${job.id} is ${moved.state}.`,
      );
      await after();
    } catch (e) {
      const verbing = verb === "retry" ? "Retrying" : "Discarding";
      if (e instanceof ApiError && e.status === 403) {
        showError(main, new Error(`${verbing} a job needs the operator role, which this token does not have (${e.detail}).`));
      } else showError(main, e);
    }
  };
  const out = el("span", { class: "actions" });
  if (job.state === "dead" || job.state === "discarded") out.append(button("Retry", act("retry"), "", `Retry ${job.id}`));
  if (job.state === "dead" || job.state === "queued") {
    out.append(" ", button("Discard", act("discard"), "secondary", `Discard ${job.id}`));
  }
  return out;
}

async function jobPage(main: HTMLElement, id: string) {
  const status = statusRegion();
  const body = el("div", {});
  main.append(el("h1", {}, `Job ${id}`), status, body, el("p", {}, el("a", { href: "/ui/jobs" }, "Back to the job queue")));
  const load = async () => {
    const job = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    const fields = Object.entries(job).filter(([f]) => f !== "payload");
    body.replaceChildren(
      table(
        ["Field", "Value"],
        fields.map(([f, v]) => [f, f.endsWith("_at") && typeof v === "number" ? when(v) : v == null ? "-" : String(v)]),
      ),
      el("h2", {}, "Payload"),
      el("pre", {}, JSON.stringify(job.payload, null, 2)),
      el("p", {}, jobActions(main, job, load)),
    );
  };
  try {
    await load();
  } catch (e) {
    showError(main, e);
  }
}
