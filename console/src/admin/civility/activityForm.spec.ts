import { describe, expect, it } from 'vitest'
import { activityInput, blankActivity, moveInput } from './activityForm'

describe('activityInput', () => {
  it('sends a single activity without a series fields or blank words', () => {
    const form = { ...blankActivity(), title: ' 书法课 ', place: '文明实践站', startsOn: '2026-12-20', weekday: 3, until: '2027-01-31' }
    const input = activityInput('xinghua', form)
    expect(input).toMatchObject({ village: 'xinghua', title: '书法课', repeat: 'ONCE', startsOn: '2026-12-20' })
    expect(input).not.toHaveProperty('weekday')
    expect(input).not.toHaveProperty('until')
    expect(input).not.toHaveProperty('description')
  })

  it('keeps the weekday of a weekly series and the day of a monthly one', () => {
    const weekly = activityInput('xinghua', { ...blankActivity(), repeat: 'WEEKLY', weekday: 6, monthDay: 20, until: '2027-03-01' })
    expect(weekly).toMatchObject({ weekday: 6, until: '2027-03-01' })
    expect(weekly).not.toHaveProperty('monthDay')
    const monthly = activityInput('xinghua', { ...blankActivity(), repeat: 'MONTHLY', weekday: 6, monthDay: 20 })
    expect(monthly).toMatchObject({ monthDay: 20 })
    expect(monthly).not.toHaveProperty('weekday')
  })

  it('keeps false and numbers', () => {
    const input = activityInput('xinghua', blankActivity())
    expect(input).toMatchObject({ openToNeighbours: false, capacity: 20, durationMinutes: 90 })
  })
})

describe('moveInput', () => {
  it('gives the picked time with the village offset, whatever the browser zone', () => {
    expect(moveInput('occ-1', { startsAt: '2026-12-06T15:30:00', reason: '因雨改期' })).toEqual({
      occurrence: 'occ-1',
      startsAt: '2026-12-06T15:30:00+08:00',
      reason: '因雨改期',
    })
  })
})
