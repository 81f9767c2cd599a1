// Routing by path under /ui/. Every move, by a link or by Back and Forward, draws the page
// afresh (its key changes), so that it reads its filters from the address as it is then.
// After a move the focus goes to the top of the new page, so that keyboard and screen
// reader users start there rather than on a link that is gone.
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { AnchorHTMLAttributes, MouseEvent, ReactNode } from "react";

interface Route {
  /// The address's path, such as `/ui/keys/key_…`.
  path: string;
  /// Counts the moves, to key the page drawn by each.
  serial: number;
}

interface Router {
  route: Route;
  navigate(href: string): void;
}

const RouterContext = createContext<Router | null>(null);

function focusMain() {
  document.getElementById("main")?.focus({ preventScroll: false });
}

export function RouterProvider({ children }: { children: ReactNode }) {
  const [route, setRoute] = useState<Route>({ path: location.pathname, serial: 0 });
  const moved = useCallback(() => {
    // Before the new page is drawn: a page that focuses a field of its own (signing in)
    // does so after this.
    focusMain();
    setRoute((r) => ({ path: location.pathname, serial: r.serial + 1 }));
  }, []);
  const navigate = useCallback(
    (href: string) => {
      history.pushState(null, "", href);
      moved();
    },
    [moved],
  );
  useEffect(() => {
    window.addEventListener("popstate", moved);
    return () => window.removeEventListener("popstate", moved);
  }, [moved]);
  const value = useMemo(() => ({ route, navigate }), [route, navigate]);
  return <RouterContext.Provider value={value}>{children}</RouterContext.Provider>;
}

export function useRouter(): Router {
  const r = useContext(RouterContext);
  if (!r) throw new Error("useRouter outside RouterProvider");
  return r;
}

/// The path's segments after /ui/, decoded: `/ui/keys/a%2Fb` is ["keys", "a/b"].
export function segments(path: string): string[] {
  return path.replace(/^\/ui\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
}

/// A link to a page of the dashboard, followed without loading the page again. A click
/// with a modifier (a new tab or window) is left to the browser.
export function Link({ href, children, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { navigate } = useRouter();
  const follow = (ev: MouseEvent<HTMLAnchorElement>) => {
    if (ev.metaKey || ev.ctrlKey || ev.shiftKey) return;
    ev.preventDefault();
    navigate(href);
  };
  return (
    <a href={href} {...rest} onClick={follow}>
      {children}
    </a>
  );
}

/// A link within the page (the skip link, an error's link to its field): it moves the
/// focus there itself, since a fragment navigation would draw the page afresh through
/// popstate.
export function FragmentLink({ target, children, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { target: string }) {
  const follow = (ev: MouseEvent<HTMLAnchorElement>) => {
    const el = document.getElementById(target);
    if (!el) return;
    ev.preventDefault();
    if (!el.hasAttribute("tabindex") && !/^(INPUT|SELECT|TEXTAREA|BUTTON|A)$/.test(el.tagName)) {
      el.setAttribute("tabindex", "-1");
    }
    el.focus();
  };
  return (
    <a href={`#${target}`} {...rest} onClick={follow}>
      {children}
    </a>
  );
}
