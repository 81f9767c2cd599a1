// The paging of a list read newest first by a `before` cursor (the alerts' history, the
// dead letters): the cursor of each page shown so far, the first page having none. A page
// from the address starts there, with the first page one step newer. Newer and Older move
// through them, keeping the focus in the pager when the button pressed is switched off.
import { useLayoutEffect, useRef, useState } from "react";
import type { RefObject } from "react";
import { fromAddress, toAddress } from "./address";
import { useLatest } from "./latest";
import type { Status } from "./status";

type Cursors = (number | null)[];

/// A page on show: the filters it was asked with, the cursors up to it, what it holds
/// and the cursor of the next older page (none at the end).
export interface Shown<F, D> {
  filters: F;
  cursors: Cursors;
  data: D;
  next: number | null;
}

export interface Pager<F, D> {
  shown: Shown<F, D> | null;
  /// The first load, at the page of the address.
  start(filters: F): Promise<void>;
  /// Back to the first page, as a changed filter asks.
  restart(filters: F): void;
  /// One page older (1) or newer (-1).
  move(step: number, filters: F): void;
  /// The page on show, loaded again.
  reload(filters: F): Promise<void>;
  newer: RefObject<HTMLButtonElement | null>;
  older: RefObject<HTMLButtonElement | null>;
  /// Whether newer pages come before the one on show.
  past: boolean;
  /// How many items the newer pages held, at `perPage` each.
  offset(perPage: number): number;
}

export function useBeforePager<F, D>({
  load,
  address,
  status,
}: {
  /// Reads the page before `before` (the newest without it) and its next cursor.
  load: (filters: F, before: number | null) => Promise<{ data: D; next: number | null }>;
  /// The address's parameters of a page shown.
  address: (filters: F, before: number | null) => Record<string, string | number | null>;
  status: Status;
}): Pager<F, D> {
  const latest = useLatest();
  const [shown, setShown] = useState<Shown<F, D> | null>(null);
  const [first] = useState<Cursors>(() => {
    const from = Number(fromAddress("before"));
    return Number.isSafeInteger(from) && from > 0 ? [null, from] : [null];
  });
  const newer = useRef<HTMLButtonElement>(null);
  const older = useRef<HTMLButtonElement>(null);
  /// Set by a move: once its page is drawn, the focus stays in the pager.
  const moved = useRef(false);

  const show = async (filters: F, cursors: Cursors) => {
    const current = latest();
    const before = cursors[cursors.length - 1];
    const page = await load(filters, before);
    if (!current()) return;
    toAddress(true, address(filters, before));
    setShown({ filters, cursors, data: page.data, next: page.next });
  };

  useLayoutEffect(() => {
    if (!moved.current) return;
    moved.current = false;
    const active = document.activeElement as HTMLButtonElement | null;
    if (!active || active === document.body || active.disabled) {
      (older.current?.disabled ? newer.current : older.current)?.focus();
    }
  }, [shown]);

  const cursors = shown?.cursors ?? first;
  return {
    shown,
    start: (filters) => show(filters, first).catch((e) => status.fail(e)),
    restart: (filters) => void show(filters, [null]).catch((e) => status.fail(e)),
    move: (step, filters) => {
      let to = cursors;
      if (step > 0 && shown?.next != null) to = [...cursors, shown.next];
      else if (step < 0 && cursors.length > 1) to = cursors.slice(0, -1);
      moved.current = true;
      void show(filters, to).catch((e) => {
        moved.current = false;
        status.fail(e);
      });
    },
    reload: (filters) => show(filters, cursors),
    newer,
    older,
    past: cursors.length > 1,
    offset: (perPage) => (cursors.length - 1) * perPage,
  };
}
