// A select of [value, text] options, controlled by its value.
export function Select({
  id,
  options,
  value,
  onChange,
}: {
  id: string;
  options: [string, string][];
  value: string;
  onChange: (value: string) => void;
}) {
  return (
    <select id={id} value={value} onChange={(e) => onChange(e.target.value)}>
      {options.map(([v, t]) => (
        <option key={v} value={v}>
          {t}
        </option>
      ))}
    </select>
  );
}
