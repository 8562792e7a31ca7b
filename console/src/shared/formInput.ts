// A form's values as a mutation's input: an optional field left empty is left out,
// never sent as "" (which the API would read as a value to check).

/** The form's values without its blank ones (strings trimmed). */
export function filled(form: Record<string, unknown>): Record<string, unknown> {
  const input: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(form)) {
    const kept = typeof value === 'string' ? value.trim() : value
    if (kept === '' || kept === null || kept === undefined) continue
    input[key] = kept
  }
  return input
}
