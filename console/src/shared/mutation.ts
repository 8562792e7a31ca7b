// A form's write: one mutation with `{ input }`, its payload back, and its refusals
// (userErrors) by the field they name, for el-form-item :error. Null errors: it was done.
import { errorsByField, request, type UserError } from './graphql'

export interface Payload {
  userErrors: UserError[]
}

export async function mutate<P extends Payload>(
  document: string,
  input: Record<string, unknown>,
): Promise<{ payload: P; errors: Record<string, string> | null }> {
  const data = await request<Record<string, P>>(document, { input })
  const [payload] = Object.values(data)
  return {
    payload,
    errors: payload.userErrors.length ? errorsByField(payload.userErrors) : null,
  }
}

/** A form's values without its blank ones (strings trimmed), for a mutation's input:
 * an optional field left empty is left out, never sent as "". */
export function filled(form: Record<string, unknown>): Record<string, unknown> {
  const input: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(form)) {
    const kept = typeof value === 'string' ? value.trim() : value
    if (kept === '' || kept === null || kept === undefined) continue
    input[key] = kept
  }
  return input
}

/** The tag colours of the console's states (Element Plus tag types). */
export type TagType = 'info' | 'primary' | 'success' | 'warning' | 'danger'
