// A mutation with one `input` and the API's payload shape ({ <record>, userErrors }):
// the payload, and its refusals by field for the form (errorsByField).
import { errorsByField, request, type UserError } from './graphql'

export interface Outcome<P> {
  payload: P
  /** Empty when the API took it; else the message for each field it names ('' = the whole form). */
  errors: Record<string, string>
}

export async function mutate<P extends { userErrors: UserError[] }>(
  document: string,
  input: Record<string, unknown>,
): Promise<Outcome<P>> {
  const data = await request<Record<string, P>>(document, { input })
  const payload = Object.values(data)[0]
  return { payload, errors: errorsByField(payload.userErrors) }
}

/** The first refusal's message, for a form that shows one line (a phone dialog). */
export function firstError(errors: Record<string, string>): string | null {
  return Object.values(errors)[0] ?? null
}
