// The status region every page has (`#status`, role status): what the last action did,
// or why it failed.
import { useCallback, useMemo, useRef, useState } from "react";
import type { RefObject } from "react";
import { describe } from "./api";

export interface Status {
  /// Tells a message.
  show(text: string): void;
  /// Tells an error, in the words `describe` gives it.
  fail(e: unknown): void;
  /// Moves the focus to the region, for an outcome that replaces what had the focus.
  focus(): void;
  readonly text: string;
  readonly error: boolean;
  readonly ref: RefObject<HTMLParagraphElement | null>;
}

export function useStatus(): Status {
  const [state, setState] = useState({ text: "", error: false });
  const ref = useRef<HTMLParagraphElement>(null);
  const show = useCallback((text: string) => setState({ text, error: false }), []);
  const fail = useCallback((e: unknown) => setState({ text: describe(e), error: true }), []);
  const focus = useCallback(() => {
    const region = ref.current;
    if (!region) return;
    // Not in the tab order: focusable by the script only.
    region.tabIndex = -1;
    region.focus();
  }, []);
  return useMemo(() => ({ show, fail, focus, ref, ...state }), [show, fail, focus, state]);
}

/// The region itself, placed where the page wants it.
export function StatusRegion({ status }: { status: Status }) {
  return (
    <p id="status" role="status" ref={status.ref} className={status.error ? "error" : undefined}>
      {status.text}
    </p>
  );
}
