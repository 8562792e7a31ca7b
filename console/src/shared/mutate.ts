// Every write of the console goes the same way: one mutation with `input`, its payload
// carrying the record or `userErrors`; refusals come back by field for el-form-item
// :error (errorsByField, '' = the whole form).
import { errorsByField, messageOf, request, type UserError } from './graphql'

export interface Outcome<T> {
  /** The payload's record (its first field besides userErrors), null when refused. */
  record: T | null
  /** The whole payload, for one that carries more than its record. */
  payload: Record<string, unknown>
  /** Empty when the API took it; else the message for each field it names. */
  errors: Record<string, string>
}

/** Throws ApiError when the request itself fails (the caller says so its own way). */
export async function mutate<T = { id: string }>(
  document: string,
  input: Record<string, unknown>,
): Promise<Outcome<T>> {
  const data = await request<Record<string, Record<string, unknown> & { userErrors: UserError[] }>>(
    document,
    { input },
  )
  const payload = Object.values(data)[0]
  if (payload.userErrors.length) {
    return { record: null, payload, errors: errorsByField(payload.userErrors) }
  }
  const record = Object.entries(payload).find(([key]) => key !== 'userErrors')?.[1] as T | undefined
  return { record: record ?? null, payload, errors: {} }
}

/** The same for a form that shows a failed request above itself: its message under ''. */
export async function mutateForm<T = { id: string }>(
  document: string,
  input: Record<string, unknown>,
): Promise<Outcome<T>> {
  try {
    return await mutate<T>(document, input)
  } catch (error) {
    return {
      record: null,
      payload: {},
      errors: { '': messageOf(error) },
    }
  }
}

/** The first refusal's message, for a form that shows one line (a phone dialog). */
export function firstError(errors: Record<string, string>): string | null {
  return Object.values(errors)[0] ?? null
}
