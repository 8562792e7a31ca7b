import { describe, expect, it } from 'vitest'
import { emptyProposal, proposeInput } from './proposal'

describe('the 发起协议 form', () => {
  it('proposes to a neighbour the record types with fields picked, until the end of the day in village time', () => {
    const form = {
      ...emptyProposal(),
      counterpart: 'xinghua',
      purpose: ' 走失老人协查 ',
      validUntil: '2027-12-31',
      fields: { alert_broadcast: ['kind', 'summary'], open_activity: [] },
    }
    expect(proposeInput('liulin', form)).toEqual({
      village: 'liulin',
      counterpart: 'xinghua',
      purpose: '走失老人协查',
      validUntil: '2027-12-31T23:59:59+08:00',
      recordTypes: [{ type: 'alert_broadcast', fields: ['kind', 'summary'] }],
    })
  })

  it('proposes to the whole region without a counterpart, and without an end when none is chosen', () => {
    const input = proposeInput('liulin', { ...emptyProposal(), scope: 'REGION', counterpart: 'x', fields: { joint_case: ['title'] } })
    expect(input.regionWide).toBe(true)
    expect(input).not.toHaveProperty('counterpart')
    expect(input).not.toHaveProperty('validUntil')
  })
})
