// Policy: the tiers and rules in force, "try a request", and (for the admin role) an
// editor of the policy that shows each validation error at its path.
import { useEffect, useState } from "react";
import { isAdmin } from "../admin";
import { api } from "../api";
import { PolicyEditor } from "../policy/Editor";
import { LimitsTable } from "../policy/LimitsTable";
import { TryRequest } from "../policy/TryRequest";
import { StatusRegion, useStatus } from "../status";

export function Policy() {
  const status = useStatus();
  /// The policy as loaded, for the editor to start from.
  const [loaded, setLoaded] = useState<any>(null);
  /// The policy in force, as last loaded or saved.
  const [policy, setPolicy] = useState<any>(null);
  const [admin, setAdmin] = useState<boolean | null>(null);

  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const config = await api("GET", "/v1/config");
        if (!live) return;
        setLoaded(config);
        setPolicy(config);
        const may = await isAdmin();
        if (live) setAdmin(may);
      } catch (e) {
        if (live) status.fail(e);
      }
    })();
    return () => {
      live = false;
    };
  }, [status.fail]);

  const tiers = Object.entries(policy?.tiers ?? {});
  return (
    <>
      <h1>Policy</h1>
      <StatusRegion status={status} />
      <TryRequest />
      {policy ? (
        <>
          <h2>Rules in force</h2>
          <div id="policy-rules">
            <LimitsTable list={policy.rules} none="The policy has no rules." first="Rule" />
          </div>
          <h2>Tiers</h2>
          <div id="policy-tiers">
            {tiers.length ? (
              tiers.map(([name, t]: [string, any]) => (
                <LimitsTable
                  key={name}
                  list={t.limits}
                  none={`${name} has no limits.`}
                  first="Limit"
                  caption={t.description ? `${name}: ${t.description}` : name}
                />
              ))
            ) : (
              <p>The policy defines no tiers.</p>
            )}
          </div>
          <details>
            <summary>The whole policy in force, as JSON</summary>
            <pre id="policy-json">{JSON.stringify(policy, null, 2)}</pre>
          </details>
          <section aria-labelledby="edit-title">
            <h2 id="edit-title">Edit the policy</h2>
            {admin === true ? (
              <PolicyEditor initial={loaded} status={status} saved={setPolicy} />
            ) : admin === false ? (
              <p id="edit-refused">Changing the policy needs the admin role; this token may read it only.</p>
            ) : null}
          </section>
        </>
      ) : null}
    </>
  );
}
