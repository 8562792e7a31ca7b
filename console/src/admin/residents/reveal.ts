// The resident's 身份证号 or 手机号 whole, asked with the admin's reason (audited).
import { request } from '@/shared/graphql'
import unmaskDocument from './unmask.graphql?raw'

export type SensitiveField = 'idNumber' | 'phone'

export async function revealResident(
  id: string,
  field: SensitiveField,
  reason: string,
): Promise<string | null> {
  const data = await request<{ node: { idNumber?: string; phone?: string | null } | null }>(
    unmaskDocument,
    { id, reason, idNumber: field === 'idNumber', phone: field === 'phone' },
  )
  return data.node?.[field] ?? null
}
