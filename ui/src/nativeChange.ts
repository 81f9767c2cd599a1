// The DOM's own change event of a text field, which fires when its value is committed
// (Enter, or leaving the field) rather than on every key as React's onChange does.
import { useEffect, useEffectEvent } from "react";
import type { RefObject } from "react";

export function useNativeChange(ref: RefObject<HTMLInputElement | null>, handler: () => void) {
  const changed = useEffectEvent(handler);
  useEffect(() => {
    const input = ref.current;
    if (!input) return;
    const on = () => changed();
    input.addEventListener("change", on);
    return () => input.removeEventListener("change", on);
  }, [ref]);
}
