// How the pages write times, durations, counts and money.

export function when(ms: number | undefined | null): string {
  return ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) : "-";
}

/// A count of seconds as the configuration writes durations: 90 is 1m30s.
export function seconds(n: number): string {
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]] as [string, number][]) {
    if (n >= size) {
      parts.push(`${Math.floor(n / size)}${unit}`);
      n %= size;
    }
  }
  return parts.join("") || "0s";
}

/// Formats of each currency, made once.
const moneyFormats = new Map<string, Intl.NumberFormat>();

/// An amount in minor units of `currency` (cents of EUR, yen of JPY, fils of KWD) as the
/// reader's locale writes money. The digits of the minor unit are the currency's own,
/// as Intl knows them, and the amount is turned into a decimal string so that no
/// floating-point division can round it.
export function money(minor: number, currency: string): string {
  let f = moneyFormats.get(currency);
  if (!f) {
    try {
      f = new Intl.NumberFormat(undefined, { style: "currency", currency });
    } catch {
      // Not a code Intl knows: the number in minor units, with the code.
      return `${minor} ${currency} (minor units)`;
    }
    moneyFormats.set(currency, f);
  }
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  const sign = minor < 0 ? "-" : "";
  const whole = String(Math.abs(Math.trunc(minor))).padStart(digits + 1, "0");
  const decimal = digits ? `${whole.slice(0, -digits)}.${whole.slice(-digits)}` : whole;
  // Intl formats decimal strings exactly; the DOM library's types know only numbers.
  return (f.format as unknown as (v: string) => string)(sign + decimal);
}

/// A whole number with the locale's grouping.
export function count(n: number): string {
  return n.toLocaleString();
}
