// The console's one way to call the API: POST /graphql with the bearer token and the
// reader's language, `data` back or an Error carrying the API's code and message.
import { accessToken } from './auth'
import { currentLocale } from './i18n'
import { focusFirstRefusedWhenShown } from './refusedField'

export interface UserError {
  field: string | null
  message: string
  code: string
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message)
  }
}

interface GraphQLResponse<T> {
  data?: T | null
  errors?: { message: string; extensions?: { code?: string } }[]
}

export async function request<T = Record<string, unknown>>(
  document: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const token = await accessToken()
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/graphql-response+json, application/json',
      'Accept-Language': currentLocale(),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: document, variables }),
  })
  let body: GraphQLResponse<T>
  try {
    body = (await response.json()) as GraphQLResponse<T>
  } catch {
    throw new ApiError(`HTTP ${response.status}`, 'HTTP_ERROR')
  }
  const [first] = body.errors ?? []
  if (first && !body.data) {
    throw new ApiError(first.message, first.extensions?.code ?? 'ERROR')
  }
  if (first) {
    // Part of the answer failed (a field out of the caller's reach): show what came.
    console.warn('GraphQL:', body.errors)
  }
  return body.data as T
}

/** What a failure says, for a message or a line above a form: the API's (Chinese) message
 * of an ApiError, a network failure's own words. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * A mutation's refusals by the input field they name (`input.phone` → `phone`), for
 * a form to show beside its fields; the whole-input ones under ''. Every form gets its
 * refusals here, so here the first refused field is also brought into view and focused
 * (once the form has shown the messages).
 */
export function errorsByField(errors: UserError[]): Record<string, string> {
  const byField: Record<string, string> = {}
  for (const error of errors) {
    const field = (error.field ?? '').replace(/^input\./, '').split('.').pop() ?? ''
    byField[field] ??= error.message
  }
  if (Object.keys(byField).some((field) => field !== '')) focusFirstRefusedWhenShown()
  return byField
}
