import { describe, expect, it } from 'vitest'
import { elementTag, vantTag } from './stateTags'

describe('state tags', () => {
  it('colour requests as the console conventions say', () => {
    expect(elementTag('RequestState', 'SUBMITTED')).toBe('info')
    expect(elementTag('RequestState', 'IN_PROGRESS')).toBe('primary')
    expect(elementTag('RequestState', 'RESOLVED')).toBe('success')
  })

  it('turn an overdue open record red, but not a finished one', () => {
    expect(elementTag('RequestState', 'IN_PROGRESS', true)).toBe('danger')
    expect(vantTag('RequestState', 'ASSIGNED', true)).toBe('danger')
    expect(elementTag('RequestState', 'CLOSED', true)).toBe('success')
  })

  it('use the same stage on the phone', () => {
    expect(vantTag('AlertState', 'ACKNOWLEDGED')).toBe('primary')
    expect(vantTag('AlertState', 'RESOLVED')).toBe('success')
    expect(vantTag('AgreementState', 'PROPOSED')).toBe('default')
  })
})
