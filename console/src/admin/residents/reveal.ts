// A masked 身份证号 or 手机号 whole, asked with the admin's reason (audited by the API):
// each screen's own document re-queries the one field through `node(id)`.
import { request } from '@/shared/graphql'
import unmaskDocument from './unmask.graphql?raw'

export type SensitiveField = 'idNumber' | 'phone'

export async function reveal(
  document: string,
  field: SensitiveField,
  variables: { id: string; reason: string } & Record<string, unknown>,
): Promise<string | null> {
  const data = await request<{ node: Partial<Record<SensitiveField, string | null>> | null }>(
    document,
    variables,
  )
  return data.node?.[field] ?? null
}

export function revealResident(id: string, field: SensitiveField, reason: string) {
  return reveal(unmaskDocument, field, {
    id,
    reason,
    idNumber: field === 'idNumber',
    phone: field === 'phone',
  })
}
