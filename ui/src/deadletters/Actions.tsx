// Replay and Discard for one dead letter (the admin role's to do). The outcome takes the
// focus, since the row of the button pressed may be drawn again or gone: keyboard and
// screen reader users land on it.
import { api, ApiError, describe } from "../api";
import { Button } from "../components/Button";
import { count } from "../format";
import type { Status } from "../status";
import { refusal } from "./words";

/// `after` is told whether the letter is gone, and draws what remains.
export function DeadLetterActions({ letter, status, after }: { letter: any; status: Status; after: (gone: boolean) => Promise<void> }) {
  const id = letter.id;
  const told = (text: string, error = false) => {
    if (error) status.fail(new Error(text));
    else status.show(text);
    status.focus();
  };
  const replay = async () => {
    try {
      const o = await api("POST", `/v1/dead-letters/${encodeURIComponent(id)}/replay`);
      if (o.delivered) {
        await after(true);
        told(`Dead letter ${id} delivered: the upstream ${o.upstream} answered ${o.status}, and it is removed.`);
      } else {
        await after(false);
        const now = o.dead_letter;
        told(
          `Dead letter ${id} failed again (${o.status}): ${o.failure ?? "the upstream did not take it"}. It stays` +
            (now ? `, after ${count(now.tries)} tries in all.` : "."),
          true,
        );
      }
    } catch (e) {
      told(describe(refusal(e, "replay")), true);
      if (e instanceof ApiError && e.status === 404) await after(true).catch(() => undefined);
    }
  };
  const discard = async () => {
    try {
      await api("DELETE", `/v1/dead-letters/${encodeURIComponent(id)}`);
      await after(true);
      told(`Dead letter ${id} discarded.`);
    } catch (e) {
      told(describe(refusal(e, "discard")), true);
    }
  };
  return (
    <span className="actions">
      <Button label={`Replay dead letter ${id}`} onClick={() => void replay()}>
        Replay
      </Button>{" "}
      <Button className="secondary" label={`Discard dead letter ${id}`} onClick={() => void discard()}>
        Discard
      </Button>
    </span>
  );
}
