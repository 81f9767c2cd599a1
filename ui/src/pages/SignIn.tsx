// Signing in: with an admin token, or through the OpenID provider when the server offers
// one. Once signed in, the page asked for (a shared link with its filters) is shown.
import { useEffect, useState } from "react";
import type { FormEvent } from "react";
import { fromAddress } from "../address";
import { useRouter } from "../router";
import { useSession } from "../session";
import { StatusRegion, useStatus } from "../status";

/// What a failed sign-in through the provider comes back with (`?signin_error=`), in
/// words of the dashboard's own: nothing in the address is shown as it came.
const SIGN_IN_ERRORS: Record<string, string> = {
  denied: "The sign-in was refused at the identity provider.",
  expired: "The sign-in took too long or was not started in this browser. Try again.",
  state: "The identity provider's answer did not belong to this sign-in. Try again.",
  unavailable: "The identity provider could not be reached. Try again later, or sign in with a token.",
  token: "The identity provider's token was refused; the server's log says why.",
  "no-role": "You signed in, but your account has no Tollgate role. Ask an administrator for one.",
  provider: "The identity provider reported an error.",
  off: "Sign-in with an identity provider is not configured.",
};

export function SignIn() {
  const { provider, signInWithToken } = useSession();
  const { navigate } = useRouter();
  const status = useStatus();
  const [token, setToken] = useState("");
  // Read once, before the address forgets it.
  const [failed] = useState(() => fromAddress("signin_error"));
  const [here] = useState(() => location.pathname + location.search);

  useEffect(() => {
    if (!failed) return;
    status.fail(new Error(SIGN_IN_ERRORS[failed] ?? "The sign-in failed."));
    history.replaceState(null, "", location.pathname);
  }, [failed, status.fail]);

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    try {
      await signInWithToken(token);
      navigate(location.pathname.length > 4 ? location.pathname + location.search : "/ui/overview");
    } catch (e) {
      status.fail(e);
    }
  };

  // Back to the page asked for once signed in through the provider.
  const back = /^\/ui\/[^?]/.test(here) ? `?return_to=${encodeURIComponent(here)}` : "";
  return (
    <>
      <form aria-label="Sign in" onSubmit={submit}>
        <h1>Sign in</h1>
        <label htmlFor="token">
          Admin token{" "}
          <input id="token" type="password" autoComplete="off" required autoFocus value={token} onChange={(e) => setToken(e.target.value)} />
        </label>
        <button type="submit">Sign in</button>
        <StatusRegion status={status} />
      </form>
      {provider ? (
        <>
          <p className="or">or</p>
          {/* A link, not a form: the server sends the browser on to the provider. */}
          <a className="button" id="oidc-sign-in" href={provider.login + back}>
            {`Sign in with ${provider.name}`}
          </a>
        </>
      ) : null}
    </>
  );
}
