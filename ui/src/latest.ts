// Loads whose answers may come back out of order, or after their page was left.
import { useCallback, useEffect, useRef } from "react";

/// `begin()` starts a load and gives a check of whether its answer may still be shown: no
/// later load of the same kind has begun, and the component is still on show. Filters
/// changed in quick succession then show the last one's answer, whatever order the
/// server answers in.
export function useLatest(): () => () => boolean {
  const serial = useRef(0);
  const mounted = useRef(false);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  return useCallback(() => {
    const mine = ++serial.current;
    return () => mounted.current && serial.current === mine;
  }, []);
}

/// Whether the component is still on show, for answers that are not superseded.
export function useShown(): () => boolean {
  const mounted = useRef(false);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);
  return useCallback(() => mounted.current, []);
}
