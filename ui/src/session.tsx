// Who is signed in, and how: with an admin token (held by api.ts alone) or with the
// session cookie of a sign-in through the OpenID provider. The provider's name and
// sign-in address come with the answer of `/ui/auth/session`.
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { api, endSession, setSession, setToken } from "./api";
import { useRouter } from "./router";

export type SignedIn = { kind: "token" } | { kind: "session"; actor: string; role: string };

export interface Provider {
  name: string;
  login: string;
}

interface SessionState {
  /// Whether the server has said whether this browser holds a session.
  loaded: boolean;
  signedIn: SignedIn | null;
  provider: Provider | null;
  /// Signs in with a token, or throws the server's refusal of it.
  signInWithToken(token: string): Promise<void>;
  signOut(): Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const { navigate } = useRouter();
  const [loaded, setLoaded] = useState(false);
  const [signedIn, setSignedIn] = useState<SignedIn | null>(null);
  const [provider, setProvider] = useState<Provider | null>(null);

  // Asks the server once whether this browser holds a dashboard session, and what
  // sign-in it offers.
  useEffect(() => {
    let live = true;
    (async () => {
      try {
        const res = await fetch("/ui/auth/session", { credentials: "same-origin" });
        const s = res.ok ? await res.json() : null;
        if (!live) return;
        setProvider(s?.oidc ?? null);
        if (s?.signed_in) {
          setSession({ actor: s.actor, role: s.role, csrf: s.csrf });
          setSignedIn({ kind: "session", actor: s.actor, role: s.role });
        }
      } catch {
        setSession(null);
      }
      if (live) setLoaded(true);
    })();
    return () => {
      live = false;
    };
  }, []);

  const signInWithToken = useCallback(async (token: string) => {
    setToken(token);
    try {
      // Any viewer may list tiers: a cheap check that the token is good.
      await api("GET", "/v1/tiers");
    } catch (e) {
      setToken(null);
      throw e;
    }
    setSignedIn({ kind: "token" });
  }, []);

  /// Forgets the token, or ends the session at the server (which clears its cookie).
  const signOut = useCallback(async () => {
    await endSession();
    setToken(null);
    setSession(null);
    setSignedIn(null);
    navigate("/ui/");
  }, [navigate]);

  const value = useMemo(
    () => ({ loaded, signedIn, provider, signInWithToken, signOut }),
    [loaded, signedIn, provider, signInWithToken, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionState {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}
