import { describe, expect, it } from 'vitest'
import { alertTag, isOpenRequest, requestTag, serviceOrderTag } from './states'

describe('state tags', () => {
  it('colours requests as everywhere: waiting grey, worked blue, overdue red, done green', () => {
    expect(requestTag('SUBMITTED')).toBe('default')
    expect(requestTag('IN_PROGRESS')).toBe('primary')
    expect(requestTag('IN_PROGRESS', true)).toBe('danger')
    expect(requestTag('RESOLVED')).toBe('success')
    expect(serviceOrderTag('COMPLETED')).toBe('success')
    expect(serviceOrderTag('ORDERED')).toBe('default')
    expect(alertTag('OPEN')).toBe('default')
    expect(alertTag('ACKNOWLEDGED')).toBe('primary')
    expect(alertTag('FALSE_ALARM')).toBe('success')
  })

  it('counts reopened requests as open and resolved ones as not', () => {
    expect(isOpenRequest('REOPENED')).toBe(true)
    expect(isOpenRequest('RESOLVED')).toBe(false)
    expect(isOpenRequest('REJECTED')).toBe(false)
  })
})
