// The 发起协议 form and the proposeAgreement input it becomes: with a neighbour or the
// whole region, the record types that have at least one field picked, valid until the
// end of the chosen day in the village's time.
import dayjs from 'dayjs'
import { VILLAGE_TIME_ZONE } from '@/shared/format'

export interface ProposalForm {
  scope: 'NEIGHBOUR' | 'REGION'
  counterpart: string
  purpose: string
  /** YYYY-MM-DD, or '' for until revoked. */
  validUntil: string
  /** Picked fields by record type. */
  fields: Record<string, string[]>
}

export function emptyProposal(): ProposalForm {
  return { scope: 'NEIGHBOUR', counterpart: '', purpose: '', validUntil: '', fields: {} }
}

export function proposeInput(village: string, form: ProposalForm): Record<string, unknown> {
  const input: Record<string, unknown> = {
    village,
    purpose: form.purpose.trim(),
    recordTypes: Object.entries(form.fields)
      .filter(([, fields]) => fields.length > 0)
      .map(([type, fields]) => ({ type, fields })),
  }
  if (form.scope === 'REGION') input.regionWide = true
  else input.counterpart = form.counterpart
  if (form.validUntil) {
    input.validUntil = dayjs.tz(form.validUntil, VILLAGE_TIME_ZONE).endOf('day').format()
  }
  return input
}
