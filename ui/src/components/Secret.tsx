// The secret of a key just made or rotated: shown this once, with a copy button. The
// region is always there, so that the secret is announced when it appears.
import { Button } from "./Button";

export function Secret({ secret }: { secret: string | null }) {
  return (
    <div id="secret" aria-live="polite">
      {secret !== null ? (
        <>
          <p>The key's secret, shown this once: </p>
          <code className="secret" id="secret-value">
            {secret}
          </code>{" "}
          <Button className="secondary" onClick={() => void navigator.clipboard?.writeText(secret)}>
            Copy
          </Button>
        </>
      ) : null}
    </div>
  );
}
