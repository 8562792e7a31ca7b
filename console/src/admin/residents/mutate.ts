// Every form of these screens writes the same way: one mutation with `input`, its payload
// carrying the record or `userErrors`; refusals come back by field for el-form-item
// :error, and a failure of the request itself under '' (shown above the form).
import { errorsByField, request, type UserError } from '@/shared/graphql'

export interface Outcome<T> {
  /** The payload's record (its first field besides userErrors), null when refused. */
  record: T | null
  /** The whole payload, for one that carries more than its record. */
  payload: Record<string, unknown>
  errors: Record<string, string>
}

export async function mutate<T = { id: string }>(
  document: string,
  input: Record<string, unknown>,
): Promise<Outcome<T>> {
  try {
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
  } catch (error) {
    return {
      record: null,
      payload: {},
      errors: { '': error instanceof Error ? error.message : String(error) },
    }
  }
}
