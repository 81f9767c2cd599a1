// The frame of every page: the skip link, the header with the navigation and who is
// signed in, and the page of the address (or signing in).
import { useEffect } from "react";
import { Button } from "./components/Button";
import { PAGES } from "./pages";
import { SignIn } from "./pages/SignIn";
import { FragmentLink, Link, segments, useRouter } from "./router";
import { useSession } from "./session";

export function App() {
  const { route } = useRouter();
  const { loaded, signedIn, signOut } = useSession();
  const parts = segments(route.path);
  const page = signedIn ? (PAGES.find((p) => p.path === parts[0]) ?? PAGES[0]) : null;

  useEffect(() => {
    if (page) document.title = `${page.title} · Tollgate`;
  }, [page]);

  return (
    <>
      <FragmentLink className="skip" target="main">
        Skip to content
      </FragmentLink>
      <header>
        <span className="brand">Tollgate</span>
        <nav id="nav" aria-label="Pages">
          {page
            ? PAGES.map((p) => (
                <Link key={p.path} href={`/ui/${p.path}`} aria-current={p === page ? "page" : undefined}>
                  {p.title}
                </Link>
              ))
            : null}
        </nav>
        <span id="who">
          {signedIn?.kind === "session" ? (
            <>
              <span id="actor">{`${signedIn.actor} (${signedIn.role})`}</span>{" "}
            </>
          ) : null}
          {signedIn ? (
            <Button className="secondary" onClick={() => void signOut()}>
              Sign out
            </Button>
          ) : null}
        </span>
      </header>
      <main id="main" tabIndex={-1}>
        {!loaded ? null : page ? <page.Component key={route.serial} rest={parts.slice(1)} /> : <SignIn key={route.serial} />}
      </main>
    </>
  );
}
