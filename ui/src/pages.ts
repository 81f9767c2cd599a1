// The pages: each one's path under /ui/, its title in the navigation, and what draws it.
// Adding a page is a component of its own in pages/ and an entry here.
import type { ComponentType } from "react";
import { Alerts } from "./pages/Alerts";
import { Audit } from "./pages/Audit";
import { Billing } from "./pages/Billing";
import { DeadLetters } from "./pages/DeadLetters";
import { Jobs } from "./pages/Jobs";
import { Keys } from "./pages/Keys";
import { Overview } from "./pages/Overview";
import { Policy } from "./pages/Policy";
import { Violations } from "./pages/Violations";

/// What a page is given: the segments of its path after its own (a key's id).
export interface PageProps {
  rest: string[];
}

export interface Page {
  path: string;
  title: string;
  Component: ComponentType<PageProps>;
}

export const PAGES: Page[] = [
  { path: "overview", title: "Overview", Component: Overview },
  { path: "keys", title: "Keys", Component: Keys },
  { path: "policy", title: "Policy", Component: Policy },
  { path: "violations", title: "Violations", Component: Violations },
  { path: "alerts", title: "Alerts", Component: Alerts },
  { path: "billing", title: "Billing", Component: Billing },
  { path: "jobs", title: "Jobs", Component: Jobs },
  { path: "dead-letters", title: "Dead letters", Component: DeadLetters },
  { path: "audit", title: "Audit log", Component: Audit },
];
