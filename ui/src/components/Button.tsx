// A button that does something on the page (never submits a form).
import type { ReactNode, Ref } from "react";

export function Button({
  onClick,
  className,
  label,
  disabled,
  ref,
  children,
}: {
  onClick: () => void;
  className?: string;
  /// A button repeated on every row is told apart by its label, which starts with its
  /// visible text so that speech input finds it by what is shown.
  label?: string;
  disabled?: boolean;
  ref?: Ref<HTMLButtonElement>;
  children: ReactNode;
}) {
  return (
    <button type="button" className={className || undefined} aria-label={label || undefined} disabled={disabled} ref={ref} onClick={onClick}>
      {children}
    </button>
  );
}
