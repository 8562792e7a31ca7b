// A resident's masked 身份证号 or 手机号 whole, asked with the admin's reason (audited by
// the API), for every screen that lists residents.
import { reveal, type SensitiveField } from '@/shared/sensitive'
import unmaskDocument from './unmask.graphql?raw'

export function revealResident(id: string, field: SensitiveField, reason: string) {
  return reveal(unmaskDocument, field, {
    id,
    reason,
    idNumber: field === 'idNumber',
    phone: field === 'phone',
  })
}
