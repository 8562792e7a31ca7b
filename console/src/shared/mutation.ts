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
